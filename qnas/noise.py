"""Exact noisy outcome probabilities of a transpiled candidate on a calibrated device.

`noisy_probabilities` runs all samples of a candidate at once: the circuit (cut to its
active qubits by `qnas.transpiled`) is compiled into a program of channels, each gate
fused with the device's error after it (`qnas.noise_model`) and each scheduled delay
turned into the idle qubit's thermal relaxation, and evolved by the batched
density-matrix engine (`qnas.sim.density`); readout error is applied to the
probabilities. qiskit-aer (`qnas.aer_sim`) takes over for shots and for gates the
engine does not batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from qiskit.circuit import Gate, ParameterExpression
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Operator, SuperOp
from threadpoolctl import ThreadpoolController

from qnas import aer_sim, noise_model
from qnas.devices import Device
from qnas.measure import apply_readout
from qnas.sim.density import (
    Step,
    compose,
    density_matrix_bytes,
    fuse,
    run_density_matrices,
    superop_tensor,
    unitary_tensor,
)
from qnas.transpiled import TranspiledCandidate

# The contractions are a few hundred small matrix products: a BLAS thread pool costs more
# than it saves, and on shared cores it made scoring 3x slower (measured on 2 cores).
_BLAS = ThreadpoolController()
# Exact simulation works through the samples in chunks that hold at most this many bytes
# of density matrices, so a wide candidate costs time, not memory (search.memory_budget_gb).
MEMORY_BUDGET = 2 << 30


class NotBatchable(Exception):
    """The circuit holds a gate the batched engine does not handle (qiskit-aer takes over)."""


@dataclass(frozen=True)
class Simulation:
    """How noisy probabilities are computed: exact density matrices up to `exact_max_qubits`, trajectories above.

    `method` "auto" picks by the candidate's active qubits; "exact" and "trajectories"
    force one. `trajectories` per sample in `groups` groups (their spread gives the
    standard error); `memory_budget` bytes bound either engine's state per chunk; `readout`
    applies the device's readout error to the probabilities.
    """

    method: str = "auto"
    exact_max_qubits: int = 8
    trajectories: int = 32
    groups: int = 8
    memory_budget: int = MEMORY_BUDGET
    device: str = "cpu"
    readout: bool = True

    def uses_trajectories(self, n_active: int) -> bool:
        if self.method not in ("auto", "exact", "trajectories"):
            raise ValueError(f"noise method {self.method!r}; allowed: auto, exact, trajectories")
        return self.method == "trajectories" or (self.method == "auto" and n_active > self.exact_max_qubits)


def noisy_probabilities(
    candidate: TranspiledCandidate,
    device: Device,
    parameter_values: np.ndarray | None,
    shots: int | None = None,
    noiseless: bool = False,
    seed: int = 0,
    engine: Literal["qnas", "aer"] = "qnas",
    simulation: Simulation | None = None,
) -> np.ndarray:
    """Return (N, 2**n_logical) probabilities of measuring the logical qubits, readout error included.

    Logical qubit 0 is the least significant bit (qiskit's order). One row of
    `parameter_values` per sample, one column per `candidate.circuit.parameters` (sorted).
    Exact density-matrix probabilities by default, Monte-Carlo trajectories above
    `simulation.exact_max_qubits` active qubits (their mean), `shots` samples per row on
    request (always qiskit-aer). Engine "qnas" evolves the N samples together; engine
    "aer" makes one qiskit-aer call with parameter_binds (the two agree to float error;
    "qnas" falls back to "aer" for gates it does not batch). `noiseless` takes the same
    path without noise (idle time included).
    """
    groups = noisy_probability_groups(
        candidate, device, parameter_values, shots, noiseless, seed, engine, simulation
    )
    return groups.mean(axis=0)


def noisy_probability_groups(
    candidate: TranspiledCandidate,
    device: Device,
    parameter_values: np.ndarray | None,
    shots: int | None = None,
    noiseless: bool = False,
    seed: int = 0,
    engine: Literal["qnas", "aer"] = "qnas",
    simulation: Simulation | None = None,
) -> np.ndarray:
    """Return (G, N, 2**n_logical): one estimate of `noisy_probabilities` per group of trajectories.

    G = 1 for the exact engines (and for shots); G = simulation.groups for trajectories,
    whose mean is the estimate and whose spread its standard error.
    """
    if engine not in ("qnas", "aer"):
        raise ValueError(f"engine {engine!r}; allowed: 'qnas', 'aer'")
    simulation = simulation or Simulation()
    values = parameter_table(candidate, parameter_values)
    n = len(candidate.active_qubits)
    trajectories = simulation.uses_trajectories(n) and not noiseless and shots is None
    if shots is None and engine == "qnas":
        try:
            program = compile_program(candidate, device, noiseless)
        except NotBatchable:
            program = None
        if program is not None:
            measured = candidate.measured_local_qubits
            if trajectories:
                probs = _trajectory_groups(program, n, values, measured, simulation, seed)
            else:
                probs = _exact(program, n, values, measured, simulation.memory_budget)[None]
            if not noiseless and simulation.readout:
                matrices = noise_model.device_readout_matrices(device, candidate.final_layout)
                probs = np.stack([apply_readout(p, matrices) for p in probs])
            return probs
    if trajectories or density_matrix_bytes(n, 1) > simulation.memory_budget:
        raise ValueError(
            f"a candidate on {n} active qubits with gates the qnas engine does not batch: qiskit-aer's "
            "density matrices would exceed the memory budget; allowed here: circuits in the device's basis gates"
        )
    return aer_sim.probabilities(candidate, device, values, shots, noiseless, seed, simulation.readout)[None]


def _exact(program: list[Step], n: int, values: np.ndarray, measured: list[int], budget: int) -> np.ndarray:
    per_sample = density_matrix_bytes(n, 1)
    if per_sample > budget:
        raise ValueError(
            f"exact simulation of {n} active qubits needs {per_sample / 2**30:.1f} GiB per sample, over the "
            f"memory budget of {budget / 2**30:.1f} GiB (search.memory_budget_gb); score it with trajectories "
            "(search.noise_method: auto or trajectories)"
        )
    chunk = max(1, budget // per_sample)
    with _BLAS.limit(limits=1, user_api="blas"):
        return np.concatenate(
            [
                run_density_matrices(program, n, values[start : start + chunk], measured)
                for start in range(0, len(values), chunk)
            ]
        )


def _trajectory_groups(
    program: list[Step], n: int, values: np.ndarray, measured: list[int], simulation: Simulation, seed: int
) -> np.ndarray:
    from qnas.sim import trajectories

    per_state = 4 * 8 * 2**n  # complex64 state vector and the step's temporaries
    if per_state > simulation.memory_budget:
        raise ValueError(
            f"a state vector of {n} active qubits needs {per_state / 2**30:.1f} GiB, over the memory budget of "
            f"{simulation.memory_budget / 2**30:.1f} GiB (search.memory_budget_gb)"
        )
    return trajectories.run_trajectories(
        program,
        n,
        values,
        measured,
        simulation.trajectories,
        seed,
        simulation.groups,
        simulation.device,
        chunk_bytes=min(trajectories.CHUNK_BYTES, simulation.memory_budget),
    )


def parameter_table(candidate: TranspiledCandidate, parameter_values: np.ndarray | None) -> np.ndarray:
    """Return the (N, n_params) value table after checking its shape (N = 1 without parameters)."""
    n_params = candidate.circuit.num_parameters
    if parameter_values is None:
        if n_params:
            raise ValueError(f"the circuit has {n_params} free parameters; pass parameter_values")
        return np.zeros((1, 0))
    values = np.asarray(parameter_values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] != n_params:
        raise ValueError(
            f"parameter_values has shape {values.shape}; need (N, {n_params}), one column per "
            "parameter in the order of circuit.parameters"
        )
    return values


def compile_program(candidate: TranspiledCandidate, device: Device, noiseless: bool) -> list[Step]:
    """Return the circuit as engine steps: fixed gates fused with their noise, idle relaxation, batched Z rotations."""
    circuit = candidate.circuit
    column = {p: j for j, p in enumerate(circuit.parameters)}
    dt = device.backend.target.dt
    noisy = None if noiseless else device
    steps = []
    for inst in circuit.data:
        op = inst.operation
        local = tuple(circuit.find_bit(q).index for q in inst.qubits)
        physical = tuple(candidate.active_qubits[q] for q in local)
        if op.name == "delay":
            if noisy is not None:
                (q,) = physical
                tensor = _idle_channel(noisy, q, noise_model.seconds(op.duration, op.unit, dt))
                if tensor is not None:
                    steps.append(Step("channel", local, tensor))
            continue
        symbolic = [p for p in op.params if isinstance(p, ParameterExpression) and p.parameters]
        if not symbolic:
            params = tuple(float(p) for p in op.params)
            steps.append(Step("channel", local, _gate_channel(noisy, op.name, physical, params)))
            continue
        if op.name != "rz":
            raise NotBatchable(op.name)
        columns, coeffs, offset = _linear_form(symbolic[0], column)
        steps.append(Step("rz", local, None, columns, coeffs, offset))
        error = _noise_channel(noisy, "rz", physical)
        if error is not None:
            steps.append(Step("channel", local, error))
    return fuse(steps)


def _linear_form(angle: ParameterExpression, column: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Return (columns, coefficients, offset) with angle = values[:, columns] @ coefficients + offset."""
    params = list(angle.parameters)
    offset = complex(angle.bind({p: 0.0 for p in params})).real
    coeffs = []
    for p in params:
        grad = angle.gradient(p)
        if isinstance(grad, ParameterExpression) and grad.parameters:
            raise NotBatchable(f"non-linear angle {angle}")
        coeffs.append(complex(grad).real)
    return np.array([column[p] for p in params]), np.array(coeffs), offset


@functools.lru_cache(maxsize=65536)
def _noise_channel(device: Device | None, name: str, physical: tuple[int, ...]) -> np.ndarray | None:
    """Return T of the device's error after `name` on `physical` qubits, or None when noiseless."""
    if device is None:
        return None
    error = noise_model.gate_error(device, name, physical)
    return None if error is None else superop_tensor(SuperOp(error.to_quantumchannel()).data)


@functools.lru_cache(maxsize=65536)
def _idle_channel(device: Device, qubit: int, seconds: float) -> np.ndarray | None:
    """Return T of physical `qubit`'s relaxation over `seconds` of idle time, or None."""
    error = noise_model.idle_error(device, qubit, seconds)
    return None if error is None else superop_tensor(SuperOp(error.to_quantumchannel()).data)


@functools.lru_cache(maxsize=65536)
def _gate_channel(
    device: Device | None, name: str, physical: tuple[int, ...], params: tuple[float, ...]
) -> np.ndarray:
    """Return T of gate `name` (bound `params`) followed by its noise on `physical` qubits."""
    channel = unitary_tensor(Operator(_standard_gate(name, params)).data)
    error = _noise_channel(device, name, physical)
    return channel if error is None else compose(error, channel)


@functools.cache
def _standard_gates() -> dict:
    # qiskit builds every standard gate on each call (2000 Gate objects, 0.5 ms a gate of ours).
    return get_standard_gate_name_mapping()


def _standard_gate(name: str, params: tuple[float, ...]) -> Gate:
    """Return qiskit's standard gate `name` with `params` bound."""
    template = _standard_gates().get(name)
    if not isinstance(template, Gate):
        raise NotBatchable(name)
    return template.base_class(*params) if params else template
