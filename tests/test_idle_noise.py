"""Idle qubits decohere: scheduled circuits, thermal relaxation over idle time, in both engines and on deploy."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator

from qnas.config import load_config
from qnas.devices import get_device
from qnas.measure import apply_readout
from qnas.noise import noisy_probabilities
from qnas.noise_model import readout_matrices
from qnas.transpiled import transpile_candidate


def unbalanced_circuit() -> QuantumCircuit:
    """Qubit 2 is put in superposition at once and then waits while qubits 0 and 1 work."""
    qc = QuantumCircuit(3)
    qc.h(2)
    qc.cx(2, 1)
    for k in range(12):
        qc.cx(0, 1)
        qc.rz(0.3 + 0.1 * k, 1)
        qc.sx(0)
    return qc


def aer_reference(candidate, device) -> np.ndarray:
    """qiskit-aer on the whole scheduled device circuit with the device's full noise model.

    That model relaxes idle qubits on `delay` instructions itself (the RelaxationNoisePass
    `NoiseModel.from_backend` installs), so it is an independent check of qnas's channels.
    """
    full = candidate.measured_device_circuit(device)
    full.remove_final_measurements()
    full.save_probabilities(list(candidate.final_layout))
    result = AerSimulator(method="density_matrix", noise_model=device.noise_model).run(full).result()
    probs = np.asarray(result.data(0)["probabilities"])[None, :]
    return apply_readout(probs, readout_matrices(device.noise_model, candidate.final_layout))


@pytest.mark.parametrize(
    "name, engine",
    # fake_rochester times its gates but not its measurements: it is scheduled all the same.
    [("fake_quito", "qnas"), ("fake_quito", "aer"), ("fake_rochester", "qnas")],
)
def test_idle_noise_equals_aer_on_the_scheduled_device_circuit(name, engine):
    device = get_device(name)
    layout = [0, 1, 3] if name == "fake_quito" else [0, 1, 2]
    candidate = transpile_candidate(unbalanced_circuit(), device, layout, idle_noise=True)
    assert candidate.scheduled and "delay" in candidate.circuit.count_ops()
    ours = noisy_probabilities(candidate, device, None, engine=engine)
    reference = aer_reference(candidate, device)
    assert np.max(np.abs(ours - reference)) < 1e-10
    unscheduled = transpile_candidate(unbalanced_circuit(), device, layout, idle_noise=False)
    assert "delay" not in unscheduled.circuit.count_ops() and not unscheduled.scheduled
    without = noisy_probabilities(unscheduled, device, None)
    # Waiting in superposition for ~12 CX durations costs qubit 2 a visible share of its coherence.
    assert np.max(np.abs(without - reference)) > 1e-3


def test_idle_noise_is_on_by_default_and_can_be_turned_off():
    assert load_config(None).search.idle_noise is True
    assert load_config(None, ["search.idle_noise=false"]).search.idle_noise is False


def test_the_deployed_circuit_is_scheduled_only_on_its_active_qubits():
    device = get_device("fake_brisbane")
    candidate = transpile_candidate(unbalanced_circuit(), device, [0, 1, 2], idle_noise=True)
    deployed = candidate.measured_device_circuit(device)
    delayed = {
        deployed.find_bit(q).index for i in deployed.data if i.operation.name == "delay" for q in i.qubits
    }
    # No delay on the 124 unused qubits: a simulator would otherwise have to hold them all.
    assert delayed and delayed <= set(candidate.active_qubits)
    assert deployed.count_ops()["measure"] == 3


def test_the_deployed_circuit_holds_its_basis_change_once():
    """A measured basis goes on once: the deployed circuit is the scored one plus measurements."""
    device = get_device("fake_quito")
    measured = transpile_candidate(unbalanced_circuit(), device, [0, 1, 3]).in_basis(device, "XZY")
    deployed = measured.measured_device_circuit(device)
    gates = [i.operation.name for i in deployed.data if i.operation.name not in ("delay", "measure")]
    assert gates == [i.operation.name for i in measured.device_circuit.data]


def test_dynamical_decoupling_pads_idle_windows_and_is_scored_as_aer_runs_it():
    """X-X pulses fill the waiting qubit's idle time: the same unitary, more gates, and qnas's
    exact score of the padded circuit equals qiskit-aer's on the whole device."""
    device = get_device("fake_quito")
    plain = transpile_candidate(unbalanced_circuit(), device, [0, 1, 2])
    padded = transpile_candidate(unbalanced_circuit(), device, [0, 1, 2], decoupling=True)
    assert padded.decoupled and padded.scheduled
    extra = padded.circuit.count_ops().get("x", 0) - plain.circuit.count_ops().get("x", 0)
    assert extra >= 2 and extra % 2 == 0
    # The waiting qubit (logical 2, on physical 2) gets pulses; the padding keeps the unitary.
    waiting = padded.active_qubits.index(2)
    assert any(
        inst.operation.name == "x" and padded.circuit.find_bit(inst.qubits[0]).index == waiting
        for inst in padded.circuit.data
    )
    np.testing.assert_allclose(
        noisy_probabilities(padded, device, None, noiseless=True),
        noisy_probabilities(plain, device, None, noiseless=True),
        atol=1e-12,
    )
    ours = noisy_probabilities(padded, device, None)
    np.testing.assert_allclose(ours, aer_reference(padded, device), atol=1e-10)
    assert np.abs(ours - noisy_probabilities(plain, device, None)).max() > 1e-4
    # Each measured basis of a VQE is padded too, on the placed ansatz.
    assert padded.in_basis(device, "XZY").decoupled


def test_dynamical_decoupling_is_refused_where_it_cannot_be_scheduled():
    with pytest.raises(ValueError, match="sample time dt"):
        transpile_candidate(unbalanced_circuit(), get_device("fake_rochester"), None, decoupling=True)
    with pytest.raises(ValueError, match=r"needs search\.idle_noise true"):
        load_config("tests/tiny_search.yaml", ["search.dynamical_decoupling=true", "search.idle_noise=false"])
