"""The one place that reads a device's qiskit-aer noise model: gate, idle and readout errors.

qiskit-aer's `NoiseModel` offers no public way to read its errors back (a `to_dict`
round trip would rebuild every error of a 127-qubit device), so this module reads its
private tables, and nothing else in qnas does: an Aer release that renames them breaks
one tested place (tests/test_noise_model.py).

A calibrated fake or snapshot backend's gate errors are built one instruction at a time,
when first asked for, with qiskit-aer's own functions on the backend's properties: the
very errors `_get_noise_model_from_backend_v2` makes (tested), without building all of
them first; for a 156-qubit Heron that full build takes 40-65 s per process (measured on
fake_fez), once in every Ray worker, while a candidate asks for a few dozen.

Idle qubits relax as qiskit-aer's own `RelaxationNoisePass` makes them relax on
`delay` instructions (the pass `NoiseModel.from_backend` installs): a thermal
relaxation channel over the idle time with the qubit's T1 and T2 (T2 capped at 2 T1),
ground-state equilibrium (temperature 0, qiskit-aer's default).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError, thermal_relaxation_error
from qiskit_aer.noise.device import models as aer_models
from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

from qnas.devices import Device


@dataclass(frozen=True)
class _Calibration:
    """A calibrated backend's gate parameters and relaxation times, read once; errors built on demand."""

    gates: dict[tuple[str, tuple[int, ...]], tuple[float, float]]  # (name, qubits) -> (length ns, error)
    relax: list[tuple[float, float, float]]  # per qubit: T1, T2 (ns), frequency (Hz)
    readout: dict[tuple[int, ...], ReadoutError]
    basis_gates: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _calibration(device: Device) -> _Calibration | None:
    """The lazily built calibration of a fake or snapshot backend; None where the noise model is the source."""
    if device.custom_noise is not None or not isinstance(device.backend, FakeBackendV2):
        return None
    properties = device.backend.properties()
    if properties is None:
        return None
    # As FakeBackendV2._get_noise_model_from_backend_v2 and basic_device_gate_errors read them.
    relax = [(t1, t2, freq * 1e9) for t1, t2, freq in aer_models.thermal_relaxation_values(properties)]
    gates = {
        (name, tuple(qubits)): (length, error)
        for name, qubits, length, error in aer_models.gate_param_values(properties)
    }
    readout = {tuple(q): e for q, e in aer_models.basic_device_readout_errors(properties)}
    basis = tuple(device.backend.configuration().basis_gates)
    return _Calibration(gates, relax, readout, basis)


@functools.lru_cache(maxsize=65536)
def _built_gate_error(device: Device, name: str, physical: tuple[int, ...]) -> QuantumError | None:
    """One instruction's error, as basic_device_gate_errors builds it (depolarizing + relaxation, 0 K)."""
    calibration = _calibration(device)
    params = calibration.gates.get((name, physical))
    if params is None:
        return None
    length, error = params
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="qiskit_aer.noise.device.models")
        relax = aer_models._device_thermal_relaxation_error(physical, length, calibration.relax, 0)
        depol = aer_models._device_depolarizing_error(physical, error, relax)
        return aer_models._combine_depol_and_relax_error(depol, relax) or None


def gate_error(device: Device, name: str, physical: tuple[int, ...]) -> QuantumError | None:
    """Return the device's error after gate `name` on `physical` qubits (None: noiseless there)."""
    if _calibration(device) is not None:
        return _built_gate_error(device, name, tuple(physical))
    model = device.noise_model
    local = model._local_quantum_errors.get(name, {})
    return local.get(physical, model._default_quantum_errors.get(name))


def device_readout_matrices(device: Device, qubits: Sequence[int]) -> list[np.ndarray]:
    """Return R[true, measured] of each physical qubit in `qubits`, without building the whole noise model."""
    calibration = _calibration(device)
    if calibration is None:
        return readout_matrices(device.noise_model, qubits)
    return [
        np.eye(2)
        if (q,) not in calibration.readout
        else np.asarray(calibration.readout[(q,)].probabilities, dtype=np.float64)
        for q in qubits
    ]


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
def restrict_noise_model(device: Device, qubits: tuple[int, ...], readout: bool = True) -> NoiseModel:
    """Return the device's gate errors and (with `readout`) readout errors on `qubits` only, qubits[i] as qubit i.

    Errors on other qubits are dropped, so a simulation costs the same on a 5- and a
    127-qubit device. The relaxation pass for `delay` instructions is not carried over:
    callers turn delays into explicit `idle_error`s, which works for both engines.
    """
    local = {p: i for i, p in enumerate(qubits)}
    calibration = _calibration(device)
    if calibration is not None:
        restricted = NoiseModel(basis_gates=list(calibration.basis_gates))
        for name, qargs in calibration.gates:
            error = _built_gate_error(device, name, qargs) if all(q in local for q in qargs) else None
            if error is not None:
                restricted.add_quantum_error(error, name, [local[q] for q in qargs], warnings=False)
        for qargs, error in calibration.readout.items() if readout else ():
            if all(q in local for q in qargs):
                restricted.add_readout_error(error, [local[q] for q in qargs], warnings=False)
        return restricted
    full = device.noise_model
    restricted = NoiseModel(basis_gates=full.basis_gates)
    for name, error in full._default_quantum_errors.items():
        restricted.add_all_qubit_quantum_error(error, name, warnings=False)
    for name, by_qubits in full._local_quantum_errors.items():
        for qargs, error in by_qubits.items():
            if all(q in local for q in qargs):
                restricted.add_quantum_error(error, name, [local[q] for q in qargs], warnings=False)
    if readout and full._default_readout_error is not None:
        restricted.add_all_qubit_readout_error(full._default_readout_error, warnings=False)
    for qargs, error in full._local_readout_errors.items() if readout else ():
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
