"""The one training loop: SuperCircuit training and fine-tuning with any gradient engine.

QuantumNAS trains the SuperCircuit by sampling one subcircuit per step and updating the
shared weights it reads, with Adam and weight decay, a linear warm-up and then cosine
decay. Fine-tuning a chosen subcircuit takes the same loop over its own angles, with
the gradients of any engine (backprop, parameter shift, SPSA, finite differences)
through any executor (noiseless, or the device's noisy simulation), so every engine
gets the same optimizer, schedule and weight decay. Settings come from the config
(`train` and `finetune` sections): one set of defaults. Checkpoints are written
atomically after every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from qnas.executors import Executor, NoiselessExecutor, parameters_of
from qnas.gradients import GradientEngine, get_engine
from qnas.results import read_checkpoint
from qnas.supercircuit import ArchSampler, SuperCircuit
from qnas.tasks import Task
from qnas.tasks.base import Batch


class LoopSettings(Protocol):
    """What the loop reads of a config section (`TrainConfig`, `FinetuneConfig`)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int


# One step: compute the loss of a batch and leave its gradient in the parameter's .grad.
Step = Callable[[Batch], float]


def _schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def optimize(
    param: torch.nn.Parameter,
    task: Task,
    settings: LoopSettings,
    seed: int,
    step: Step,
    checkpoint: Path | None = None,
    state: dict | None = None,
    progress: bool = True,
    desc: str = "train",
) -> list[dict]:
    """Run `settings.epochs` epochs of Adam on `param`, `step` giving each batch's gradient; return per-epoch history.

    With `checkpoint`, resumes from it when it exists and rewrites it after every epoch.
    `state` holds extra resumable state (e.g. the sampler's) as {"name": obj with
    state_dict/load_state_dict}.
    """
    state = state or {}
    optimizer = torch.optim.Adam([param], lr=settings.lr, weight_decay=settings.weight_decay)
    per_epoch = task.n_batches(settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(settings.warmup_epochs * per_epoch, settings.epochs * per_epoch)
    )
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        saved = read_checkpoint(checkpoint)
        with torch.no_grad():
            param.copy_(saved["model"]["weights"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["rng"]
        for name, obj in state.items():
            obj.load_state_dict(saved["extra"][name])
        history, start_epoch = saved["history"], saved["epoch"]
    bar = tqdm(
        range(start_epoch, settings.epochs),
        desc=desc,
        disable=not progress,
        initial=start_epoch,
        total=settings.epochs,
    )
    for epoch in bar:
        t0, losses = time.perf_counter(), []
        for batch in task.batches(settings.batch_size, rng):
            optimizer.zero_grad()
            losses.append(step(batch))
            optimizer.step()
            scheduler.step()
        history.append(
            {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        )
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        if checkpoint is not None:
            _save_atomic(
                {
                    "model": {"weights": param.detach()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng.bit_generator.state,
                    "extra": {name: obj.state_dict() for name, obj in state.items()},
                    "history": history,
                    "epoch": epoch + 1,
                },
                checkpoint,
            )
    return history


def _save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train(
    supercircuit: SuperCircuit,
    task: Task,
    settings: LoopSettings,
    next_genes: Callable[[], tuple[int, ...]],
    seed: int = 0,
    checkpoint: Path | None = None,
    state: dict | None = None,
    progress: bool = True,
    desc: str = "train",
) -> list[dict]:
    """Train the shared weights by backprop, one subcircuit from `next_genes` per step; return per-epoch history."""

    def step(batch: Batch) -> float:
        loss = task.loss(supercircuit.subcircuit(next_genes()), batch)
        loss.backward()
        return loss.item()

    return optimize(supercircuit.weights, task, settings, seed, step, checkpoint, state, progress, desc)


def train_supercircuit(
    supercircuit: SuperCircuit,
    task: Task,
    settings: LoopSettings,
    sampler: str = "restricted",
    limit_diff: int = 4,
    seed: int = 0,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train the SuperCircuit with sampled subcircuits (uniform, restricted or sandwich); return the history."""
    arch_sampler = ArchSampler(supercircuit.gene_choices, sampler, limit_diff, seed=seed)
    return train(
        supercircuit,
        task,
        settings,
        arch_sampler.sample,
        seed,
        checkpoint,
        {"sampler": arch_sampler},
        progress,
        "supercircuit",
    )


def finetune(
    supercircuit: SuperCircuit,
    genes: tuple[int, ...],
    task: Task,
    settings: LoopSettings,
    seed: int = 0,
    engine: GradientEngine | str = "backprop",
    executor_of: Callable[..., Executor] | None = None,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> tuple[SuperCircuit, list[dict]]:
    """Return a copy of the SuperCircuit whose subcircuit `genes` was fine-tuned alone, and the history.

    `executor_of(sub)` builds the executor the engine works through (default: the
    noiseless simulator; a `NoisyExecutor` makes fine-tuning noise-aware).
    """
    engine = get_engine(engine) if isinstance(engine, str) else engine
    tuned = copy.deepcopy(supercircuit)
    sub = tuned.subcircuit(tuned.validate(genes))
    executor = (executor_of or (lambda s: NoiselessExecutor(s, task)))(sub)
    param = torch.nn.Parameter(parameters_of(sub))
    executions: list[int] = []

    def step(batch: Batch) -> float:
        result = engine.gradient(executor, param.detach(), batch, with_loss=True)
        param.grad = result.values
        executions.append(result.n_executions)
        return result.loss

    history = optimize(param, task, settings, seed, step, checkpoint, None, progress, "finetune")
    count_executions(history, executions, task.n_batches(settings.batch_size))
    with torch.no_grad():
        tuned.weights[sub.parameter_indices()] = param.detach().to(tuned.weights.dtype)
    return tuned, history


def count_executions(history: list[dict], executions: list[int], per_epoch: int) -> None:
    """Add each epoch's circuit executions and their running total to the history rows this call ran."""
    n_run = len(executions) // max(per_epoch, 1)
    total = 0
    for i, row in enumerate(history[len(history) - n_run :]):
        spent = sum(executions[i * per_epoch : (i + 1) * per_epoch])
        total += spent
        row.update(executions=spent, total_executions=total)
