"""Iterative gate pruning of a trained subcircuit (QuantumNAS, Wang et al., HPCA 2022).

Unstructured magnitude pruning: the angles closest to an identity angle are set to 0 and
held there while the remaining ones are fine-tuned; the pruning ratio ramps up from 0.05
to the target along a polynomial decay schedule (Zhu & Gupta, "To prune, or not to
prune", 2017, as QuantumNAS uses), so the circuit adapts step by step.

What pruning a gate means here:
- The unit pruned is one angle. Its distance to the identity is its distance to the
  nearest multiple of 2pi (at which a rotation is the identity up to a global phase),
  except for the rotation angle of a controlled rotation (crx, cry, crz, cu3's theta),
  whose period is 4pi: CRX(2pi) is a Z on the control, far from the identity.
- A pruned angle is set to 0 exactly. A 1-angle gate with its angle pruned is the
  identity and is dropped; a u3 or cu3 is dropped once all three of its angles are
  pruned (U3(0, 0, 0) = I), and otherwise stays with its pruned angles at 0.
- So angle pruning rarely drops a U3 or CU3; granularity "gate" ranks whole gates by the
  norm of their angles' distances and prunes all their angles, dropping them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from qnas.executors import Executor, parameters_of, with_parameters
from qnas.gradients import GradientEngine, get_engine
from qnas.sim import Layer
from qnas.supercircuit import Subcircuit
from qnas.tasks import Task
from qnas.train import count_executions, optimize

Granularity = Literal["angle", "gate"]
_CONTROLLED_ROTATION = {"crx": (0,), "cry": (0,), "crz": (0,), "cu3": (0,)}


def identity_periods(sub: Subcircuit) -> torch.Tensor:
    """Return (P,) the period of the identity angles of each parameter (2pi, or 4pi for controlled rotations)."""
    position = {i: p for p, i in enumerate(sub.parameter_indices())}
    periods = torch.full((len(position),), 2 * math.pi, dtype=torch.float64)
    for ly in sub.layers:
        if ly.source != "weight":
            continue
        for ix in ly.index:
            for angle in _CONTROLLED_ROTATION.get(ly.gate, ()):
                periods[position[ix[angle]]] = 4 * math.pi
    return periods


def identity_distance(sub: Subcircuit, theta: torch.Tensor) -> torch.Tensor:
    """Return (P,) the distance of each angle of `theta` to the nearest angle where its gate is the identity."""
    periods = identity_periods(sub)
    theta = theta.detach().to(torch.float64)
    return (theta - periods * torch.round(theta / periods)).abs()


def gate_groups(sub: Subcircuit) -> list[list[int]]:
    """Return the parameter positions (in theta order) of each parametrized gate of `sub`."""
    position = {i: p for p, i in enumerate(sub.parameter_indices())}
    return [[position[i] for i in ix] for ly in sub.layers if ly.source == "weight" for ix in ly.index]


def select_pruned(
    sub: Subcircuit,
    theta: torch.Tensor,
    ratio: float,
    already: torch.Tensor | None = None,
    granularity: Granularity = "angle",
) -> torch.Tensor:
    """Return the boolean mask (P,) of the angles pruned at `ratio`, keeping those in `already`.

    "angle": the round(ratio * P) angles nearest the identity (QuantumNAS). "gate": the
    round(ratio * n_gates) gates whose angles are nearest the identity together
    (Euclidean norm of their distances), all angles of each; this drops whole U3 and CU3
    gates, which angle pruning rarely does.
    """
    if not 0 <= ratio <= 1:
        raise ValueError(f"pruning ratio {ratio} must be in [0, 1]")
    if granularity not in ("angle", "gate"):
        raise ValueError(f"pruning granularity {granularity!r}; allowed: 'angle', 'gate'")
    distance = identity_distance(sub, theta)
    groups = [[p] for p in range(len(theta))] if granularity == "angle" else gate_groups(sub)
    group_distance = torch.stack([distance[g].norm() for g in groups])
    n_already = 0
    if already is not None:
        was_pruned = torch.tensor([bool(already[g].all()) for g in groups])
        group_distance[was_pruned] = -1.0  # once pruned, always pruned: the ratio only grows
        n_already = int(was_pruned.sum())
    n_pruned = max(round(ratio * len(groups)), n_already)
    mask = torch.zeros(len(theta), dtype=torch.bool)
    for g in torch.argsort(group_distance, stable=True)[:n_pruned].tolist():
        mask[groups[g]] = True
    return mask if already is None else mask | already.bool()


def drop_pruned_gates(sub: Subcircuit, theta: torch.Tensor, pruned: torch.Tensor) -> Subcircuit:
    """Return the subcircuit with pruned angles at 0 and without the gates they made the identity.

    The result prepares the same state as the masked circuit (all gates, pruned angles at
    0) and exports a smaller circuit; it owns its weight vector.
    """
    theta = theta.detach().to(torch.float64).clone()
    theta[pruned.bool()] = 0.0
    indices = sub.parameter_indices()
    dropped = {indices[p] for p in torch.nonzero(pruned).flatten().tolist()}
    layers = []
    for ly in sub.layers:
        if ly.source != "weight":
            layers.append(ly)
            continue
        keep = [p for p, ix in enumerate(ly.index) if not all(i in dropped for i in ix)]
        if keep:
            layers.append(
                Layer(ly.gate, tuple(ly.wires[p] for p in keep), "weight", tuple(ly.index[p] for p in keep))
            )
    masked = with_parameters(sub, theta)
    return Subcircuit(sub.genes, sub.n_wires, layers, masked.weights, sub.head)


def ratio_schedule(target: float, n_epochs: int, initial: float = 0.05, power: float = 3.0) -> list[float]:
    """Return the pruning ratio of each epoch: polynomial decay from `initial` to `target` at the last epoch.

    r_e = target + (initial - target) (1 - e / (n_epochs - 1))^power (Zhu & Gupta 2017);
    a target below `initial` is used from the first epoch.
    """
    if n_epochs < 1:
        raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
    initial = min(initial, target)
    span = max(n_epochs - 1, 1)
    return [target + (initial - target) * (1 - e / span) ** power for e in range(n_epochs)]


@dataclass
class PruneSettings:
    """QuantumNAS fine-tunes with lr 2e-3 while pruning; an epoch is one pass over the training set."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 0
    initial_ratio: float = 0.05
    granularity: Granularity = "angle"
    seed: int = 0


