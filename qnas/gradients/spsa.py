"""Simultaneous perturbation stochastic approximation (Spall, IEEE TAC 37(3), 1992)."""

from __future__ import annotations

import torch

from qnas.gradients.base import ShiftedEvaluations


class SPSA(ShiftedEvaluations):
    """Simultaneous perturbation (Spall, IEEE TAC 37(3), 1992): 2 losses per draw, whatever P.

    g = [f(theta + c D) - f(theta - c D)] / 2c * D with D uniform in {-1, +1}^P (1/D_i =
    D_i); an unbiased estimate of the gradient up to O(c^2), averaged over `n_draws`.
    """

    name = "spsa"

    def __init__(self, perturbation: float = 0.05, n_draws: int = 1, seed: int = 0) -> None:
        self.perturbation, self.n_draws = perturbation, n_draws
        self.generator = torch.Generator().manual_seed(seed)

    def _shifts(self, executor, theta, active):
        signs = torch.randint(0, 2, (self.n_draws, len(theta)), generator=self.generator) * 2.0 - 1
        signs = signs.to(torch.float64) * active
        c = self.perturbation
        rows = torch.cat([theta + c * signs, theta - c * signs])

        def combine(losses: torch.Tensor) -> torch.Tensor:
            diff = (losses[: self.n_draws] - losses[self.n_draws :]) / (2 * c)
            return (diff[:, None] * signs).mean(0)

        return rows, combine
