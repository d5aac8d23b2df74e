"""The one place that reads a device's qiskit-aer noise model: gate, idle and readout errors.

qiskit-aer's `NoiseModel` offers no public way to read its errors back (a `to_dict`
round trip would rebuild every error of a 127-qubit device), so this module reads its
private tables, and nothing else in qnas does: an Aer release that renames them breaks
one tested place (tests/test_noise_model.py).

Idle qubits relax as qiskit-aer's own `RelaxationNoisePass` makes them relax on
`delay` instructions (the pass `NoiseModel.from_backend` installs): a thermal
relaxation channel over the idle time with the qubit's T1 and T2 (T2 capped at 2 T1),
ground-state equilibrium (temperature 0, qiskit-aer's default).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError, thermal_relaxation_error

from qnas.devices import Device


def gate_error(device: Device, name: str, physical: tuple[int, ...]) -> QuantumError | None:
    """Return the device's error after gate `name` on `physical` qubits (None: noiseless there)."""
    model = device.noise_model
    local = model._local_quantum_errors.get(name, {})
    return local.get(physical, model._default_quantum_errors.get(name))


@functools.lru_cache(maxsize=65536)
def idle_error(device: Device, qubit: int, seconds: float) -> QuantumError | None:
    """Return the thermal relaxation of physical `qubit` idle for `seconds` (None without T1/T2)."""
    props = device.backend.target.qubit_properties
    if props is None or seconds <= 0:
        return None
    t1, t2 = props[qubit].t1, props[qubit].t2
    if t1 is None or t2 is None:
        return None
    # T2 <= 2 T1 holds physically; calibrations sometimes break it (qiskit-aer truncates too).
    return thermal_relaxation_error(t1, min(t2, 2 * t1), seconds)


def seconds(duration: float, unit: str, dt: float | None) -> float:
    """Return a delay's duration in seconds, from qiskit's (duration, unit) and the device's dt."""
    if unit == "dt":
        if dt is None:
            raise ValueError("a delay in units of dt on a device without dt")
        return float(duration) * dt
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
    if unit not in scale:
        raise ValueError(f"delay unit {unit!r}; known: dt, {', '.join(scale)}")
    return float(duration) * scale[unit]


@functools.lru_cache(maxsize=256)
def restrict_noise_model(device: Device, qubits: tuple[int, ...]) -> NoiseModel:
    """Return the device's gate and readout errors on `qubits` only, physical qubit qubits[i] as qubit i.

    Errors on other qubits are dropped, so a simulation costs the same on a 5- and a
    127-qubit device. The relaxation pass for `delay` instructions is not carried over:
    callers turn delays into explicit `idle_error`s, which works for both engines.
    """
    full = device.noise_model
    local = {p: i for i, p in enumerate(qubits)}
    restricted = NoiseModel(basis_gates=full.basis_gates)
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
