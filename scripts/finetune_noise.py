"""Noise-aware against noiseless fine-tuning of a run's best circuit, scored on the noisy device.

    python scripts/finetune_noise.py RUN [--epochs 1] [--batch-size 16] [--lr 0.01]

Starts from the run's fine-tuned best (best.pt) and takes the same number of
epochs of parameter shift twice: through the noiseless simulator and through the device's
noisy simulation (the run's device and layout). Prints the test accuracy and loss of
each, scored on the device's noise model, and the circuit executions spent.
"""

from __future__ import annotations

import argparse
import time

import torch

from qnas.executors import NoiselessExecutor
from qnas.pipeline import load_candidate, noisy_executor_of, score_genome
from qnas.results import RunDir
from qnas.train import finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config, task, sc, genome = load_candidate(RunDir(args.run), "best")
    start = score_genome(config, task, sc, genome, "test", True)
    print(f"start, {config.device}: noisy test accuracy {start['accuracy']:.3f}, loss {start['loss']:.3f}")
    executors = {
        "noiseless": lambda sub: NoiselessExecutor(sub, task),
        # The scorer's own circuit: the run's device, layout, transpilation and idle noise.
        "noise-aware": noisy_executor_of(config, task, genome),
    }
    settings = config.finetune.model_copy(
        update={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "warmup_epochs": 0}
    )
    for name, executor_of in executors.items():
        t0 = time.perf_counter()
        tuned, history = finetune(
            sc, genome.arch, task, settings, config.seed, "parameter_shift", executor_of, progress=False
        )
        scores = score_genome(config, task, tuned, genome, "test", True)
        print(
            f"{name:12s} {args.epochs} epoch(s) of parameter shift, {history[-1]['total_executions']} executions, "
            f"{time.perf_counter() - t0:.0f} s: noisy test accuracy {scores['accuracy']:.3f}, loss {scores['loss']:.3f}"
        )


if __name__ == "__main__":
    main()
