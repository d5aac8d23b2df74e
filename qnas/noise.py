"""Noise-aware scoring of a candidate on a calibrated device.

The evaluation of a candidate is a pipeline of small functions, each testable alone:
`transpile_candidate` (map and route on the full device, then keep only the active
physical qubits, with the cost figures) -> `restrict_noise_model` (the device's noise
on those qubits, re-indexed) -> `noisy_probabilities` (all samples at once, exact or
sampled, readout error included) -> `z_expectations` / `pauli_expectations` for the
task's metric. Simulating only the active qubits keeps the cost independent of the
device's size (QuantumNAS scored on the full device, one sample at a time).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate, ParameterExpression
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Operator, SuperOp
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError
from threadpoolctl import ThreadpoolController

from qnas.devices import Device

# The contractions are a few hundred small matrix products: a BLAS thread pool costs more
# than it saves, and on shared cores it made scoring 3x slower (measured on 2 cores).
_BLAS = ThreadpoolController()

# Instructions that neither act on a qubit's state nor cost anything.
_NO_OPS = frozenset({"barrier", "delay"})


@dataclass(frozen=True)
class TranspiledCandidate:
    """A candidate transpiled for a device and cut down to its active physical qubits.

    `circuit` acts on len(active_qubits) qubits (local qubit i is physical qubit
    active_qubits[i]), has no measurements and keeps the free Parameters of the input.
    Logical qubit i is measured on physical qubit final_layout[i] (after routing).
    """

    circuit: QuantumCircuit
    active_qubits: tuple[int, ...]
    initial_layout: tuple[int, ...]
    final_layout: tuple[int, ...]
    depth: int
    n_2q: int
    duration: float | None
    success_probability: float

    @property
    def n_logical(self) -> int:
        return len(self.final_layout)

    @property
    def measured_local_qubits(self) -> list[int]:
        """Local indices in `circuit` of the qubits holding logical qubits 0, 1, ..."""
        position = {p: i for i, p in enumerate(self.active_qubits)}
        return [position[p] for p in self.final_layout]


def validate_layout(layout: Sequence[int], n_logical: int, device: Device) -> tuple[int, ...]:
    """Return `layout` as a tuple of ints after checking it fits the circuit and the device."""
    layout = tuple(int(q) for q in layout)
    if len(layout) != n_logical:
        raise ValueError(f"layout {list(layout)} has {len(layout)} qubits; the circuit has {n_logical}")
    outside = [q for q in layout if not 0 <= q < device.n_qubits]
    if outside:
        raise ValueError(
            f"layout {list(layout)}: qubits {outside} are not on {device.name} "
            f"(physical qubits 0..{device.n_qubits - 1})"
        )
    repeated = sorted({q for q in layout if layout.count(q) > 1})
    if repeated:
        raise ValueError(f"layout {list(layout)} uses physical qubits {repeated} more than once")
    return layout


def transpile_on_device(
    circuit: QuantumCircuit,
    device: Device,
    layout: Sequence[int] | None,
    optimization_level: int = 2,
    seed: int = 0,
) -> QuantumCircuit:
    """Return `circuit` transpiled for the whole device, logical qubit i starting on layout[i].

    The one transpilation of qnas: scoring, export and deployment all use it, so the
    device runs the very circuit that was scored. An empty or None layout lets qiskit
    choose (its default layout is noise-aware).
    """
    return transpile(
        circuit,
        backend=device.backend,
        initial_layout=list(layout) if layout else None,
        optimization_level=optimization_level,
        seed_transpiler=seed,
    )


def transpile_candidate(
    circuit: QuantumCircuit,
    device: Device,
    layout: Sequence[int] | None,
    optimization_level: int = 2,
    seed: int = 0,
) -> TranspiledCandidate:
    """Return the candidate transpiled for `device`, restricted to its active qubits, with its cost.

    `layout[i]` is the physical qubit of logical qubit i; None lets qiskit choose (its
    default layout is noise-aware). Final measurements of `circuit` are dropped: the
    scoring measures every logical qubit itself.
    """
    n_logical = circuit.num_qubits
    if n_logical > device.n_qubits:
        raise ValueError(f"circuit has {n_logical} qubits; {device.name} has only {device.n_qubits}")
    if layout is not None:
        layout = validate_layout(layout, n_logical, device)
    if any(inst.operation.name == "measure" for inst in circuit.data):
        circuit = circuit.remove_final_measurements(inplace=False)
    transpiled = transpile_on_device(circuit, device, layout, optimization_level, seed)
    initial = tuple(transpiled.layout.initial_index_layout(filter_ancillas=True))
    final = tuple(transpiled.layout.final_index_layout(filter_ancillas=True))
    active = sorted(
        {
            transpiled.find_bit(q).index
            for inst in transpiled.data
            if inst.operation.name not in _NO_OPS
            for q in inst.qubits
        }
        | set(final)
    )
    local = {p: i for i, p in enumerate(active)}
    restricted = QuantumCircuit(len(active), global_phase=transpiled.global_phase)
    for inst in transpiled.data:
        if inst.operation.name in _NO_OPS:
            continue
        restricted.append(inst.operation, [local[transpiled.find_bit(q).index] for q in inst.qubits])
    duration, success = _cost(transpiled, device, final)
    return TranspiledCandidate(
        circuit=restricted,
        active_qubits=tuple(active),
        initial_layout=initial,
        final_layout=final,
        depth=restricted.depth(),
        n_2q=sum(1 for inst in restricted.data if len(inst.qubits) == 2),
        duration=duration,
        success_probability=success,
    )


def _cost(transpiled: QuantumCircuit, device: Device, measured: Sequence[int]) -> tuple[float | None, float]:
    """Return (duration in s or None, estimated success probability).

    The success probability is QuantumNAS's cheap proxy: the product of (1 - error) over
    the gates and the final measurements.
    """
    target = device.backend.target
    finish: dict[int, float] = {}
    durations_known = True
    success = 1.0
    steps = [
        (inst.operation.name, tuple(transpiled.find_bit(q).index for q in inst.qubits))
        for inst in transpiled.data
        if inst.operation.name not in _NO_OPS
    ]
    steps += [("measure", (q,)) for q in measured]
    for name, qargs in steps:
        props = target[name].get(qargs) if name in target.operation_names else None
        if props is not None and props.error is not None:
            success *= 1.0 - props.error
        if props is None or props.duration is None:
            durations_known = False
            continue
        start = max((finish.get(q, 0.0) for q in qargs), default=0.0)
        for q in qargs:
            finish[q] = start + props.duration
    duration = max(finish.values(), default=0.0) if durations_known else None
    return duration, success


@functools.lru_cache(maxsize=256)
def restrict_noise_model(device: Device, qubits: tuple[int, ...]) -> NoiseModel:
    """Return the device's noise model on `qubits` only, with physical qubit qubits[i] as qubit i.

    Errors on other qubits are dropped, so a simulation costs the same on a 5- and a
    127-qubit device. The thermal-relaxation pass for `delay` instructions is dropped as
    well: transpiled candidates are not scheduled and hold no delays.
    """
    full = device.noise_model
    local = {p: i for i, p in enumerate(qubits)}
    restricted = NoiseModel(basis_gates=full.basis_gates)
    # NoiseModel offers no public way to read its errors back; a to_dict round trip
    # would rebuild every error of a 127-qubit device.
    for name, error in full._default_quantum_errors.items():
        restricted.add_all_qubit_quantum_error(error, name, warnings=False)
    for name, by_qubits in full._local_quantum_errors.items():
        for qargs, error in by_qubits.items():
            if all(q in local for q in qargs):
                restricted.add_quantum_error(error, name, [local[q] for q in qargs], warnings=False)
    if full._default_readout_error is not None:
        restricted.add_all_qubit_readout_error(full._default_readout_error, warnings=False)
    for qargs, error in full._local_readout_errors.items():
        if all(q in local for q in qargs):
            restricted.add_readout_error(error, [local[q] for q in qargs], warnings=False)
    return restricted


def readout_matrices(noise_model: NoiseModel, qubits: Sequence[int]) -> list[np.ndarray]:
    """Return R[true, measured] for each qubit in `qubits` (identity where it has no readout error)."""
    out = []
    for q in qubits:
        error: ReadoutError | None = noise_model._local_readout_errors.get(
            (q,), noise_model._default_readout_error
        )
        out.append(np.eye(2) if error is None else np.asarray(error.probabilities, dtype=np.float64))
    return out


def apply_readout(probs: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Return the measured-outcome probabilities (N, 2**n) given true ones and per-qubit R[true, measured].

    Qubit i is bit i of the outcome index (qiskit's order), matrices[i] its confusion matrix.
    """
    n = len(matrices)
    tensor = probs.reshape((probs.shape[0],) + (2,) * n)
    for i, matrix in enumerate(matrices):
        axis = n - i  # bit i is the i-th axis from the end; axis 0 is the sample
        tensor = np.moveaxis(np.tensordot(tensor, matrix, axes=([axis], [0])), -1, axis)
    return tensor.reshape(probs.shape)


