"""Spin-chain Hamiltonians by name, for VQE past 6 qubits: transverse-field Ising and XXZ chains.

    tfim{n}[_ring]   H = -sum_i Z_i Z_{i+1} - h sum_i X_i, h = 1 (the critical point, hardest to prepare)
    xxz{n}[_ring]    H = sum_i (X_i X_{i+1} + Y_i Y_{i+1} + delta Z_i Z_{i+1}), delta = 0.5

on n = 2..16 qubits, open chains or rings (`_ring`: the bond (n-1, 0) too). The exact
ground energy comes from sparse diagonalization (Lanczos, scipy's eigsh), once per
process. The XXZ circuit starts from the Néel state |0101...>, which lies in the ground
state's sector of total Sz (its ground state has Sz = 0 for even n); the Ising circuit
from |00...0>.
"""

from __future__ import annotations

import functools
import re

from qnas.tasks.vqe import VQETask

# Listed by `qnas tasks`; any n from 2 to 16 is accepted.
SPIN_CHAINS = [
    f"{model}{n}{ring}" for model in ("tfim", "xxz") for n in (8, 10, 12) for ring in ("", "_ring")
]
_PATTERN = re.compile(r"^(tfim|xxz)(\d+)(_ring)?$")
FIELD = 1.0
DELTA = 0.5


def parse_chain(name: str) -> tuple[str, int, bool] | None:
    """(model, n, periodic) of a chain's name, or None if `name` is not one."""
    match = _PATTERN.match(name)
    if match is None:
        return None
    n = int(match.group(2))
    if not 2 <= n <= 16:
        raise ValueError(f"spin chain {name!r}: {n} qubits; allowed: 2 to 16")
    return match.group(1), n, bool(match.group(3))


def chain_terms(model: str, n: int, periodic: bool) -> tuple[list[str], list[float]]:
    """Pauli labels (qubit 0 first) and coefficients of the chain's Hamiltonian."""
    bonds = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if periodic and n > 2 else [])

    def label(ops: dict[int, str]) -> str:
        return "".join(ops.get(q, "I") for q in range(n))

    paulis, coeffs = [], []
    if model == "tfim":
        for a, b in bonds:
            paulis.append(label({a: "Z", b: "Z"}))
            coeffs.append(-1.0)
        for q in range(n):
            paulis.append(label({q: "X"}))
            coeffs.append(-FIELD)
    else:
        for p, c in (("X", 1.0), ("Y", 1.0), ("Z", DELTA)):
            for a, b in bonds:
                paulis.append(label({a: p, b: p}))
                coeffs.append(c)
    return paulis, coeffs


@functools.cache
def spin_chain_task(name: str) -> VQETask:
    """The VQE task of the chain called `name` (see the module's docstring)."""
    from qiskit.quantum_info import SparsePauliOp

    from qnas.tasks.custom import ground_energy

    model, n, periodic = parse_chain(name)
    paulis, coeffs = chain_terms(model, n, periodic)
    # qiskit reads a label's qubit 0 last.
    op = SparsePauliOp([p[::-1] for p in paulis], coeffs)
    hf = [q % 2 for q in range(n)] if model == "xxz" else [0] * n
    return VQETask(name=name, paulis=paulis, coeffs=coeffs, exact_energy=ground_energy(op), hf_state=hf)
