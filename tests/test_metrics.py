"""Expressibility and entangling capability against their known values (Sim et al. 2019)."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qnas.metrics import (
    entangling_capability,
    expressibility,
    expressibility_from_fidelities,
    haar_fidelity_masses,
    meyer_wallach,
)
from qnas.sim import Layer


def haar_states(n_states: int, n_qubits: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_states, 2**n_qubits)) + 1j * rng.normal(size=(n_states, 2**n_qubits))
    return torch.from_numpy(z / np.linalg.norm(z, axis=1, keepdims=True))


@dataclass
class StandInSubcircuit:
    """The four attributes of a qnas Subcircuit the metrics read."""

    n_wires: int
    layers: list[Layer]
    weights: torch.Tensor
    active: list[int] = field(default_factory=list)

    def parameter_indices(self) -> list[int]:
        return self.active


@pytest.mark.parametrize("n_qubits", [1, 2, 3])
def test_idle_circuit_expressibility(n_qubits):
    for n_bins in (75, 20):
        value = expressibility(QuantumCircuit(n_qubits), n_samples=200, n_bins=n_bins)
        assert value == pytest.approx((2**n_qubits - 1) * np.log(n_bins), rel=1e-12)


def test_haar_states_are_nearly_maximally_expressive():
    states = haar_states(10_000, 3)
    fidelities = (states[:5000].conj() * states[5000:]).sum(dim=1).abs().square().numpy()
    assert expressibility_from_fidelities(fidelities, 3) < 0.02
    assert haar_fidelity_masses(3).sum() == pytest.approx(1.0)


def test_meyer_wallach_known_states():
    product = haar_states(1, 1)
    for _ in range(3):
        product = torch.kron(product[0], haar_states(1, 1, seed=5)[0])[None, :]
    assert meyer_wallach(product).item() == pytest.approx(0.0, abs=1e-12)
    ghz = torch.zeros(1, 16, dtype=torch.complex128)
    ghz[0, 0] = ghz[0, 15] = 2**-0.5
    assert meyer_wallach(ghz).item() == pytest.approx(1.0, abs=1e-12)
    assert meyer_wallach(haar_states(4000, 4)).mean().item() == pytest.approx(2 * (1 - 10 / 17), abs=0.01)


def test_entangling_capability_of_circuits():
    ghz = QuantumCircuit(4)
    ghz.h(0)
    for q in range(3):
        ghz.cx(q, q + 1)
    assert entangling_capability(ghz, n_samples=4) == pytest.approx(1.0, abs=1e-12)
    theta = ParameterVector("t", 3)
    product = QuantumCircuit(3)
    for q in range(3):
        product.rx(theta[q], q)
    assert entangling_capability(product, n_samples=100) == pytest.approx(0.0, abs=1e-12)


def test_single_qubit_rotations_expressibility_matches_known_ordering():
    # Sim et al. (2019): H then RZ covers only the equator (less expressive) than RX then RZ.
    t = ParameterVector("t", 2)
    equator = QuantumCircuit(1)
    equator.h(0)
    equator.rz(t[0], 0)
    sphere = QuantumCircuit(1)
    sphere.rx(t[0], 0)
    sphere.rz(t[1], 0)
    assert expressibility(sphere, n_samples=2000) < expressibility(equator, n_samples=2000) < np.log(75)


def test_subcircuit_samples_only_its_active_weights():
    layers = [
        Layer("ry", ((0,), (1,)), "weight", ((0,), (1,))),
        Layer("cx", ((0, 1),)),
        Layer("rz", ((1,),), "weight", ((2,),)),
    ]
    weights = torch.tensor([0.3, 0.0, 1.1])
    frozen = StandInSubcircuit(2, layers, weights, active=[])
    assert expressibility(frozen, n_samples=100) == pytest.approx(3 * np.log(75))
    sub = StandInSubcircuit(2, layers, weights, active=[0, 1])
    value = expressibility(sub, n_samples=500, seed=1)
    assert 0 < value < 3 * np.log(75)
    assert expressibility(sub, n_samples=500, seed=1) == value
    assert 0 < entangling_capability(sub, n_samples=200) < 1