def noisy_probabilities(
    candidate: TranspiledCandidate,
    device: Device,
    parameter_values: np.ndarray | None,
    shots: int | None = None,
    noiseless: bool = False,
    seed: int = 0,
    engine: Literal["qnas", "aer"] = "qnas",
) -> np.ndarray:
    """Return (N, 2**n_logical) probabilities of measuring the logical qubits, readout error included.

    Logical qubit 0 is the least significant bit (qiskit's order). One row of
    `parameter_values` per sample, one column per `candidate.circuit.parameters` (sorted).
    Exact density-matrix probabilities by default, `shots` samples per row on request
    (always qiskit-aer). All rows go through one batched simulation: engine "qnas" evolves
    the N density matrices together in numpy through the channels of the device's
    qiskit-aer noise model; engine "aer" makes one qiskit-aer call with parameter_binds
    (the two agree to float error; "qnas" falls back to "aer" for gates it does not batch).
    `noiseless` takes the same path without noise.
    """
    if engine not in ("qnas", "aer"):
        raise ValueError(f"engine {engine!r}; allowed: 'qnas', 'aer'")
    values = _parameter_table(candidate.circuit, parameter_values)
    if shots is None and engine == "qnas":
        try:
            program = _compile(candidate, device, noiseless)
        except _NotBatchable:
            program = None
        if program is not None:
            with _BLAS.limit(limits=1, user_api="blas"):
                probs = _run_density_matrices(program, candidate, values)
            if not noiseless:
                probs = apply_readout(probs, readout_matrices(device.noise_model, candidate.final_layout))
            return probs
    return _aer_probabilities(candidate, device, values, shots, noiseless, seed)


