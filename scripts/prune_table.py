"""Accuracy against pruning ratio for one digits4 circuit, and what one gradient costs per engine.

Trains a 4-block u3cu3 circuit alone on digits4, then prunes it with QuantumNAS's
iterative magnitude pruning (ratio ramped from 0.05 to the target, fine-tuned between
steps, pruned gates dropped) at each target ratio, pruning single angles and whole
gates; prints test accuracy and gate counts against the ratio (noiseless). Then times
one gradient of the trained circuit on 8 samples with each engine and prints the
circuit executions it needs.

    python scripts/prune_table.py [--epochs 150] [--prune-epochs 20] [--prune-lr 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from qnas import executors as X
from qnas import gradients as G
from qnas.config import TrainConfig
from qnas.devices import get_device
from qnas.prune import PruneSettings, iterative_prune
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks import ClassificationTask, get_task
from qnas.train import train

RATIOS = (0.0, 0.1, 0.2, 0.3, 0.5)


def trained_circuit(task: ClassificationTask, epochs: int, seed: int) -> Subcircuit:
    """Return the 4-block u3cu3 circuit trained alone (the genes never change)."""
    sc = SuperCircuit(load_space("u3cu3"), task.n_wires, max_blocks=4, seed=seed)
    genes = sc.largest()
    settings = TrainConfig(epochs=epochs, batch_size=32, lr=0.02, warmup_epochs=5)
    train(sc, task, settings, lambda: genes, seed, progress=False, desc="u3cu3x4")
    return sc.subcircuit(genes)


def row(sub: Subcircuit, task: ClassificationTask, **extra) -> dict:
    gates = sub.n_gates()
    angles = sub.weights.detach()[sub.parameter_indices()]
    return {
        **extra,
        "nonzero_angles": int((angles != 0).sum()),
        "gates_1q": gates["1q"],
        "gates_2q": gates["2q"],
        "valid_acc": task.evaluate(sub, "valid")["accuracy"],
        "test_acc": task.evaluate(sub, "test")["accuracy"],
    }


def prune_table(
    sub: Subcircuit, task: ClassificationTask, prune_epochs: int, lr: float, seed: int
) -> pd.DataFrame:
    """Return one row per (granularity, target ratio): the pruned circuit's size and accuracy."""
    rows = [row(sub, task, granularity="-", ratio="trained")]
    for granularity in ("angle", "gate"):
        for ratio in RATIOS:
            settings = PruneSettings(epochs=prune_epochs, lr=lr, granularity=granularity, seed=seed)
            result = iterative_prune(X.NoiselessExecutor(sub, task), task, ratio, settings)
            rows.append(row(result.subcircuit, task, granularity=granularity, ratio=ratio))
    return pd.DataFrame(rows)


def gradient_costs(sub: Subcircuit, task: ClassificationTask, repeats: int = 5) -> pd.DataFrame:
    """Return, for one gradient on 8 samples, each engine's circuit executions and median wall time."""
    batch = task.samples("train", 8)
    theta = X.parameters_of(sub)
    exact = X.NoiselessExecutor(sub, task)
    noisy = X.NoisyExecutor(sub, task, get_device("fake_quito"))
    true = G.Backprop().gradient(exact, theta, batch).values
    engines = [
        ("backprop", G.Backprop(), exact),
        ("parameter_shift", G.ParameterShift(), exact),
        ("finite_difference", G.FiniteDifference(), exact),
        ("spsa", G.SPSA(seed=0), exact),
        ("parameter_shift, QOC ratio 0.5 (pruning step)", None, exact),
        ("parameter_shift on fake_quito noise", G.ParameterShift(), noisy),
        ("spsa on fake_quito noise", G.SPSA(seed=0), noisy),
    ]
    rows = []
    for name, engine, executor in engines:
        times, result = [], None
        for _ in range(repeats if executor is exact else 1):
            if engine is None:  # QOC: one accumulation step, then time a pruning step
                engine_run = G.ProbabilisticGradientPruning(G.ParameterShift(), 1, 1, 0.5, seed=0)
                engine_run.gradient(executor, theta, batch)
            else:
                engine_run = engine
            t0 = time.perf_counter()
            result = engine_run.gradient(executor, theta, batch)
            times.append(time.perf_counter() - t0)
        cosine = torch.nn.functional.cosine_similarity(result.values, true, dim=0).item()
        rows.append(
            {
                "engine": name,
                "executions": result.n_executions,
                "ms": 1000 * statistics.median(times),
                "cosine_to_true": cosine,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--prune-epochs", type=int, default=20)
    parser.add_argument(
        "--prune-lr", type=float, default=0.01, help="half the training lr (QuantumNAS: 2e-3 after 5e-3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task("digits4", seed=args.seed)
    t0 = time.perf_counter()
    sub = trained_circuit(task, args.epochs, args.seed)
    print(
        f"digits4, u3cu3 4 blocks, {sub.n_params} angles: trained {args.epochs} epochs in "
        f"{time.perf_counter() - t0:.0f} s; test set {len(task.splits['test'][1])} samples"
    )
    t0 = time.perf_counter()
    table = prune_table(sub, task, args.prune_epochs, args.prune_lr, args.seed)
    print(
        f"\nPruning ({args.prune_epochs} fine-tuning epochs each, lr {args.prune_lr:g}; "
        f"{time.perf_counter() - t0:.0f} s):"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nOne gradient of the trained circuit on 8 samples ({sub.n_params} angles):")
    print(gradient_costs(sub, task).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
