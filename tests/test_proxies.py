"""The training-free proxies, each on a case whose value is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit_aer.noise import (
    NoiseModel,
    ReadoutError,
    depolarizing_error,
    pauli_error,
    thermal_relaxation_error,
)

from qnas import proxies, registry
from qnas.devices import get_device
from qnas.sim import Layer
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks.classification import ClassificationTask
from qnas.transpiled import transpile_candidate


def test_the_twirl_of_depolarizing_noise_is_uniform_over_the_paulis():
    assert proxies.pauli_twirl(depolarizing_error(0.2, 1)) == pytest.approx([0.85, 0.05, 0.05, 0.05])
    two = proxies.pauli_twirl(depolarizing_error(0.32, 2))
    assert two[0] == pytest.approx(1 - 0.32 + 0.02) and two[1:] == pytest.approx([0.02] * 15)


def test_the_twirl_of_thermal_relaxation_has_the_textbook_probabilities():
    t1, t2, t = 100e-6, 80e-6, 10e-6
    p = proxies.pauli_twirl(thermal_relaxation_error(t1, t2, t))
    px = (1 - np.exp(-t / t1)) / 4
    assert p[1:] == pytest.approx([px, px, (1 - np.exp(-t / t2)) / 2 - px])


def test_a_two_qubit_twirl_puts_the_first_qubit_first_as_stim_reads_it():
    # qiskit's label "IX" is X on qubit 0; stim's PAULI_CHANNEL_2 lists "XI" (X on the first target) 4th.
    p = proxies.pauli_twirl(pauli_error([("IX", 0.1), ("II", 0.9)]))
    assert p[proxies._PAULIS_2.index("XI")] == pytest.approx(0.1)
    assert p[proxies._PAULIS_2.index("IX")] == pytest.approx(0.0)


def _device(name: str, model: NoiseModel, n_qubits: int = 2):
    registry.register_device(name, model, n_qubits=n_qubits)
    return get_device(name)


def _x_circuit(n_qubits: int = 1) -> QuantumCircuit:
    qc = QuantumCircuit(n_qubits)
    qc.x(range(n_qubits))
    return qc


@pytest.fixture
def clean_registry():
    saved = registry.snapshot()
    yield
    registry.restore(saved)


def test_cnr_is_one_without_noise_and_one_minus_the_flip_rate_with_readout_error(clean_registry):
    noiseless = _device("cnr_clean", NoiseModel(basis_gates=["x", "sx", "rz", "cx"]))
    cand = transpile_candidate(_x_circuit(), noiseless, [0], optimization_level=0, idle_noise=False)
    assert proxies.clifford_noise_resilience(cand, noiseless, replicas=4, shots=2000) == 1.0

    model = NoiseModel(basis_gates=["x", "sx", "rz", "cx"])
    model.add_readout_error(ReadoutError([[0.9, 0.1], [0.1, 0.9]]), [0])
    flipped = _device("cnr_readout", model)
    cand = transpile_candidate(_x_circuit(), flipped, [0], optimization_level=0, idle_noise=False)
    assert proxies.clifford_noise_resilience(cand, flipped, replicas=8, shots=20000) == pytest.approx(
        0.9, abs=0.01
    )


def test_cnr_of_a_depolarized_x_gate_is_one_minus_half_its_error(clean_registry):
    model = NoiseModel(basis_gates=["x", "sx", "rz", "cx"])
    model.add_quantum_error(depolarizing_error(0.2, 1), "x", [0])
    device = _device("cnr_depolarized", model)
    cand = transpile_candidate(_x_circuit(), device, [0], optimization_level=0, idle_noise=False)
    # X and Y flip the outcome: 2 of the 4 Paulis, each with 0.2 / 4.
    assert proxies.clifford_noise_resilience(cand, device, replicas=8, shots=20000) == pytest.approx(
        0.9, abs=0.01
    )


def test_cnr_on_a_real_device_falls_with_more_two_qubit_gates():
    device = get_device("fake_quito")

    def chain(reps: int) -> float:
        qc = QuantumCircuit(4)
        for _ in range(reps):
            qc.rx(0.3, range(4))
            for q in range(3):
                qc.cx(q, q + 1)
        cand = transpile_candidate(qc, device, [0, 1, 2, 3], optimization_level=0)
        return proxies.clifford_noise_resilience(cand, device, replicas=16, shots=2000)

    shallow, deep = chain(1), chain(8)
    assert 0.5 < deep < shallow < 1.0


def test_cnr_runs_on_a_hundred_qubits_of_an_eagle_device():
    device = get_device("fake_brisbane")
    qc = QuantumCircuit(100)
    qc.h(0)
    for a in range(99):
        qc.cx(a, a + 1)
    cand = transpile_candidate(qc, device, None, optimization_level=1)
    assert len(cand.active_qubits) >= 100
    value = proxies.clifford_noise_resilience(cand, device, replicas=2, shots=256)
    assert 0.0 <= value < 0.9  # 100 qubits of readout error alone take most of the distribution away


def _task(x: torch.Tensor, y: torch.Tensor, n_wires: int) -> ClassificationTask:
    splits = {split: (x, y) for split in ("train", "valid", "test")}
    return ClassificationTask(
        "known", list(range(int(y.max()) + 1)), splits, n_wires=n_wires, encoder_name="ry"
    )


def _empty(n_wires: int) -> Subcircuit:
    return Subcircuit((), n_wires, [], torch.zeros(0, dtype=torch.float64))


def test_repcap_is_one_for_orthogonal_classes_and_one_minus_one_over_c_for_one_state():
    y = torch.tensor([0] * 8 + [1] * 8)
    separated = torch.cat([torch.zeros(8, 2), torch.full((8, 2), np.pi)]).float()
    assert proxies.representational_capacity(_empty(2), _task(separated, y, 2), 4, 2) == pytest.approx(1.0)
    same = torch.full((16, 2), 0.7)
    assert proxies.representational_capacity(_empty(2), _task(same, y, 2), 4, 2) == pytest.approx(1 - 1 / 2)


def test_repcap_sees_the_circuit_after_the_encoder():
    # A CNOT maps |10> and |11> (two classes apart on qubit 1) to |11> and |10>: still apart.
    # A SWAP-free circuit that entangles makes the single-qubit states mixed, closer together.
    y = torch.tensor([0] * 8 + [1] * 8)
    x = torch.cat(
        [torch.tensor([[np.pi / 2, 0.0]]).repeat(8, 1), torch.tensor([[np.pi / 2, np.pi]]).repeat(8, 1)]
    )
    task = _task(x.float(), y, 2)
    plain = proxies.representational_capacity(_empty(2), task, 4, 2)
    entangled = Subcircuit((), 2, [Layer("cx", ((0, 1),))], torch.zeros(0, dtype=torch.float64))
    assert plain == pytest.approx(1.0)
    assert proxies.representational_capacity(entangled, task, 4, 2) < plain


def test_gradient_variance_falls_with_the_qubits_for_a_global_cost():
    def variance(n: int) -> float:
        sc = SuperCircuit(load_space("u3cu3"), n, seed=0)
        sub = sc.subcircuit(sc.largest())

        def global_cost(state: torch.Tensor) -> torch.Tensor:
            return 1 - state[:, 0].abs().square().mean()

        return proxies.gradient_variance(
            sub.layers, n, sub.weights, sub.parameter_indices(), global_cost, draws=48
        )

    v2, v4, v6 = variance(2), variance(4), variance(6)
    assert v2 > 2 * v4 > 4 * v6 > 0