def _parameter_table(circuit: QuantumCircuit, parameter_values: np.ndarray | None) -> np.ndarray:
    """Return the (N, n_params) value table after checking its shape (N = 1 without parameters)."""
    n_params = circuit.num_parameters
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


def _aer_probabilities(
    candidate: TranspiledCandidate,
    device: Device,
    values: np.ndarray,
    shots: int | None,
    noiseless: bool,
    seed: int,
) -> np.ndarray:
    """Return the probabilities from one qiskit-aer density-matrix call over all samples."""
    n_samples = values.shape[0]
    noise_model = None if noiseless else restrict_noise_model(device, candidate.active_qubits)
    measured = candidate.measured_local_qubits
    circuit = candidate.circuit.copy()
    if shots is None:
        circuit.save_probabilities(measured)
    else:
        circuit.add_register(*QuantumCircuit(0, len(measured)).cregs)
        circuit.measure(measured, range(len(measured)))
    simulator = AerSimulator(method="density_matrix", noise_model=noise_model, seed_simulator=seed)
    run_options: dict = {}
    if circuit.num_parameters:
        run_options["parameter_binds"] = [{p: values[:, j] for j, p in enumerate(circuit.parameters)}]
    if shots is not None:
        run_options["shots"] = int(shots)
    result = simulator.run(circuit, **run_options).result()
    n_experiments = n_samples if circuit.num_parameters else 1
    dim = 2 ** len(measured)
    if shots is None:
        probs = np.array([result.data(i)["probabilities"] for i in range(n_experiments)], dtype=np.float64)
        probs = probs.reshape(n_experiments, dim)
        if noise_model is not None:
            probs = apply_readout(probs, readout_matrices(noise_model, measured))
    else:
        probs = np.zeros((n_experiments, dim))
        for i in range(n_experiments):
            for key, count in result.data(i)["counts"].items():
                probs[i, int(key, 16)] = count / shots
    if n_experiments != n_samples:
        probs = np.repeat(probs, n_samples, axis=0)
    return probs


