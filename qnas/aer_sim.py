"""qiskit-aer's density-matrix simulation of a transpiled candidate: shots, and gates qnas's engine does not batch.

The device's noise restricted to the candidate's active qubits (`qnas.noise_model`);
scheduled idle time enters as explicit relaxation errors after each delay, the same
channels qnas's own engine applies, so the two engines agree.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator

from qnas import noise_model
from qnas.devices import Device
from qnas.measure import apply_readout
from qnas.transpiled import TranspiledCandidate


def probabilities(
    candidate: TranspiledCandidate,
    device: Device,
    values: np.ndarray,
    shots: int | None,
    noiseless: bool,
    seed: int,
    readout: bool = True,
) -> np.ndarray:
    """Return (N, 2**n_logical) probabilities (exact, or from `shots` seeded shots) from one qiskit-aer call.

    `readout` False leaves the device's readout error out.
    """
    n_samples = values.shape[0]
    model = None if noiseless else noise_model.restrict_noise_model(device, candidate.active_qubits, readout)
    measured = candidate.measured_local_qubits
    circuit = _with_idle_errors(candidate, device) if model is not None else candidate.circuit.copy()
    if shots is None:
        circuit.save_probabilities(measured)
    else:
        circuit.add_register(*QuantumCircuit(0, len(measured)).cregs)
        circuit.measure(measured, range(len(measured)))
    simulator = AerSimulator(method="density_matrix", noise_model=model, seed_simulator=seed)
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
        if model is not None and readout:
            probs = apply_readout(probs, noise_model.readout_matrices(model, measured))
    else:
        probs = np.zeros((n_experiments, dim))
        for i in range(n_experiments):
            for key, count in result.data(i)["counts"].items():
                probs[i, int(key, 16)] = count / shots
    if n_experiments != n_samples:
        probs = np.repeat(probs, n_samples, axis=0)
    return probs


def _with_idle_errors(candidate: TranspiledCandidate, device: Device) -> QuantumCircuit:
    """Return the candidate's circuit with each delay replaced by its qubit's relaxation error."""
    circuit = candidate.circuit
    out = circuit.copy_empty_like()
    dt = device.backend.target.dt
    for inst in circuit.data:
        if inst.operation.name != "delay":
            out.append(inst.operation, inst.qubits, inst.clbits)
            continue
        (q,) = (circuit.find_bit(b).index for b in inst.qubits)
        seconds = noise_model.seconds(inst.operation.duration, inst.operation.unit, dt)
        error = noise_model.idle_error(device, candidate.active_qubits[q], seconds)
        if error is not None:
            out.append(error.to_instruction(), inst.qubits)
    return out
