"""Central finite differences: 2 losses per angle, approximate to O(h^2)."""

from __future__ import annotations

import torch

from qnas.gradients.base import ShiftedEvaluations


class FiniteDifference(ShiftedEvaluations):
    """Central differences [f(theta + h e_j) - f(theta - h e_j)] / 2h: 2 losses per angle."""

    name = "finite_difference"

    def __init__(self, step: float = 1e-4) -> None:
        self.step = step

    def _shifts(self, executor, theta, active):
        idx = torch.nonzero(active).flatten()
        eye = torch.eye(len(theta), dtype=torch.float64)[idx] * self.step
        rows = torch.cat([theta + eye, theta - eye])
        n = len(idx)

        def combine(losses: torch.Tensor) -> torch.Tensor:
            grad = torch.zeros(len(theta), dtype=torch.float64)
            grad[idx] = (losses[:n] - losses[n:]) / (2 * self.step)
            return grad

        return rows, combine
