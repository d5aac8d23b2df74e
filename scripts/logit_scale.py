"""Why task.logit_scale defaults to 4: circuits trained alone with logits = scale * <Z>.

    python scripts/logit_scale.py [--scales 1 4] [--blocks 2 4] [--seeds 0 1 2] [--epochs 300]

digits4, u3cu3 full-width circuits of each depth, trained alone (Adam, lr 0.02, cosine
decay, 300 epochs); prints the test accuracy per seed and the mean per (scale, depth).
Accuracy does not depend on the scale at inference; only training does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qnas.config import TrainConfig
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks import get_task
from qnas.train import train


def trained_alone(scale: float, blocks: int, seed: int, epochs: int, lr: float) -> tuple[float, float]:
    """Test and validation accuracy of the full-width `blocks`-block circuit trained alone."""
    task = get_task("digits4", seed=seed, logit_scale=scale)
    sc = SuperCircuit(load_space("u3cu3"), task.n_wires, max_blocks=8, seed=seed)
    genes = sc.space.fixed_blocks(blocks, task.n_wires, 8)
    train(sc, task, TrainConfig(epochs=epochs, lr=lr), lambda: genes, seed, progress=False)
    sub = sc.subcircuit(genes)
    return task.evaluate(sub, "test")["accuracy"], task.evaluate(sub, "valid")["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.02)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for scale in args.scales:
        for blocks in args.blocks:
            tests = []
            for seed in args.seeds:
                t0 = time.perf_counter()
                test, valid = trained_alone(scale, blocks, seed, args.epochs, args.lr)
                tests.append(test)
                print(
                    f"scale {scale:g}, {blocks} blocks, seed {seed}: test {100 * test:.1f}%, "
                    f"valid {100 * valid:.1f}% ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
            print(f"scale {scale:g}, {blocks} blocks: mean test {100 * np.mean(tests):.1f}%", flush=True)


if __name__ == "__main__":
    main()
