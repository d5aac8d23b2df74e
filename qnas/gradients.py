"""Gradient engines for a subcircuit's weights, selectable by name, and fine-tuning with them.

A subcircuit's trainable vector `theta` holds the P angles it reads, in the order of
`Subcircuit.parameter_indices()`. An *executor* maps a batch of such vectors (K, P) to
their losses (K,) on one data batch and counts the circuits it ran; the same
executor-based engine then runs on the noiseless simulator (`NoiselessExecutor`), on the
noisy simulation of a device (`NoisyExecutor`) or on hardware.

Engines and what one gradient costs (P parameters, B circuits per loss):
- "backprop": autograd through the simulator; one forward and one backward pass (B).
- "parameter_shift": exact; 2 losses per angle with the two-term rule, 4 per angle with
  the four-term rule of controlled rotations (about 2PB in all).
- "finite_difference": central differences, 2 losses per angle (2PB), approximate.
- "spsa": Spall's simultaneous perturbation (IEEE TAC 1992): 2 losses whatever P (2B).

`ProbabilisticGradientPruning` wraps an executor-based engine with QOC's probabilistic
gradient pruning (Wang et al., "QOC: Quantum On-Chip Training with Parameter Shift and
Gradient Pruning", DAC 2022): skipped angles cost no circuits.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from qnas import noise
from qnas.devices import Device
from qnas.sim import Layer, expval_pauli_sum, expval_z, run
from qnas.supercircuit import Subcircuit
from qnas.tasks import Task

Batch = Any  # (features, labels) for classification, None for a VQE


def parameters_of(sub: Subcircuit) -> torch.Tensor:
    """Return the subcircuit's trainable vector theta (P,), a float64 copy of the angles it reads."""
    return sub.weights.detach()[sub.parameter_indices()].to(torch.float64).clone()


def with_parameters(sub: Subcircuit, theta: torch.Tensor) -> Subcircuit:
    """Return a Subcircuit like `sub` whose own weight vector holds `theta` at its parameter indices."""
    weights = sub.weights.detach().to(torch.float64).clone()
    weights[sub.parameter_indices()] = theta.detach().to(torch.float64)
    return Subcircuit(sub.genes, sub.n_wires, list(sub.layers), weights)


# ---------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs the circuits of K parameter vectors on one batch and counts them.

    `outputs` returns what the circuits measure (per-sample <Z> for classification, the
    energy for a VQE); `loss` is the classical, differentiable map from those to the
    losses (K,); calling the executor composes the two. The parameter-shift rule holds
    for measured expectations, not for a non-linear loss of them, so it differentiates
    `outputs` and applies the chain rule through `loss`.
    """

    sub: Subcircuit
    n_executions: int
    differentiable: bool

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor: ...

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor: ...

    def __call__(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor: ...


def task_loss(task: Task, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Return the losses (K,) from measured outputs: NLL of the <Z> readout (K, B, n_wires), or the energies (K,)."""
    if task.kind == "vqe":
        return outputs
    _, y = batch
    k, b, n = outputs.shape
    logits = task.readout(outputs.reshape(k * b, n))
    nll = F.nll_loss(F.log_softmax(logits, dim=1), y.repeat(k), reduction="none")
    return nll.view(k, b).mean(1)


def _as_input_layers(layers: Sequence[Layer], position: dict[int, int], offset: int) -> list[Layer]:
    """Return `layers` with weight angles read from per-sample inputs at column offset + position.

    Each row of the simulator's inputs then carries its own parameter vector, so K
    shifted vectors times B samples run as one batched simulation.
    """
    out = []
    for ly in layers:
        if ly.source != "weight":
            out.append(ly)
            continue
        index = tuple(tuple(offset + position[i] for i in ix) for ix in ly.index)
        out.append(Layer(ly.gate, ly.wires, "input", index))
    return out


class _TaskExecutor:
    sub: Subcircuit
    task: Task

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the losses (K,) of measured `outputs`."""
        return task_loss(self.task, outputs, batch)

    def __call__(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the losses (K,) of the parameter vectors `thetas` (K, P) on `batch`."""
        return self.loss(self.outputs(thetas, batch), batch)


