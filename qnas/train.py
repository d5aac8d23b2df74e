"""SuperCircuit training and subcircuit fine-tuning (one subcircuit per step).

QuantumNAS trains the SuperCircuit by sampling one subcircuit per step and updating the
shared weights it reads; Adam with weight decay, linear warm-up, then cosine decay.
Checkpoints are written atomically after every epoch, so an interrupted run resumes
where it stopped.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from qnas.supercircuit import ArchSampler, SuperCircuit
from qnas.tasks import Task


@dataclass
class TrainSettings:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    sampler: str = "restricted"
    limit_diff: int = 4
    seed: int = 0


def _schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(
    supercircuit: SuperCircuit,
    task: Task,
    settings: TrainSettings,
    next_genes: Callable[[], tuple[int, ...]],
    checkpoint: Path | None = None,
    state: dict | None = None,
    progress: bool = True,
    desc: str = "train",
) -> list[dict]:
    """Train the shared weights, one subcircuit from `next_genes` per step; return per-epoch history.

    With `checkpoint`, resumes from it when it exists and rewrites it after every epoch.
    `state` holds extra resumable state (e.g. the sampler's) as {"name": obj with
    state_dict/load_state_dict}.
    """
    state = state or {}
    optimizer = torch.optim.Adam([supercircuit.weights], lr=settings.lr, weight_decay=settings.weight_decay)
    per_epoch = task.n_batches(settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(settings.warmup_epochs * per_epoch, settings.epochs * per_epoch)
    )
    rng = np.random.default_rng(settings.seed)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        supercircuit.load_state_dict(saved["model"])
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
            sub = supercircuit.subcircuit(next_genes())
            loss = task.loss(sub, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        history.append(
            {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        )
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        if checkpoint is not None:
            _save_atomic(
                {
                    "model": supercircuit.state_dict(),
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


def train_supercircuit(
    supercircuit: SuperCircuit,
    task: Task,
    settings: TrainSettings,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train the SuperCircuit with sampled subcircuits (uniform or restricted); return the history."""
    sampler = ArchSampler(
        supercircuit.gene_choices, settings.sampler, settings.limit_diff, seed=settings.seed
    )
    return train(
        supercircuit,
        task,
        settings,
        sampler.sample,
        checkpoint,
        {"sampler": sampler},
        progress,
        "supercircuit",
    )


def finetune(
    supercircuit: SuperCircuit,
    genes: tuple[int, ...],
    task: Task,
    settings: TrainSettings,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> tuple[SuperCircuit, list[dict]]:
    """Return a copy of the SuperCircuit whose subcircuit `genes` was trained alone from its inherited weights."""
    tuned = copy.deepcopy(supercircuit)
    genes = tuned.validate(genes)
    history = train(tuned, task, settings, lambda: genes, checkpoint, None, progress, "finetune")
    return tuned, history


def finetune_with_engine(
    supercircuit: SuperCircuit,
    genes: tuple[int, ...],
    task: Task,
    settings: TrainSettings,
    engine: str = "backprop",
    device=None,
    layout=None,
) -> tuple[SuperCircuit, list[dict]]:
    """Return a copy of the SuperCircuit whose subcircuit `genes` was fine-tuned with a gradient engine.

    With `device`, fine-tuning is noise-aware: the losses (and so the gradients) come from
    the device's noisy simulation. The history counts the circuit executions spent.
    """
    from qnas.gradients import FinetuneSettings, NoiselessExecutor, NoisyExecutor, finetune_with

    tuned = copy.deepcopy(supercircuit)
    sub = tuned.subcircuit(tuned.validate(genes))
    executor = NoiselessExecutor(sub, task) if device is None else NoisyExecutor(sub, task, device, layout)
    steps = settings.epochs * task.n_batches(settings.batch_size)
    result, history = finetune_with(
        engine, executor, task, FinetuneSettings(steps, settings.batch_size, settings.lr, settings.seed)
    )
    idx = sub.parameter_indices()
    with torch.no_grad():
        tuned.weights[idx] = result.weights[idx].to(tuned.weights.dtype)
    return tuned, history
