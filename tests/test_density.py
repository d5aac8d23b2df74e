"""The density-matrix engine (Pauli coefficients, transfer matrices, encoder prefixes) against plain density matrices."""

import numpy as np
from scipy.stats import unitary_group

from qnas.sim.density import Step, apply_channel, run_density_matrices, unitary_tensor


def noisy_channel(k: int, rng: np.random.Generator, p: float = 0.1) -> np.ndarray:
    """T of a random k-qubit unitary followed by depolarizing noise of strength p."""
    d = 2**k
    unitary = unitary_tensor(unitary_group.rvs(d, random_state=rng))
    depolarize = (1 - p) * np.einsum("ac,be->abce", np.eye(d), np.eye(d)) + p / d * np.einsum(
        "ab,ce->abce", np.eye(d), np.eye(d)
    )
    return np.einsum("abxy,xyce->abce", depolarize, unitary)


def reference(program: list[Step], n: int, values: np.ndarray) -> np.ndarray:
    """Outcome probabilities of every qubit by evolving each sample's 2^n x 2^n density matrix."""
    out = []
    for row in values:
        rho = np.zeros((1,) + (2,) * (2 * n), dtype=np.complex128)
        rho[(0,) * (1 + 2 * n)] = 1.0
        for step in program:
            if step.kind == "rz":
                angle = row[step.columns] @ step.coeffs + step.offset
                rz = np.diag([np.exp(-0.5j * angle), np.exp(0.5j * angle)])
                rho = apply_channel(rho, unitary_tensor(rz), step.qubits, n)
            else:
                rho = apply_channel(rho, step.tensor, step.qubits, n)
        out.append(np.einsum("ii->i", rho.reshape(2**n, 2**n)).real)
    return np.array(out)


def test_the_engine_equals_plain_density_matrices_on_any_qubit_order():
    rng = np.random.default_rng(7)
    n = 5
    rz = lambda q, col: Step("rz", (q,), columns=np.array([col]), coeffs=np.array([1.0]), offset=0.3)  # noqa: E731
    ch = lambda *qs: Step("channel", qs, noisy_channel(len(qs), rng))  # noqa: E731
    program = [
        ch(0),
        rz(0, 0),
        ch(0),
        ch(3),
        rz(3, 1),  # encoder-like prefixes on qubits 0 and 3
        ch(1, 2),
        ch(2, 1),  # adjacent axes, in both orders (multiplied in place)
        ch(2),
        rz(2, 2),  # a one-qubit step inside the state
        ch(0, 4),
        ch(4, 3),  # far apart: axes moved
        ch(3, 2),
        ch(1),
        ch(0, 1),
        rz(4, 0),
    ]
    values = rng.uniform(0, 2 * np.pi, (6, 3))
    ours = run_density_matrices(program, n, values, list(range(n)))
    np.testing.assert_allclose(ours, reference(program, n, values), atol=1e-12)
    # Measured qubits in another order, some left out: the same marginals.
    full = reference(program, n, values).reshape((6,) + (2,) * n)
    marginal = full.sum(axis=(1, 3))  # axes (sample, qubit 3, qubit 1, qubit 0)
    # Measured [1, 3, 0], measured[0] least significant: index bits (qubit 0, qubit 3, qubit 1).
    expect = np.transpose(marginal, (0, 3, 1, 2)).reshape(6, 8)
    np.testing.assert_allclose(run_density_matrices(program, n, values, [1, 3, 0]), expect, atol=1e-12)