class _NotBatchable(Exception):
    """The circuit holds a gate the batched engine does not handle (qiskit-aer takes over)."""


@dataclass(frozen=True)
class _Step:
    """One instruction (or fused run of instructions) of the compiled program, on local qubits.

    kind "channel": `tensor` T[a, b, c, e] (rho'[a, b] = sum T[a, b, c, e] rho[c, e]) over
    `qubits` (qubits[0] least significant); kind "rz": a Z rotation of each sample by
    angle = values[:, columns] @ coeffs + offset.
    """

    kind: str
    qubits: tuple[int, ...]
    tensor: np.ndarray | None = None
    columns: np.ndarray | None = None
    coeffs: np.ndarray | None = None
    offset: float = 0.0


def _compile(candidate: TranspiledCandidate, device: Device, noiseless: bool) -> list[_Step]:
    """Return the circuit as a list of steps: fixed gates fused with their noise, batched Z rotations."""
    circuit = candidate.circuit
    column = {p: j for j, p in enumerate(circuit.parameters)}
    steps = []
    for inst in circuit.data:
        op = inst.operation
        local = tuple(circuit.find_bit(q).index for q in inst.qubits)
        physical = tuple(candidate.active_qubits[q] for q in local)
        symbolic = [p for p in op.params if isinstance(p, ParameterExpression) and p.parameters]
        device_key = None if noiseless else device
        if not symbolic:
            params = tuple(float(p) for p in op.params)
            steps.append(_Step("channel", local, _gate_channel(device_key, op.name, physical, params)))
            continue
        if op.name != "rz":
            raise _NotBatchable(op.name)
        columns, coeffs, offset = _linear_form(symbolic[0], column)
        steps.append(_Step("rz", local, None, columns, coeffs, offset))
        noise = _noise_channel(device_key, "rz", physical)
        if noise is not None:
            steps.append(_Step("channel", local, noise))
    return _fuse(steps)


def _fuse(steps: list[_Step], max_qubits: int = 2) -> list[_Step]:
    """Return `steps` with fixed channels merged into channels on at most `max_qubits` qubits.

    A channel moves back past the steps that touch none of its qubits and joins the last
    channel that does, when their qubits together are few enough. Contractions, not
    arithmetic, cost time at these sizes: this cuts them several-fold (Aer's gate fusion,
    for density matrices of a few qubits).
    """
    blocks: list[tuple[str, set[int], list[_Step]]] = []
    for step in steps:
        touching = [i for i, (_, qubits, _) in enumerate(blocks) if qubits & set(step.qubits)]
        last = touching[-1] if touching else None
        if (
            step.kind == "channel"
            and last is not None
            and blocks[last][0] == "channel"
            and len(blocks[last][1] | set(step.qubits)) <= max_qubits
        ):
            blocks[last][1].update(step.qubits)
            blocks[last][2].append(step)
        else:
            blocks.append((step.kind, set(step.qubits), [step]))
    return [
        members[0] if len(members) == 1 else _merge(members, sorted(qubits)) for _, qubits, members in blocks
    ]


