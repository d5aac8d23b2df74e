"""QOC's probabilistic gradient pruning (Wang et al., "QOC: Quantum On-Chip Training with Parameter Shift and Gradient Pruning", DAC 2022)."""

from __future__ import annotations

import math

import numpy as np
import torch

from qnas.gradients.backprop import Backprop
from qnas.gradients.base import Gradient, GradientEngine


class ProbabilisticGradientPruning(GradientEngine):
    """QOC's probabilistic gradient pruning (Wang et al., DAC 2022) around an executor-based engine.

    Training alternates an accumulation window (`accumulation_window` steps computing
    every angle's gradient and summing their magnitudes) and a pruning window
    (`pruning_window` steps computing only a (1 - ratio) share of the angles, drawn
    without replacement with probability proportional to the accumulated magnitude).
    Small gradients measured on noisy hardware are mostly noise; skipping them saves
    their circuits. Skipped angles get gradient 0.
    """

    def __init__(
        self,
        engine: GradientEngine,
        accumulation_window: int = 1,
        pruning_window: int = 2,
        ratio: float = 0.5,
        seed: int = 0,
    ) -> None:
        if isinstance(engine, Backprop):
            raise ValueError("gradient pruning saves circuit executions; backprop has none to save")
        if not 0 <= ratio < 1:
            raise ValueError(f"pruning ratio {ratio} must be in [0, 1)")
        self.engine, self.ratio = engine, ratio
        self.accumulation_window, self.pruning_window = accumulation_window, pruning_window
        self.name = f"{engine.name}+qoc"
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.accumulated: torch.Tensor | None = None

    def _sampled(self, active: torch.Tensor) -> torch.Tensor:
        candidates = torch.nonzero(active).flatten().numpy()
        n_keep = max(1, math.ceil((1 - self.ratio) * len(candidates)))
        weight = self.accumulated.numpy()[candidates]
        # A floor keeps never-large angles drawable (and the draw defined when all are 0).
        weight = weight + 1e-3 * weight.mean() + 1e-12
        keep = self.rng.choice(candidates, size=n_keep, replace=False, p=weight / weight.sum())
        mask = torch.zeros_like(active)
        mask[keep] = True
        return mask

    def gradient(self, executor, theta, batch=None, with_loss=False, active=None) -> Gradient:
        active = torch.ones(len(theta), dtype=torch.bool) if active is None else active.bool()
        phase = self.step % (self.accumulation_window + self.pruning_window)
        self.step += 1
        if phase == 0 or self.accumulated is None:
            self.accumulated = torch.zeros(len(theta), dtype=torch.float64)
        if phase < self.accumulation_window:
            result = self.engine.gradient(executor, theta, batch, with_loss, active)
            self.accumulated += result.values.abs()
            return result
        return self.engine.gradient(executor, theta, batch, with_loss, self._sampled(active))
