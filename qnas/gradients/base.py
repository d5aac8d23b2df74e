"""What a gradient engine is: d loss / d theta through an executor, with what it cost.

Engines are small, swappable pieces behind one interface (as Optuna's NSGA-II
crossovers are): `Backprop`, `ParameterShift`, `FiniteDifference`, `SPSA`, each in its own
module with the paper it implements, and `ProbabilisticGradientPruning` around any
executor-based one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from qnas.executors import Batch, Executor


@dataclass
class Gradient:
    """A gradient estimate, what it cost, and the loss at theta when it was computed too."""

    values: torch.Tensor  # (P,) float64
    n_executions: int
    loss: float | None = None


class GradientEngine(ABC):
    """Computes d loss / d theta through an executor."""

    name: str

    @abstractmethod
    def gradient(
        self,
        executor: Executor,
        theta: torch.Tensor,
        batch: Batch = None,
        with_loss: bool = False,
        active: torch.Tensor | None = None,
    ) -> Gradient:
        """Return the gradient at `theta`; angles outside the boolean mask `active` get 0 and cost nothing."""


class ShiftedEvaluations(GradientEngine):
    """Black-box engines: the gradient is a linear combination of losses at shifted parameter vectors."""

    @abstractmethod
    def _shifts(self, executor: Executor, theta: torch.Tensor, active: torch.Tensor) -> tuple:
        """Return (rows (K, P), combine: losses (K,) -> gradient (P,))."""

    def gradient(self, executor, theta, batch=None, with_loss=False, active=None) -> Gradient:
        theta = theta.detach().to(torch.float64)
        active = torch.ones(len(theta), dtype=torch.bool) if active is None else active.bool()
        rows, combine = self._shifts(executor, theta, active)
        if with_loss:
            rows = torch.cat([rows, theta[None]])
        before = executor.n_executions
        losses = executor(rows, batch).detach().to(torch.float64) if len(rows) else torch.zeros(0)
        cost = executor.n_executions - before
        loss = losses[-1].item() if with_loss else None
        grad = combine(losses[:-1] if with_loss else losses)
        return Gradient(grad, cost, loss)
