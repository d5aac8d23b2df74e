import numpy as np
import pytest
import torch
from qiskit.quantum_info import Operator, Statevector

from qnas.qiskit_bridge import from_qiskit, to_qiskit
from qnas.sim import GATES, Layer, apply_gate, expval_pauli_sum, expval_z, run


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


@pytest.mark.parametrize("name", sorted(n for n, s in GATES.items() if s.n_params))
def test_gate_matrix_gradients(name):
    spec = GATES[name]
    angles = torch.rand(3, spec.n_params, dtype=torch.float64, requires_grad=True) * 4 - 2
    assert torch.autograd.gradcheck(spec.matrix, (angles,))


def _gate_by_gate(layers, n_wires, weights, inputs, state):
    """Reference: every gate applied on its own with `apply_gate`, batch first."""
    for layer in layers:
        spec = GATES[layer.gate]
        for wires, index in zip(layer.wires, layer.index or [()] * len(layer.wires), strict=True):
            if layer.source == "weight":
                m = spec.matrix(weights[list(index)])
            elif layer.source == "input":
                m = spec.matrix(inputs[:, list(index)])
            else:
                m = spec.matrix(torch.zeros(0, dtype=torch.float64))
            state = apply_gate(state, m, wires, n_wires)
    return state


def _mixed_layers():
    """1-qubit runs on some wires and repeated wires, 2-qubit gates on neighbours, far apart
    and reversed, input angles before and after entangling, 1-qubit gates left at the end."""
    return [
        Layer("ry", ((0,), (2,), (3,)), "input", ((0,), (1,), (2,))),
        Layer("u3", ((2,), (2,), (1,)), "weight", ((0, 1, 2), (3, 4, 5), (6, 7, 8))),
        Layer("h", ((3,),)),
        Layer("cu3", ((3, 0), (1, 2)), "weight", ((9, 10, 11), (12, 13, 14))),
        Layer("rx", ((1,), (3,)), "input", ((3,), (4,))),
        Layer("crx", ((0, 2),), "input", ((5,),)),
        Layer("rzz", ((2, 1), (0, 3)), "weight", ((15,), (16,))),
        Layer("cx", ((1, 3), (3, 2))),
        Layer("rz", ((0,), (1,)), "weight", ((17,), (18,))),
    ]


@pytest.mark.parametrize("given_state", [False, True])
def test_fused_run_matches_gate_by_gate(given_state):
    n_wires, batch = 4, 5
    gen = torch.Generator().manual_seed(3)
    weights = (torch.rand(19, dtype=torch.float64, generator=gen) * 6).requires_grad_(True)
    inputs = (torch.rand(batch, 6, dtype=torch.float64, generator=gen) * 3).requires_grad_(True)
    if given_state:
        state = torch.randn(batch, 2**n_wires, dtype=torch.complex128, generator=gen)
        state = state / state.norm(dim=1, keepdim=True)
    else:
        state = None
    start = state if given_state else torch.eye(2**n_wires, dtype=torch.complex128)[:1].expand(batch, -1)
    layers = _mixed_layers()
    ours = run(layers, n_wires, weights, inputs, state=state, dtype=torch.complex128)
    ref = _gate_by_gate(layers, n_wires, weights, inputs, start)
    torch.testing.assert_close(ours, ref)
    probe = torch.randn(2**n_wires, dtype=torch.complex128, generator=gen)
    grads = [torch.autograd.grad((s * probe).real.sum(), (weights, inputs)) for s in (ours, ref)]
    for g_ours, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_ours, g_ref)


def test_product_state_only_circuit_and_complex64():
    layers = [Layer("rx", ((0,), (1,), (2,)), "input", ((0,), (1,), (2,))), Layer("s", ((1,),))]
    x = torch.rand(4, 3)
    ours = run(layers, 3, inputs=x)
    assert ours.dtype == torch.complex64 and ours.shape == (4, 8)
    ref = _gate_by_gate(layers, 3, None, x.double(), torch.eye(8, dtype=torch.complex128)[:1].expand(4, -1))
    torch.testing.assert_close(ours, ref.to(torch.complex64))


def test_fused_blocks_and_wire_moves_on_six_wires():
    """Long runs of shared 2-qubit gates on scattered pairs: blocks fill, flush and move wires."""
    n_wires, batch = 6, 3
    rng = np.random.default_rng(7)
    pairs = [tuple(int(w) for w in rng.choice(n_wires, 2, replace=False)) for _ in range(14)]
    layers = [Layer("ry", tuple((w,) for w in range(n_wires)), "input", tuple((w,) for w in range(n_wires)))]
    for i, pair in enumerate(pairs):
        layers.append(Layer("cu3", (pair,), "weight", ((3 * i, 3 * i + 1, 3 * i + 2),)))
        if i % 4 == 3:
            layers.append(Layer("u3", ((pair[1],),), "weight", ((3 * i, 3 * i + 2, 3 * i + 1),)))
    weights = torch.tensor(rng.uniform(-3, 3, 3 * len(pairs)), requires_grad=True)
    inputs = torch.tensor(rng.uniform(0, 3, (batch, n_wires)), requires_grad=True)
    start = torch.eye(2**n_wires, dtype=torch.complex128)[:1].expand(batch, -1)
    ours = run(layers, n_wires, weights, inputs, dtype=torch.complex128)
    ref = _gate_by_gate(layers, n_wires, weights, inputs, start)
    torch.testing.assert_close(ours, ref)
    z_ours, z_ref = expval_z(ours, n_wires), expval_z(ref, n_wires)
    grads = [torch.autograd.grad(z.sum(), (weights, inputs)) for z in (z_ours, z_ref)]
    for g_ours, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_ours, g_ref)
