"""Noisy scoring: agreement with qiskit-aer, active-qubit restriction, cost figures, bad input."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer import AerSimulator

from qnas.devices import get_device
from qnas.measure import apply_readout, parity_signs, z_expectations
from qnas.noise import noisy_probabilities
from qnas.noise_model import readout_matrices
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks.encoders import get_encoder
from qnas.transpiled import transpile_candidate


def digits4_circuit(n_blocks: int = 1, seed: int = 0) -> QuantumCircuit:
    """4x4_ryzxy encoder (16 input parameters) and u3cu3 blocks with bound random weights."""
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=n_blocks, seed=seed)
    return sc.subcircuit(sc.largest()).to_qiskit(bound=True, encoder=get_encoder("4x4_ryzxy", 4), n_inputs=16)


def full_device_circuit(candidate, device) -> QuantumCircuit:
    """The candidate back on all physical qubits of the device."""
    full = QuantumCircuit(device.n_qubits)
    for inst in candidate.circuit.data:
        qubits = [candidate.active_qubits[candidate.circuit.find_bit(q).index] for q in inst.qubits]
        full.append(inst.operation, qubits)
    return full


def inputs(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, np.pi, (n, 16))


@pytest.mark.parametrize("name", ["fake_quito", "fake_brisbane"])
def test_exact_scores_agree_with_aer_shots(name):
    device = get_device(name)
    candidate = transpile_candidate(digits4_circuit(), device, None)
    values = inputs(2)
    exact = z_expectations(noisy_probabilities(candidate, device, values), 4)
    # Independent estimate: the whole device, its full noise model, measurements sampled by Aer.
    shots = 20_000
    full = full_device_circuit(candidate, device)
    full.add_register(*QuantumCircuit(0, 4).cregs)
    full.measure(list(candidate.final_layout), range(4))
    simulator = AerSimulator(noise_model=device.noise_model, seed_simulator=7)
    bound = [full.assign_parameters(row) for row in values]
    counts = simulator.run(bound, shots=shots).result().get_counts()
    for i, sample_counts in enumerate(counts):
        probs = np.zeros((1, 16))
        for key, count in sample_counts.items():
            probs[0, int(key, 2)] = count / shots
        estimate = z_expectations(probs, 4)[0]
        standard_error = np.sqrt((1 - estimate**2) / shots)
        # 8 comparisons: 4 standard errors keep a false alarm below 1e-3.
        assert np.all(np.abs(exact[i] - estimate) <= 4 * standard_error + 1e-12), (exact[i], estimate)


def test_shots_path_matches_exact_within_sampling_error():
    device = get_device("fake_quito")
    candidate = transpile_candidate(digits4_circuit(), device, [0, 1, 2, 3])
    values = inputs(3)
    exact = noisy_probabilities(candidate, device, values)
    sampled = noisy_probabilities(candidate, device, values, shots=20_000, seed=3)
    assert sampled.shape == exact.shape
    assert np.allclose(sampled.sum(axis=1), 1)
    assert np.all(np.abs(sampled - exact) <= 4 * np.sqrt(exact * (1 - exact) / 20_000) + 1e-4)


def test_active_qubits_equal_full_device_on_brisbane():
    device = get_device("fake_brisbane")
    candidate = transpile_candidate(digits4_circuit(), device, [0, 1, 2, 14])
    assert len(candidate.active_qubits) == 4
    values = inputs(3)
    full = full_device_circuit(candidate, device)
    full.save_probabilities(list(candidate.final_layout))
    simulator = AerSimulator(method="density_matrix", noise_model=device.noise_model)
    binds = [{p: values[:, j] for j, p in enumerate(full.parameters)}]
    result = simulator.run(full, parameter_binds=binds).result()
    reference = np.array([result.data(i)["probabilities"] for i in range(3)])
    reference = apply_readout(reference, readout_matrices(device.noise_model, candidate.final_layout))
    restricted = noisy_probabilities(candidate, device, values, engine="aer")
    assert np.max(np.abs(restricted - reference)) < 1e-9
    batched = noisy_probabilities(candidate, device, values)
    assert np.max(np.abs(batched - reference)) < 1e-7


def test_batched_engine_equals_aer_on_quito():
    device = get_device("fake_quito")
    candidate = transpile_candidate(digits4_circuit(n_blocks=2), device, None)
    values = inputs(20)
    ours = noisy_probabilities(candidate, device, values)
    aer = noisy_probabilities(candidate, device, values, engine="aer")
    assert np.max(np.abs(ours - aer)) < 1e-9
    assert np.allclose(ours.sum(axis=1), 1)


def test_noiseless_path_equals_statevector_in_logical_order():
    device = get_device("fake_quito")
    circuit = digits4_circuit()
    candidate = transpile_candidate(circuit, device, [4, 3, 1, 0])
    values = inputs(4)
    probs = noisy_probabilities(candidate, device, values, noiseless=True)
    for row, p in zip(values, probs, strict=True):
        expected = Statevector(circuit.assign_parameters(row)).probabilities()
        assert np.max(np.abs(p - expected)) < 1e-9
    noisy = noisy_probabilities(candidate, device, values)
    assert np.max(np.abs(noisy - probs)) > 1e-3


def test_cost_figures():
    device = get_device("fake_quito")
    circuit = digits4_circuit(n_blocks=2)
    candidate = transpile_candidate(circuit, device, [0, 1, 2, 3])
    assert candidate.initial_layout == (0, 1, 2, 3)
    # Routing moves logical qubits, and final_layout says where to: measured there, the
    # transpiled circuit gives the input circuit's distribution (by qiskit's statevector).
    assert candidate.final_layout != candidate.initial_layout
    row = inputs(1)[0]
    expected = Statevector(circuit.assign_parameters(row)).probabilities()
    state = Statevector(candidate.circuit.assign_parameters(row))
    assert np.max(np.abs(state.probabilities(candidate.measured_local_qubits) - expected)) < 1e-9
    # The T-shaped quito cannot hold a 4-qubit ring: routing adds SWAPs to the 8 CU3s' 16 CXs.
    assert candidate.n_2q > 16
    assert candidate.depth > 0
    assert candidate.duration is not None and 1e-7 < candidate.duration < 1e-3
    assert 0 < candidate.success_probability < 1
    assert [p.name for p in candidate.circuit.parameters] == [p.name for p in digits4_circuit().parameters]


def test_bad_layouts_and_sizes_name_the_values():
    device = get_device("fake_quito")
    circuit = digits4_circuit()
    with pytest.raises(ValueError, match=r"\[1\] more than once"):
        transpile_candidate(circuit, device, [0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"\[7\] are not on fake_quito"):
        transpile_candidate(circuit, device, [0, 1, 2, 7])
    with pytest.raises(ValueError, match="has 3 qubits; the circuit has 4"):
        transpile_candidate(circuit, device, [0, 1, 2])
    with pytest.raises(ValueError, match="6 qubits; fake_quito has only 5"):
        transpile_candidate(QuantumCircuit(6), device, None)
    candidate = transpile_candidate(circuit, device, None)
    with pytest.raises(ValueError, match=r"need \(N, 16\)"):
        noisy_probabilities(candidate, device, np.zeros((2, 15)))


def test_z_expectations_and_parities_in_qubit_order():
    # Unequal rotations and an entangler: every qubit has its own <Z>, so a reversed or
    # shifted qubit order gives other numbers.
    circuit = QuantumCircuit(3)
    for qubit, angle in enumerate([0.4, 1.1, 2.3]):
        circuit.ry(angle, qubit)
    circuit.cx(0, 2)
    circuit.rx(0.7, 1)
    state = Statevector(circuit)
    probs = state.probabilities()[None, :]

    def qiskit_z(support):  # qiskit's labels put qubit 0 last
        label = "".join("Z" if q in support else "I" for q in reversed(range(3)))
        return state.expectation_value(SparsePauliOp(label)).real

    singles = [qiskit_z({q}) for q in range(3)]
    assert min(abs(a - b) for i, a in enumerate(singles) for b in singles[i + 1 :]) > 0.1
    assert np.allclose(z_expectations(probs, 3), [singles], atol=1e-12)
    for support in ([0], [2], [0, 1], [1, 2], [0, 1, 2]):
        assert (probs @ parity_signs(support, 3))[0] == pytest.approx(qiskit_z(set(support)), abs=1e-12)


@pytest.mark.parametrize("label", ["XZYI", "YXIZ", "ZZXY"])
def test_measurement_bases_read_asymmetric_paulis_in_qnas_order(label):
    """A basis appended after routing measures label[i] on logical qubit i (qnas's order, qubit 0 first)."""
    device = get_device("fake_quito")
    circuit = digits4_circuit(n_blocks=1).assign_parameters(inputs(1)[0])
    candidate = transpile_candidate(circuit, device, [4, 3, 1, 0])
    basis = label.replace("I", "Z")
    measured = candidate.in_basis(device, basis)
    assert measured.final_layout == candidate.final_layout
    probs = noisy_probabilities(measured, device, None, noiseless=True)
    support = [q for q, p in enumerate(label) if p != "I"]
    ours = float(probs[0] @ parity_signs(support, 4))
    # qiskit's labels put qubit 0 last.
    expected = Statevector(circuit).expectation_value(SparsePauliOp(label[::-1])).real
    assert ours == pytest.approx(expected, abs=1e-9)
    assert abs(expected) > 1e-3  # a value the wrong qubit order would not give
    reversed_order = Statevector(circuit).expectation_value(SparsePauliOp(label)).real
    assert abs(reversed_order - expected) > 1e-3


@pytest.mark.parametrize("engine", ["qnas", "aer"])
def test_readout_noise_off_leaves_only_the_readout_error_out(engine):
    """`search.readout_noise: false` scores gate and idle noise alone: applying the device's
    readout matrices to it gives the default scores back, and it differs from them."""
    from qnas.config import load_config
    from qnas.evaluate import simulation_of
    from qnas.noise_model import device_readout_matrices

    device = get_device("fake_quito")
    candidate = transpile_candidate(digits4_circuit(), device, None)
    values = inputs(3)
    search = load_config("tests/tiny_search.yaml", ["search.readout_noise=false"]).search
    simulation = simulation_of(search)
    assert simulation.readout is False
    without = noisy_probabilities(candidate, device, values, engine=engine, simulation=simulation)
    default = noisy_probabilities(candidate, device, values, engine=engine)
    assert np.abs(without - default).max() > 0.02
    matrices = device_readout_matrices(device, candidate.final_layout)
    np.testing.assert_allclose(apply_readout(without, matrices), default, atol=1e-12)
    # With shots (always qiskit-aer), the readout error is left out of the model itself.
    shots = noisy_probabilities(
        candidate, device, values[:1], shots=20_000, engine=engine, simulation=simulation
    )
    assert np.abs(shots - without[:1]).max() < 0.01
