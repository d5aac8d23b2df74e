"""Backpropagation: autograd through the differentiable torch simulator (one forward, one backward pass)."""

from __future__ import annotations

import torch

from qnas.gradients.base import Gradient, GradientEngine


class Backprop(GradientEngine):
    """Autograd through the simulator: one forward and one backward pass, loss included."""

    name = "backprop"

    def gradient(self, executor, theta, batch=None, with_loss=False, active=None) -> Gradient:
        if not executor.differentiable:
            raise ValueError(f"backprop needs a differentiable executor, not {type(executor).__name__}")
        before = executor.n_executions
        leaf = theta.detach().to(torch.float64).clone().requires_grad_(True)
        loss = executor(leaf[None], batch)[0]
        (grad,) = torch.autograd.grad(loss, leaf)
        if active is not None:
            grad = grad * active
        return Gradient(grad.detach(), executor.n_executions - before, loss.item())
