"""Executors: run the circuits of K parameter vectors of a subcircuit on one batch, and count them.

A subcircuit's trainable vector `theta` holds the P angles it reads, in the order of
`Subcircuit.parameter_indices()`. An executor maps a batch of such vectors (K, P) to the
task's outputs (K, B, d) and its losses (K,); the gradient engines (`qnas.gradients`)
work through it, so one engine runs on the noiseless simulator (`NoiselessExecutor`),
on the noisy simulation of a device (`NoisyExecutor`) or on hardware. Executors ask the
task for everything (its features, measurement bases and outputs): they work for every
kind of task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import torch

from qnas.devices import Device
from qnas.noise import Simulation, noisy_probabilities
from qnas.sim import Layer, run
from qnas.supercircuit import Subcircuit
from qnas.tasks import Task
from qnas.transpiled import transpile_candidate

Batch = Any  # what the task's batches yield: (features, labels) for classification, None for a VQE


def parameters_of(sub: Subcircuit) -> torch.Tensor:
    """Return the subcircuit's trainable vector theta (P,), a float64 copy of the angles it reads."""
    return sub.weights.detach()[sub.parameter_indices()].to(torch.float64).clone()


def with_parameters(sub: Subcircuit, theta: torch.Tensor) -> Subcircuit:
    """Return a Subcircuit like `sub` whose own weight vector holds `theta` at its parameter indices."""
    weights = sub.weights.detach().to(torch.float64).clone()
    weights[sub.parameter_indices()] = theta.detach().to(torch.float64)
    return Subcircuit(sub.genes, sub.n_wires, list(sub.layers), weights, sub.head)