class NoiselessExecutor(_TaskExecutor):
    """Exact outputs on the torch statevector simulator; differentiable, so backprop can use it.

    One loss costs B circuits for a classification batch of B samples and 1 for a VQE
    (the simulator reads the energy off the state; hardware would need one circuit per
    measurement basis).
    """

    differentiable = True

    def __init__(self, sub: Subcircuit, task: Task, dtype: torch.dtype = torch.complex64) -> None:
        self.sub, self.task, self.dtype = sub, task, dtype
        position = {i: p for p, i in enumerate(sub.parameter_indices())}
        self.layers = [*task.encoder, *_as_input_layers(sub.layers, position, task.n_inputs)]
        self.n_executions = 0

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the energies (K,) or per-sample <Z> (K, B, n_wires) of `thetas` (K, P)."""
        k = thetas.shape[0]
        real = torch.float64 if self.dtype == torch.complex128 else torch.float32
        thetas = thetas.to(real)
        if self.task.kind == "vqe":
            state = run(self.layers, self.task.n_wires, inputs=thetas, dtype=self.dtype)
            self.n_executions += k
            return expval_pauli_sum(state, self.task.paulis, self.task.coeffs)
        x = batch[0]
        b = x.shape[0]
        inputs = torch.cat([x.to(real).repeat(k, 1), thetas.repeat_interleave(b, 0)], dim=1)
        state = run(self.layers, self.task.n_wires, inputs=inputs, dtype=self.dtype)
        self.n_executions += k * b
        return expval_z(state, self.task.n_wires).view(k, b, -1)


class NoisyExecutor(_TaskExecutor):
    """Outputs from the noisy simulation of a device (qnas.noise), readout error included.

    The subcircuit is transpiled once with its angles as free Parameters (one circuit per
    measurement basis for a VQE); each call binds every (parameter vector, sample) pair
    as one row of a single batched density-matrix simulation. `shots` samples outcomes
    instead of using exact probabilities, with a new seed per call; `noiseless` takes the
    same transpiled path without noise.
    """

    differentiable = False

    def __init__(
        self,
        sub: Subcircuit,
        task: Task,
        device: Device,
        layout: Sequence[int] | None = None,
        optimization_level: int = 2,
        shots: int | None = None,
        seed: int = 0,
        noiseless: bool = False,
    ) -> None:
        self.sub, self.task, self.device = sub, task, device
        self.shots, self.seed, self.noiseless = shots, seed, noiseless
        self.n_executions = 0
        circuit = sub.to_qiskit(bound=False, encoder=task.encoder, n_inputs=task.n_inputs)
        bases = task.measurement_bases() if task.kind == "vqe" else [None]
        self.candidates = {
            basis: noise.transpile_candidate(
                circuit if basis is None else noise.basis_rotation(circuit, basis),
                device,
                layout,
                optimization_level,
                seed,
            )
            for basis in bases
        }
        position = {i: p for p, i in enumerate(sub.parameter_indices())}
        # Column sources of each candidate's parameters: ("theta", position in P) or ("x", feature).
        self.columns = {
            basis: [
                ("theta", position[p.index]) if p.vector.name == "theta" else ("x", p.index)
                for p in cand.circuit.parameters
            ]
            for basis, cand in self.candidates.items()
        }

    def _values(self, basis: str | None, thetas: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """Return the (K * B, n_params) table: row k * B + b binds thetas[k] and sample b."""
        k = thetas.shape[0]
        b = 1 if x is None else x.shape[0]
        table = np.empty((k * b, len(self.columns[basis])))
        for j, (source, col) in enumerate(self.columns[basis]):
            table[:, j] = np.repeat(thetas[:, col], b) if source == "theta" else np.tile(x[:, col], k)
        return table

    def _probabilities(self, basis: str | None, values: np.ndarray) -> np.ndarray:
        self.seed += 1
        return noise.noisy_probabilities(
            self.candidates[basis], self.device, values, self.shots, self.noiseless, self.seed
        )

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the noisy energies (K,) or per-sample <Z> (K, B, n_wires) of `thetas` (K, P)."""
        t = thetas.detach().to(torch.float64).cpu().numpy()
        k = t.shape[0]
        if self.task.kind == "vqe":
            probs = {b: self._probabilities(b, self._values(b, t, None)) for b in self.candidates}
            self.n_executions += k * len(self.candidates)
            energies = [
                self.task.energy_from_probabilities({b: p[i] for b, p in probs.items()}) for i in range(k)
            ]
            return torch.tensor(energies, dtype=torch.float64)
        x = batch[0]
        probs = self._probabilities(None, self._values(None, t, x.double().numpy()))
        self.n_executions += k * x.shape[0]
        z = noise.z_expectations(probs, self.task.n_wires).reshape(k, x.shape[0], -1)
        return torch.as_tensor(z, dtype=torch.float64)


# ---------------------------------------------------------------------------------------
# Shift rules
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------


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


class _ShiftedEvaluations(GradientEngine):
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


