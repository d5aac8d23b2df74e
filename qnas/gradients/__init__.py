"""Gradient engines for a subcircuit's weights, by name; each works through an executor (`qnas.executors`).

Engines and what one gradient costs (P parameters, B circuits per loss):
- "backprop": autograd through the simulator; one forward and one backward pass (B).
- "parameter_shift": exact; 2 losses per angle with the two-term rule, 4 per angle with
  the four-term rule of controlled rotations (about 2PB in all).
- "finite_difference": central differences, 2 losses per angle (2PB), approximate.
- "spsa": simultaneous perturbation, 2 losses whatever P (2B).
`ProbabilisticGradientPruning` (QOC) wraps any executor-based engine; skipped angles
cost no circuits.
"""

from __future__ import annotations

from typing import Any

from qnas.gradients.backprop import Backprop
from qnas.gradients.base import Gradient, GradientEngine
from qnas.gradients.finite_difference import FiniteDifference
from qnas.gradients.parameter_shift import FOUR_TERM, SHIFT_RULES, TWO_TERM, ParameterShift, shift_rules
from qnas.gradients.qoc import ProbabilisticGradientPruning
from qnas.gradients.spsa import SPSA

ENGINES: dict[str, type[GradientEngine]] = {
    cls.name: cls for cls in (Backprop, ParameterShift, FiniteDifference, SPSA)
}


def get_engine(name: str, **options: Any) -> GradientEngine:
    """Return the gradient engine called `name`, built with `options` (e.g. seed for spsa)."""
    if name not in ENGINES:
        raise ValueError(f"unknown gradient engine {name!r}; allowed: {', '.join(ENGINES)}")
    return ENGINES[name](**options)


__all__ = [
    "ENGINES",
    "FOUR_TERM",
    "SHIFT_RULES",
    "SPSA",
    "TWO_TERM",
    "Backprop",
    "FiniteDifference",
    "Gradient",
    "GradientEngine",
    "ParameterShift",
    "ProbabilisticGradientPruning",
    "get_engine",
    "shift_rules",
]