def _merge(members: list[_Step], qubits: list[int]) -> _Step:
    """Return one channel step equal to applying `members` in order on `qubits`."""
    k = len(qubits)
    d = 2**k
    position = {q: i for i, q in enumerate(qubits)}
    # Push the d*d matrix units E_ce through the members: column (c, e) of the fused T.
    basis = np.eye(d * d, dtype=np.complex128).reshape((d * d,) + (2,) * (2 * k))
    for member in members:
        basis = _apply_channel(basis, member.tensor, tuple(position[q] for q in member.qubits), k)
    tensor = basis.reshape(d, d, d, d).transpose(2, 3, 0, 1)
    return _Step("channel", tuple(qubits), np.ascontiguousarray(tensor))


def _linear_form(angle: ParameterExpression, column: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Return (columns, coefficients, offset) with angle = values[:, columns] @ coefficients + offset."""
    params = list(angle.parameters)
    offset = complex(angle.bind({p: 0.0 for p in params})).real
    coeffs = []
    for p in params:
        grad = angle.gradient(p)
        if isinstance(grad, ParameterExpression) and grad.parameters:
            raise _NotBatchable(f"non-linear angle {angle}")
        coeffs.append(complex(grad).real)
    return np.array([column[p] for p in params]), np.array(coeffs), offset


def _unitary_tensor(unitary: np.ndarray) -> np.ndarray:
    """T[a, b, c, e] = U[a, c] conj(U[b, e]): the channel rho -> U rho U^dagger."""
    return np.einsum("ac,be->abce", unitary, unitary.conj())


def _superop_tensor(superop: np.ndarray) -> np.ndarray:
    """T of a qiskit SuperOp matrix (column-stacking: vec(rho)[i + d j] = rho[i, j])."""
    d = math.isqrt(superop.shape[0])
    return superop.reshape(d, d, d, d).transpose(1, 0, 3, 2)


def _compose(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    return np.einsum("abxy,xyce->abce", after, before)


@functools.lru_cache(maxsize=65536)
def _noise_channel(device: Device | None, name: str, physical: tuple[int, ...]) -> np.ndarray | None:
    """Return T of the device's error after `name` on `physical` qubits, or None when noiseless."""
    if device is None:
        return None
    model = device.noise_model
    error = model._local_quantum_errors.get(name, {}).get(physical, model._default_quantum_errors.get(name))
    if error is None:
        return None
    return _superop_tensor(SuperOp(error.to_quantumchannel()).data)


@functools.lru_cache(maxsize=65536)
def _gate_channel(
    device: Device | None, name: str, physical: tuple[int, ...], params: tuple[float, ...]
) -> np.ndarray:
    """Return T of gate `name` (bound `params`) followed by its noise on `physical` qubits."""
    unitary = Operator(_standard_gate(name, params)).data
    channel = _unitary_tensor(unitary)
    noise = _noise_channel(device, name, physical)
    return channel if noise is None else _compose(noise, channel)


def _standard_gate(name: str, params: tuple[float, ...]) -> Gate:
    """Return qiskit's standard gate `name` with `params` bound."""
    template = get_standard_gate_name_mapping().get(name)
    if not isinstance(template, Gate):
        raise _NotBatchable(name)
    return template.base_class(*params) if params else template


def _apply_channel(rho: np.ndarray, tensor: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """Return rho (N, 2,.., 2) with 2n qubit axes after the channel T on `qubits`."""
    k = len(qubits)
    # Row axis of qubit q is 1 + (n - 1 - q) (qubit 0 least significant), its column axis n further.
    rows = [1 + n - 1 - q for q in reversed(qubits)]
    cols = [r + n for r in rows]
    t = tensor.reshape((2,) * (4 * k))
    out = np.tensordot(t, rho, axes=(list(range(2 * k, 4 * k)), rows + cols))
    return np.moveaxis(out, list(range(2 * k)), rows + cols)


def _run_density_matrices(
    program: list[_Step], candidate: TranspiledCandidate, values: np.ndarray
) -> np.ndarray:
    """Return (N, 2**n_logical) noiseless-readout probabilities of the logical qubits.

    Evolves all N density matrices of the active qubits together, one numpy contraction
    per instruction: the samples differ only in their Z-rotation angles.
    """
    n = len(candidate.active_qubits)
    n_samples = values.shape[0]
    rho = np.zeros((n_samples,) + (2,) * (2 * n), dtype=np.complex128)
    rho[(slice(None),) + (0,) * (2 * n)] = 1.0
    for step in program:
        if step.kind == "rz":
            (q,) = step.qubits
            angle = values[:, step.columns] @ step.coeffs + step.offset
            phase = np.exp(-0.5j * angle[:, None] * np.array([1.0, -1.0]))
            factor = phase[:, :, None] * phase[:, None, :].conj()
            shape = [n_samples] + [1] * (2 * n)
            shape[1 + n - 1 - q] = 2
            shape[1 + 2 * n - 1 - q] = 2
            rho = rho * factor.reshape(shape)
        else:
            rho = _apply_channel(rho, step.tensor, step.qubits, n)
    diagonal = np.einsum("nii->ni", rho.reshape(n_samples, 2**n, 2**n)).real
    # Marginal over the logical qubits, in logical order (logical 0 least significant).
    measured = candidate.measured_local_qubits
    probs = diagonal.reshape((n_samples,) + (2,) * n)
    keep = [1 + n - 1 - q for q in reversed(measured)]
    drop = tuple(a for a in range(1, n + 1) if a not in keep)
    probs = probs.sum(axis=drop) if drop else probs
    remaining = sorted(keep)
    probs = np.moveaxis(probs, [remaining.index(a) + 1 for a in keep], list(range(1, len(keep) + 1)))
    return np.ascontiguousarray(probs).reshape(n_samples, 2 ** len(measured))


def z_expectations(probs: np.ndarray, n_logical: int) -> np.ndarray:
    """Return <Z_i> for each logical qubit i: (N, n_logical), from (N, 2**n) probabilities."""
    outcomes = np.arange(2**n_logical)
    signs = 1.0 - 2.0 * ((outcomes[:, None] >> np.arange(n_logical)[None, :]) & 1)
    return probs @ signs


def pauli_expectation(probs: np.ndarray, label: str) -> np.ndarray:
    """Return <P> (N,) for a Pauli label of I/Z only (qiskit order: rightmost = qubit 0).

    X and Y terms are measured by rotating the circuit first: see `basis_rotation`.
    """
    n = len(label)
    outcomes = np.arange(2**n)
    parity = np.zeros(2**n, dtype=np.int64)
    for i, letter in enumerate(reversed(label)):
        if letter not in "IXYZ":
            raise ValueError(f"Pauli label {label!r}: letter {letter!r} is not one of I, X, Y, Z")
        if letter != "I":
            parity ^= (outcomes >> i) & 1
    return probs @ (1.0 - 2.0 * parity)


def basis_rotation(circuit: QuantumCircuit, label: str) -> QuantumCircuit:
    """Return `circuit` followed by the rotations that make `label` diagonal (X: H, Y: Sdg H).

    After them, <label> is `pauli_expectation(probs, label)` with X and Y read as Z.
    """
    if len(label) != circuit.num_qubits:
        raise ValueError(
            f"Pauli label {label!r} has {len(label)} letters; the circuit has {circuit.num_qubits} qubits"
        )
    rotated = circuit.copy()
    for qubit, letter in enumerate(reversed(label)):
        if letter == "X":
            rotated.h(qubit)
        elif letter == "Y":
            rotated.sdg(qubit)
            rotated.h(qubit)
    return rotated
