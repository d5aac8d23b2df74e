import numpy as np
import pytest
import torch
from qiskit.quantum_info import Operator, Statevector

from qnas.qiskit_bridge import from_qiskit, to_qiskit
from qnas.sim import GATES, Layer, expval_pauli_sum, expval_z, run


def _torch_unitary(layer: Layer, n_wires: int, weights: torch.Tensor) -> np.ndarray:
    """Columns are the images of the basis states, in the simulator's wire order."""
    basis = torch.eye(2**n_wires, dtype=torch.complex128)
    out = run([layer], n_wires, weights=weights, state=basis, dtype=torch.complex128)
    return out.T.numpy()


def _reverse_bits(u: np.ndarray, n: int) -> np.ndarray:
    perm = [int(format(i, f"0{n}b")[::-1], 2) for i in range(2**n)]
    return u[np.ix_(perm, perm)]


@pytest.mark.parametrize("name", sorted(GATES))
@pytest.mark.parametrize(
    "wires_of", [lambda k: tuple(range(k)), lambda k: tuple(reversed(range(0, 2 * k, 2)))]
)
def test_gate_matches_qiskit_operator(name, wires_of):
    spec = GATES[name]
    n_wires = 3
    wires = wires_of(spec.n_qubits)
    rng = np.random.default_rng(1)
    weights = torch.tensor(rng.uniform(-np.pi, np.pi, spec.n_params), dtype=torch.float64)
    if spec.n_params:
        layer = Layer(name, (wires,), "weight", (tuple(range(spec.n_params)),))
    else:
        layer = Layer(name, (wires,))
    qc = to_qiskit([layer], n_wires, weights=weights)
    expected = _reverse_bits(Operator(qc).data, n_wires)
    np.testing.assert_allclose(_torch_unitary(layer, n_wires, weights), expected, atol=1e-10)


def test_input_angles_are_batched_and_differentiable():
    layers = [Layer("ry", ((0,), (1,)), "input", ((0,), (1,))), Layer("crx", ((0, 1),), "weight", ((0,),))]
    x = torch.rand(5, 2, dtype=torch.float64)
    w = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    state = run(layers, 2, weights=w, inputs=x, dtype=torch.complex128)
    assert state.shape == (5, 4)
    z = expval_z(state, 2)
    z.sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    for b in range(5):
        qc = to_qiskit(layers, 2, weights=w.detach(), n_inputs=2)
        qc = qc.assign_parameters(x[b].numpy())
        sv = Statevector(qc).reverse_qargs().data
        np.testing.assert_allclose(state[b].detach().numpy(), sv, atol=1e-10)


def test_expval_pauli_sum_matches_qiskit():
    from qiskit.quantum_info import SparsePauliOp

    rng = np.random.default_rng(0)
    psi = rng.normal(size=8) + 1j * rng.normal(size=8)
    psi /= np.linalg.norm(psi)
    labels, coeffs = ["XYZ", "ZZI", "IIY"], [0.5, -1.25, 0.75]
    ours = expval_pauli_sum(torch.tensor(psi[None]), labels, coeffs).item()
    # qiskit labels put qubit 0 last; the torch state's wire 0 is qiskit's qubit 0 after reversal.
    op = SparsePauliOp([lab[::-1] for lab in labels], coeffs)
    theirs = Statevector(psi).reverse_qargs().expectation_value(op).real
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_from_qiskit_roundtrip_with_free_and_bound_angles():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(a, 0)
    qc.rzz(0.7, 0, 1)
    qc.cu3(b, 0.2, a, 1, 0) if hasattr(qc, "cu3") else qc.append(
        __import__("qiskit").circuit.library.CU3Gate(b, 0.2, a), [1, 0]
    )
    layers, free, fixed = from_qiskit(qc)
    values = {a: 0.4, b: -1.1}
    w = torch.tensor([values[p] for p in free] + list(fixed), dtype=torch.float64)
    state = run(layers, 2, weights=w, dtype=torch.complex128)[0].numpy()
    expected = Statevector(qc.assign_parameters(values)).reverse_qargs().data
    np.testing.assert_allclose(state, expected, atol=1e-12)


def test_unknown_gate_names_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown gate 'foo'.*allowed: .*cu3"):
        Layer("foo", ((0,),))
