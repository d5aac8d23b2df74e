"""Exact gradients by the parameter-shift rule (Mitarai et al., PRA 98, 032309 (2018); Schuld et al., PRA 99, 032331 (2019)).

Two terms for gates with one frequency; four terms for controlled rotations (Anselmetti
et al., New J. Phys. 23, 113010 (2021); Wierichs et al., Quantum 6, 677 (2022)).
"""

from __future__ import annotations

import math

import torch

from qnas.gradients.base import Gradient, GradientEngine
from qnas.supercircuit import Subcircuit

ShiftRule = tuple[tuple[float, float], ...]  # (shift, coefficient) pairs: df = sum c f(theta + s)

# Gates exp(-i theta/2 G) whose generator G has eigenvalues +-1 (Pauli rotations), or a
# phase diag(1, e^{i theta}) (eigenvalues 0, 1): one frequency, so f(theta) = a + b cos
# theta + c sin theta and df = [f(theta + pi/2) - f(theta - pi/2)] / 2 exactly.
TWO_TERM: ShiftRule = ((math.pi / 2, 0.5), (-math.pi / 2, -0.5))

# Controlled rotations exp(-i theta/2 |1><1| (x) P): generator eigenvalues {0, 0, +-1/2},
# so f has frequencies 1/2 and 1. The four-term rule (Anselmetti et al., New J. Phys. 23,
# 113010 (2021); Wierichs et al., Quantum 6, 677 (2022)) solves for both:
# df = c+ [f(+pi/2) - f(-pi/2)] - c- [f(+3pi/2) - f(-3pi/2)], c+- = (sqrt2 +- 1) / (4 sqrt2).
_C_PLUS = (math.sqrt(2) + 1) / (4 * math.sqrt(2))
_C_MINUS = (math.sqrt(2) - 1) / (4 * math.sqrt(2))
FOUR_TERM: ShiftRule = (
    (math.pi / 2, _C_PLUS),
    (-math.pi / 2, -_C_PLUS),
    (3 * math.pi / 2, -_C_MINUS),
    (-3 * math.pi / 2, _C_MINUS),
)

# One rule per angle. U3(theta, phi, lam) = P(phi) RY(theta) P(lam) exactly, with P the
# phase gate diag(1, e^{i a}); so the controlled U3 is CP(phi) CRY(theta) CP(lam): its
# theta is a controlled rotation (four terms) while CP(a) = diag(1, 1, 1, e^{i a}) has
# one frequency, and phi and lam take the two-term rule.
SHIFT_RULES: dict[str, tuple[ShiftRule, ...]] = {
    **{g: (TWO_TERM,) for g in ("rx", "ry", "rz", "rxx", "ryy", "rzz", "rzx")},
    "u3": (TWO_TERM, TWO_TERM, TWO_TERM),
    **{g: (FOUR_TERM,) for g in ("crx", "cry", "crz")},
    "cu3": (FOUR_TERM, TWO_TERM, TWO_TERM),
}


def shift_rules(sub: Subcircuit) -> list[ShiftRule]:
    """Return the exact shift rule of each of the subcircuit's parameters (in theta order).

    Each angle must be read by exactly one gate: a shared angle would need one shift per
    occurrence, which an executor of parameter vectors cannot express.
    """
    position = {i: p for p, i in enumerate(sub.parameter_indices())}
    rules: list[ShiftRule | None] = [None] * len(position)
    for ly in sub.layers:
        if ly.source != "weight":
            continue
        if ly.gate not in SHIFT_RULES:
            raise ValueError(f"no parameter-shift rule for gate {ly.gate!r}; known: {', '.join(SHIFT_RULES)}")
        for ix in ly.index:
            for angle, i in enumerate(ix):
                if rules[position[i]] is not None:
                    raise ValueError(f"weight {i} is read by more than one gate; parameter shift needs one")
                rules[position[i]] = SHIFT_RULES[ly.gate][angle]
    return rules  # type: ignore[return-value]


class ParameterShift(GradientEngine):
    """Exact gradients from shifted circuits: the two-term rule, four terms for controlled rotations.

    The rules give d outputs / d theta_j; the loss gradient follows by the chain rule
    through the executor's classical loss, evaluated at the unshifted outputs. So a
    gradient costs one unshifted run plus one run per shift term (2 per angle, 4 for the
    rotation angle of a controlled rotation), each over the batch's circuits; the loss at
    theta comes for free. A task's classical head (Quantum-Train's mapping model: the last
    entries of theta, read after measurement) takes no shift: its gradient is backprop's
    through the loss at the unshifted outputs, so a noisy executor trains it too.
    """

    name = "parameter_shift"

    def gradient(self, executor, theta, batch=None, with_loss=False, active=None) -> Gradient:
        theta = theta.detach().to(torch.float64)
        active = torch.ones(len(theta), dtype=torch.bool) if active is None else active.bool()
        rules = shift_rules(executor.sub)
        rows, owners, coeffs = [theta], [], []
        for j in torch.nonzero(active).flatten().tolist():
            for shift, coeff in rules[j] or ():  # a head entry (no rule) is not shifted
                row = theta.clone()
                row[j] += shift
                rows.append(row)
                owners.append(j)
                coeffs.append(coeff)
        before = executor.n_executions
        outputs = executor.outputs(torch.stack(rows), batch).detach().to(torch.float64)
        cost = executor.n_executions - before
        at_theta = outputs[0].clone().requires_grad_(True)
        n_head = len(executor.sub.head)
        theta_var = theta.clone().requires_grad_(bool(n_head))
        loss = executor.loss_at(at_theta[None], batch, theta_var)
        d_loss, *d_head = torch.autograd.grad(
            loss, [at_theta, theta_var][: 1 + bool(n_head)], allow_unused=True
        )
        # d loss / d theta_j = sum_c coeff_c <d loss / d outputs, outputs(theta + s_c e_j)>
        per_row = (outputs[1:] * d_loss).reshape(len(owners), -1).sum(1)
        grad = torch.zeros(len(theta), dtype=torch.float64)
        if d_head and d_head[0] is not None:
            grad[-n_head:] = d_head[0][-n_head:].detach() * active[-n_head:]
        grad.index_add_(
            0, torch.tensor(owners, dtype=torch.long), torch.tensor(coeffs, dtype=torch.float64) * per_row
        )
        return Gradient(grad, cost, loss.item())