class ParameterShift(GradientEngine):
    """Exact gradients from shifted circuits: the two-term rule, four terms for controlled rotations.

    The rules give d outputs / d theta_j; the loss gradient follows by the chain rule
    through the executor's classical loss, evaluated at the unshifted outputs. So a
    gradient costs one unshifted run plus one run per shift term (2 per angle, 4 for the
    rotation angle of a controlled rotation), each over the batch's circuits; the loss at
    theta comes for free.
    """

    name = "parameter_shift"

    def gradient(self, executor, theta, batch=None, with_loss=False, active=None) -> Gradient:
        theta = theta.detach().to(torch.float64)
        active = torch.ones(len(theta), dtype=torch.bool) if active is None else active.bool()
        rules = shift_rules(executor.sub)
        rows, owners, coeffs = [theta], [], []
        for j in torch.nonzero(active).flatten().tolist():
            for shift, coeff in rules[j]:
                row = theta.clone()
                row[j] += shift
                rows.append(row)
                owners.append(j)
                coeffs.append(coeff)
        before = executor.n_executions
        outputs = executor.outputs(torch.stack(rows), batch).detach().to(torch.float64)
        cost = executor.n_executions - before
        at_theta = outputs[0].clone().requires_grad_(True)
        loss = executor.loss(at_theta[None], batch)[0]
        (d_loss,) = torch.autograd.grad(loss, at_theta)
        # d loss / d theta_j = sum_c coeff_c <d loss / d outputs, outputs(theta + s_c e_j)>
        per_row = (outputs[1:] * d_loss).reshape(len(owners), -1).sum(1)
        grad = torch.zeros(len(theta), dtype=torch.float64)
        grad.index_add_(
            0, torch.tensor(owners, dtype=torch.long), torch.tensor(coeffs, dtype=torch.float64) * per_row
        )
        return Gradient(grad, cost, loss.item())


class FiniteDifference(_ShiftedEvaluations):
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


class SPSA(_ShiftedEvaluations):
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


ENGINES: dict[str, type[GradientEngine]] = {
    cls.name: cls for cls in (Backprop, ParameterShift, FiniteDifference, SPSA)
}


def get_engine(name: str, **options: Any) -> GradientEngine:
    """Return the gradient engine called `name`, built with `options` (e.g. seed for spsa)."""
    if name not in ENGINES:
        raise ValueError(f"unknown gradient engine {name!r}; allowed: {', '.join(ENGINES)}")
    return ENGINES[name](**options)


# ---------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------


@dataclass
class FinetuneSettings:
    steps: int = 20
    batch_size: int = 8
    lr: float = 0.02
    seed: int = 0


def _batch_stream(task: Task, batch_size: int, seed: int) -> Iterator[Batch]:
    """Shuffled training batches, epoch after epoch (None forever for a VQE)."""
    rng = np.random.default_rng(seed)
    while True:
        yield from task.batches(batch_size, rng)


def finetune_with(
    engine: GradientEngine | str,
    executor: Executor,
    task: Task,
    settings: FinetuneSettings,
    pruned: torch.Tensor | None = None,
    theta: torch.Tensor | None = None,
) -> tuple[Subcircuit, list[dict]]:
    """Return (the tuned subcircuit with its own weights, per-step history) after Adam on `engine`'s gradients.

    Starts from `theta` or the executor's subcircuit's inherited angles. Angles in the
    boolean mask `pruned` are held at 0 and cost no circuits. History rows: step, loss
    at the step's theta (as the executor measures it), the step's circuit executions,
    their running total, and seconds.
    """
    engine = get_engine(engine) if isinstance(engine, str) else engine
    sub = executor.sub
    theta = parameters_of(sub) if theta is None else theta.detach().to(torch.float64).clone()
    active = None if pruned is None else ~pruned.bool()
    if pruned is not None:
        theta[pruned.bool()] = 0.0
    param = torch.nn.Parameter(theta)
    optimizer = torch.optim.Adam([param], lr=settings.lr)
    batches = _batch_stream(task, settings.batch_size, settings.seed)
    history, total = [], 0
    for step in range(settings.steps):
        t0 = time.perf_counter()
        result = engine.gradient(executor, param.detach(), next(batches), with_loss=True, active=active)
        param.grad = result.values if active is None else result.values * active
        optimizer.step()
        if pruned is not None:
            with torch.no_grad():
                param[pruned.bool()] = 0.0
        total += result.n_executions
        history.append(
            {
                "step": step + 1,
                "loss": result.loss,
                "executions": result.n_executions,
                "total_executions": total,
                "seconds": time.perf_counter() - t0,
            }
        )
    return with_parameters(sub, param.detach()), history