@dataclass
class PruneResult:
    subcircuit: Subcircuit  # pruned gates dropped, own weights
    pruned: torch.Tensor  # (P,) bool, in the order of the original's parameter_indices()
    history: list[dict]


def iterative_prune(
    executor: Executor,
    task: Task,
    target_ratio: float,
    settings: PruneSettings,
    engine: GradientEngine | str = "backprop",
) -> PruneResult:
    """Return the subcircuit of `executor` pruned to `target_ratio`, fine-tuned between pruning steps.

    Each epoch prunes up to the scheduled ratio, then fine-tunes the unpruned angles for
    one epoch with `engine` through `executor` (noiseless or noise-aware).
    """
    engine = get_engine(engine) if isinstance(engine, str) else engine
    sub = executor.sub
    param = torch.nn.Parameter(parameters_of(sub))
    ratios = ratio_schedule(target_ratio, settings.epochs, settings.initial_ratio)
    per_epoch = task.n_batches(settings.batch_size)
    pruned = torch.zeros(len(param), dtype=torch.bool)
    executions: list[int] = []
    n_pruned: list[int] = []

    def step(batch) -> float:
        nonlocal pruned
        if len(executions) % per_epoch == 0:
            ratio = ratios[len(executions) // per_epoch]
            pruned = select_pruned(sub, param.detach(), ratio, pruned, settings.granularity)
            n_pruned.append(int(pruned.sum()))
        with torch.no_grad():
            param[pruned] = 0.0
        result = engine.gradient(executor, param.detach(), batch, with_loss=True, active=~pruned)
        param.grad = result.values * ~pruned
        executions.append(result.n_executions)
        return result.loss

    history = optimize(param, task, settings, settings.seed, step, progress=False, desc="prune")
    count_executions(history, executions, per_epoch)
    for row, ratio, count in zip(history, ratios, n_pruned, strict=True):
        row.update(ratio=ratio, n_pruned=count)
    return PruneResult(drop_pruned_gates(sub, param.detach(), pruned), pruned, history)