class Executor(Protocol):
    """Runs the circuits of K parameter vectors on one batch and counts them.

    `outputs` returns what the circuits measure (K, B, d); `loss` is the classical,
    differentiable map from those to the losses (K,); calling the executor composes the
    two. The parameter-shift rule holds for measured expectations, not for a non-linear
    loss of them, so it differentiates `outputs` and applies the chain rule through `loss`.
    """

    sub: Subcircuit
    n_executions: int
    differentiable: bool

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor: ...

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor: ...

    def loss_at(self, outputs: torch.Tensor, batch: Batch, theta: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor: ...


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
        """Return the losses (K,) of measured `outputs` (K, B, d)."""
        return self.task.loss_from_outputs(outputs, batch)

    def loss_at(self, outputs: torch.Tensor, batch: Batch, theta: torch.Tensor) -> torch.Tensor:
        """Return the loss of measured `outputs` (1, B, d) with the head read from `theta` (P,), differentiable in both.

        Without a head this is `loss`; with one, the head's entries of theta (its last
        n_head_params) are what the loss reads, so a shift-rule engine gets the head's
        gradient by backprop at the unshifted outputs.
        """
        if not self.sub.head:
            return self.loss(outputs, batch)[0]
        index = torch.as_tensor(self.sub.parameter_indices(), dtype=torch.long)
        weights = self.sub.weights.detach().to(theta.dtype).index_put((index,), theta)
        return self.task.bind(replace(self.sub, weights=weights)).loss_from_outputs(outputs, batch)[0]

    def __call__(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the losses (K,) of the parameter vectors `thetas` (K, P) on `batch`."""
        outputs = self.outputs(thetas, batch)
        if not self.sub.head:
            return self.loss(outputs, batch)
        # A classical head (the last entries of theta) is not a rotation angle: no shift
        # rule holds for it, so only backprop (one vector, differentiable) or the shift
        # rule's chain rule (loss_at) trains it.
        if thetas.shape[0] != 1:
            raise ValueError(
                f"task {self.task.name} has a classical head ({len(self.sub.head)} weights): "
                "set finetune.engine to backprop or parameter_shift"
            )
        return self.loss_at(outputs, batch, thetas[0])[None]


class NoiselessExecutor(_TaskExecutor):
    """Exact outputs on the torch statevector simulator; differentiable, so backprop can use it.

    One loss costs B circuits for a batch of B samples (1 for a VQE: the simulator reads
    the energy off the state; hardware needs one circuit per measurement basis).
    """

    differentiable = True

    def __init__(self, sub: Subcircuit, task: Task, dtype: torch.dtype = torch.complex64) -> None:
        self.sub, self.task, self.dtype = sub, task, dtype
        position = {i: p for p, i in enumerate(sub.parameter_indices())}
        self.layers = [*task.encoder, *_as_input_layers(sub.layers, position, task.n_inputs)]
        self.index = torch.as_tensor(sub.parameter_indices(), dtype=torch.long)
        self.n_executions = 0

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the outputs (K, B, d) of `thetas` (K, P) on `batch`."""
        k = thetas.shape[0]
        real = torch.float64 if self.dtype == torch.complex128 else torch.float32
        x = self.task.features(batch).to(real)
        b = x.shape[0]
        if k == 1:
            # One vector: its angles shared by the batch, which lets the simulator fuse gates.
            weights = self.sub.weights.detach().to(thetas.dtype).index_put((self.index,), thetas[0])
            state = self.task.state(replace(self.sub, weights=weights), x, self.dtype)
        else:
            inputs = torch.cat([x.repeat(k, 1), thetas.to(real).repeat_interleave(b, 0)], dim=1)
            state = run(self.layers, self.task.n_wires, inputs=inputs, dtype=self.dtype)
        self.n_executions += k * b
        return self.task.outputs_from_state(state).view(k, b, -1)


class NoisyExecutor(_TaskExecutor):
    """Outputs from the noisy simulation of a device (qnas.noise), readout error included.

    The subcircuit is transpiled once with its angles as free Parameters, exactly as the
    search scores it (the config's optimization level, seed and idle noise), and
    measured in each of the task's bases; each call binds every (parameter vector,
    sample) pair as one row of a single batched density-matrix simulation per basis.
    `shots` samples outcomes instead of using exact probabilities, with a new seed per
    call; `noiseless` takes the same transpiled path without noise.
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
        idle_noise: bool = True,
        simulation: Simulation | None = None,
        decoupling: bool = False,
    ) -> None:
        self.sub, self.task, self.device = sub, task, device
        self.shots, self.seed, self.noiseless = shots, seed, noiseless
        self.simulation = simulation
        self.n_executions = 0
        circuit = sub.to_qiskit(bound=False, encoder=task.encoder, n_inputs=task.n_inputs)
        candidate = transpile_candidate(
            circuit, device, layout, optimization_level, seed, idle_noise, decoupling
        )
        self.candidates = task.measurement_circuits(candidate, device)
        position = {i: p for p, i in enumerate(sub.parameter_indices())}
        # Column sources of the parameters (the same in every basis): ("theta", position in P) or ("x", feature).
        self.columns = [
            ("theta", position[p.index]) if p.vector.name == "theta" else ("x", p.index)
            for p in candidate.circuit.parameters
        ]

    def _values(self, thetas: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Return the (K * B, n_params) table: row k * B + b binds thetas[k] and sample b."""
        k, b = thetas.shape[0], x.shape[0]
        table = np.empty((k * b, len(self.columns)))
        for j, (source, col) in enumerate(self.columns):
            table[:, j] = np.repeat(thetas[:, col], b) if source == "theta" else np.tile(x[:, col], k)
        return table

    def outputs(self, thetas: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the noisy outputs (K, B, d) of `thetas` (K, P) on `batch`."""
        t = thetas.detach().to(torch.float64).cpu().numpy()
        x = self.task.features(batch).double().numpy()
        k, b = t.shape[0], x.shape[0]
        values = self._values(t, x)
        self.seed += 1
        probs = {
            basis: noisy_probabilities(
                cand, self.device, values, self.shots, self.noiseless, self.seed, simulation=self.simulation
            )
            for basis, cand in self.candidates.items()
        }
        self.n_executions += k * b * len(self.candidates)
        outputs = self.task.outputs_from_probabilities(probs).reshape(k, b, -1)
        return torch.as_tensor(outputs, dtype=torch.float64)
