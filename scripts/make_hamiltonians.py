#!/usr/bin/env python
"""Generate the VQE molecular qubit Hamiltonians stored in ``qnas/data/*.json``.

Run with a Python environment that has pyscf, numpy and qiskit (NOT the main qnas venv)::

    python3 -m venv /work/venv-chem
    /work/venv-chem/bin/pip install pyscf numpy scipy qiskit
    /work/venv-chem/bin/python scripts/make_hamiltonians.py

Pipeline per molecule:

1. pyscf RHF in the STO-3G basis.
2. MO-basis one- and two-electron integrals; optional frozen core (folded into an effective
   one-body operator plus a constant) and active-space restriction.
3. Second-quantized Hamiltonian in spin orbitals,
   ``H = E_const + sum_PQ h_PQ a+_P a_Q + 1/2 sum_PQRS (PQ|RS) a+_P a+_R a_S a_Q``
   (chemist's notation), where ``E_const`` = nuclear repulsion + frozen-core energy.
4. Jordan-Wigner mapping (implemented here, Pauli algebra via qiskit ``SparsePauliOp``).
   Spin orbitals are interleaved: qubit ``2p`` = spatial orbital ``p`` spin alpha,
   qubit ``2p+1`` = spatial orbital ``p`` spin beta.
5. Exact diagonalization of the dense matrix (``numpy.linalg.eigvalsh``) for the ground energy,
   and the Hartree-Fock determinant energy, checked against pyscf.

JSON contract: ``paulis`` strings have one letter per qubit with QUBIT 0 FIRST (the reverse
of qiskit's label order); ``hf_state`` is the occupation per qubit, qubit 0 first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyscf
from pyscf import ao2mo, fci, gto, scf
from qiskit.quantum_info import SparsePauliOp

DATA_DIR = Path(__file__).resolve().parent.parent / "qnas" / "data"
DROP_TOL = 1e-10
H2_REFERENCE_ENERGY = -1.137306  # STO-3G FCI at 0.735 Angstrom, Hartree

MOLECULES = {
    "h2": {
        "description": "Hydrogen molecule H2 at 0.735 Angstrom (near equilibrium), STO-3G, "
        "full space: 2 electrons in 2 spatial orbitals -> 4 qubits.",
        "atom": "H 0 0 0; H 0 0 0.735",
        "bond_length_angstrom": 0.735,
        "n_frozen": 0,
        "active_sigma": None,  # all orbitals
    },
    "lih": {
        "description": "Lithium hydride LiH at 1.595 Angstrom (equilibrium), STO-3G. Li 1s frozen "
        "(core energy folded into the identity term), active space of 2 electrons in the 3 "
        "lowest non-core sigma (A1) spatial orbitals (RHF MOs 1, 2, 5) -> 6 qubits; the two "
        "pi orbitals (empty in HF, reachable only by paired pi^2 excitations) are dropped. "
        "Active-space ground energy -7.881145 Ha (equals pyscf CASCI(3,2) on the same orbitals); "
        "the full-space STO-3G FCI energy is -7.882402 Ha.",
        "atom": "Li 0 0 0; H 0 0 1.595",
        "bond_length_angstrom": 1.595,
        "n_frozen": 1,
        "active_sigma": 3,  # number of non-core A1 (sigma) orbitals kept
    },
    "beh2": {
        "description": "Beryllium hydride BeH2, linear H-Be-H with Be-H 1.326 Angstrom (equilibrium), "
        "STO-3G. Be 1s frozen (core energy folded into the identity term), active space of 4 "
        "electrons in the 4 lowest non-core sigma (A1g/A1u) spatial orbitals (RHF MOs 1, 2, 5, 6) "
        "-> 8 qubits; the two pi orbitals (empty in HF, reachable only by paired pi^2 excitations) "
        "are dropped. Active-space ground energy -15.589504 Ha (equals pyscf CASCI(4,4) on the same "
        "orbitals); the full-space STO-3G FCI energy is -15.595182 Ha.",
        "atom": "Be 0 0 0; H 0 0 1.326; H 0 0 -1.326",
        "bond_length_angstrom": 1.326,
        "n_frozen": 1,
        "active_sigma": 4,  # number of non-core sigma (A1g, A1u) orbitals kept
    },
}
# pyscf's names of the sigma+ irreps: A1 in C(inf)v (LiH), A1g and A1u in D(inf)h (BeH2).
SIGMA_IRREPS = ("A1", "A1g", "A1u")


# --------------------------------------------------------------------------------------------
# Jordan-Wigner
# --------------------------------------------------------------------------------------------
def jw_ladder(n_qubits: int) -> tuple[list[SparsePauliOp], list[SparsePauliOp]]:
    """Return (creation, annihilation) operators for each qubit under Jordan-Wigner.

    a+_j = Z_0 ... Z_{j-1} (X_j - i Y_j) / 2,  a_j = Z_0 ... Z_{j-1} (X_j + i Y_j) / 2.
    """
    create, annihilate = [], []
    for j in range(n_qubits):
        idx = list(range(j + 1))
        # from_sparse_list: the i-th letter acts on qubit idx[i]; Z-string on 0..j-1, X/Y on j.
        x_term = ("Z" * j + "X", idx, 0.5)
        y_term_c = ("Z" * j + "Y", idx, -0.5j)
        y_term_a = ("Z" * j + "Y", idx, 0.5j)
        create.append(SparsePauliOp.from_sparse_list([x_term, y_term_c], num_qubits=n_qubits))
        annihilate.append(SparsePauliOp.from_sparse_list([x_term, y_term_a], num_qubits=n_qubits))
    return create, annihilate


def build_qubit_hamiltonian(e_const: float, h1: np.ndarray, eri: np.ndarray) -> SparsePauliOp:
    """Jordan-Wigner qubit Hamiltonian from spatial-orbital integrals (chemist's notation).

    ``h1[p, q]`` and ``eri[p, q, r, s] = (pq|rs)`` over n spatial orbitals -> 2n qubits with
    interleaved spin ordering (qubit 2p+sigma).
    """
    n_orb = h1.shape[0]
    n_qubits = 2 * n_orb
    cre, ann = jw_ladder(n_qubits)
    terms: list[SparsePauliOp] = [SparsePauliOp.from_sparse_list([("", [], e_const)], num_qubits=n_qubits)]

    # one-body: sum_{pq,sigma} h_pq a+_{p sigma} a_{q sigma}
    for p in range(n_orb):
        for q in range(n_orb):
            if abs(h1[p, q]) < 1e-14:
                continue
            for s in (0, 1):
                terms.append(h1[p, q] * cre[2 * p + s].dot(ann[2 * q + s]))

    # two-body: 1/2 sum (pq|rs) a+_{p s1} a+_{r s2} a_{s s2} a_{q s1}
    for p in range(n_orb):
        for q in range(n_orb):
            for r in range(n_orb):
                for s in range(n_orb):
                    g = eri[p, q, r, s]
                    if abs(g) < 1e-14:
                        continue
                    for s1 in (0, 1):
                        for s2 in (0, 1):
                            i, j, k, m = 2 * p + s1, 2 * r + s2, 2 * s + s2, 2 * q + s1
                            if i == j or k == m:
                                continue  # a+_i a+_i = 0
                            op = cre[i].dot(cre[j]).dot(ann[k]).dot(ann[m])
                            terms.append(0.5 * g * op)
    return SparsePauliOp.sum(terms).simplify(atol=1e-14)


# --------------------------------------------------------------------------------------------
# Chemistry
# --------------------------------------------------------------------------------------------
def molecular_integrals(spec: dict) -> dict:
    """RHF + (frozen core, active space) integrals for one molecule spec."""
    mol = gto.M(atom=spec["atom"], basis="sto-3g", unit="Angstrom", symmetry=True, verbose=0)
    mf = scf.RHF(mol)
    mf.conv_tol = 1e-12
    e_hf = mf.kernel()
    assert mf.converged, "RHF did not converge"

    mo = mf.mo_coeff
    n_mo = mo.shape[1]
    n_occ = mol.nelectron // 2
    n_frozen = spec["n_frozen"]
    core = list(range(n_frozen))
    if spec["active_sigma"] is None:
        active = list(range(n_frozen, n_mo))
    else:
        irreps = scf.hf_symm.get_orbsym(mol, mo)
        irrep_names = [mol.irrep_name[mol.irrep_id.index(i)] for i in irreps]
        sigma = [k for k in range(n_frozen, n_mo) if irrep_names[k] in SIGMA_IRREPS]
        active = sigma[: spec["active_sigma"]]
    assert all(k < n_occ for k in core)

    hcore_ao = mf.get_hcore()
    e_nuc = mol.energy_nuc()

    # Frozen-core: E_core = E_nuc + sum_c 2 h_cc + sum_cd [2 (cc|dd) - (cd|dc)]; effective one-body
    # h_pq + sum_c [2 (pq|cc) - (pc|cq)] = C_act^T (hcore + 2J_core - K_core) C_act.
    e_const = e_nuc
    h_eff_ao = hcore_ao.copy()
    if core:
        dm_core = 2.0 * mo[:, core] @ mo[:, core].T
        vj, vk = mf.get_jk(mol, dm_core)
        v_core = vj - 0.5 * vk
        e_const += float(np.einsum("ij,ji->", dm_core, hcore_ao + 0.5 * v_core))
        h_eff_ao = hcore_ao + v_core
    c_act = mo[:, active]
    h1 = c_act.T @ h_eff_ao @ c_act
    eri = ao2mo.restore(1, ao2mo.kernel(mol, c_act), len(active))

    n_act_elec = mol.nelectron - 2 * n_frozen
    n_act_occ = n_act_elec // 2
    # In the active space, the HF determinant fills the lowest active orbitals; they must be the
    # RHF occupied ones for the HF energy check to be meaningful.
    assert all(k < n_occ for k in active[:n_act_occ])
    assert all(k >= n_occ for k in active[n_act_occ:])

    return {
        "mol": mol,
        "e_hf_pyscf": float(e_hf),
        "e_nuc": float(e_nuc),
        "e_const": float(e_const),
        "h1": h1,
        "eri": eri,
        "core": core,
        "active": active,
        "n_act_elec": n_act_elec,
        "mo_energies": mf.mo_energy,
    }


def number_operator_diag(n_qubits: int) -> np.ndarray:
    """Particle number of each computational basis state (qiskit index: bit i = qubit i)."""
    idx = np.arange(2**n_qubits)
    return np.array([bin(int(k)).count("1") for k in idx])


def make_molecule(name: str, spec: dict) -> dict:
    ints = molecular_integrals(spec)
    ham = build_qubit_hamiltonian(ints["e_const"], ints["h1"], ints["eri"])
    n_qubits = ham.num_qubits

    coeffs = ham.coeffs
    assert np.max(np.abs(coeffs.imag)) < 1e-12, "non-real Pauli coefficients"
    keep = np.abs(coeffs.real) >= DROP_TOL
    labels_qiskit = [lab for lab, k in zip(ham.paulis.to_labels(), keep, strict=True) if k]
    real_coeffs = [float(c) for c, k in zip(coeffs.real, keep, strict=True) if k]
    # Reverse to "qubit 0 first"; identity first, then lexicographic for stable diffs.
    terms = sorted(
        ((lab[::-1], c) for lab, c in zip(labels_qiskit, real_coeffs, strict=True)),
        key=lambda t: (t[0] != "I" * n_qubits, t[0]),
    )
    paulis = [t[0] for t in terms]
    real = [t[1] for t in terms]

    # Rebuild from the stored (truncated, real) data for the energies.
    op = SparsePauliOp([p[::-1] for p in paulis], np.array(real))
    mat = op.to_matrix()
    assert np.allclose(mat, mat.conj().T, atol=1e-12)
    exact = float(np.linalg.eigvalsh(mat)[0])

    # Particle-number check: the global ground state must lie in the molecule's electron sector.
    nums = number_operator_diag(n_qubits)
    n_elec = ints["n_act_elec"]
    sector = nums == n_elec
    sector_ground = float(np.linalg.eigvalsh(mat[np.ix_(sector, sector)])[0])
    assert abs(sector_ground - exact) < 1e-10, (
        f"{name}: global ground {exact} != {n_elec}-electron ground {sector_ground}"
    )

    # Independent check of the Jordan-Wigner construction: pyscf's determinant-space FCI solver
    # on the very same (active-space) integrals.
    n_act = ints["h1"].shape[0]
    e_fci, _ = fci.direct_spin1.FCI().kernel(ints["h1"], ints["eri"], n_act, (n_elec // 2, n_elec // 2))
    assert abs(e_fci + ints["e_const"] - exact) < 1e-9, (name, e_fci + ints["e_const"], exact)

    # HF determinant: lowest n_elec spin orbitals (interleaved alpha/beta) occupied.
    hf_state = [1 if q < n_elec else 0 for q in range(n_qubits)]
    hf_index = sum(b << q for q, b in enumerate(hf_state))
    hf_energy = float(mat[hf_index, hf_index].real)
    assert abs(hf_energy - ints["e_hf_pyscf"]) < 1e-8, (
        f"{name}: HF determinant energy {hf_energy} != pyscf RHF {ints['e_hf_pyscf']}"
    )

    mol = ints["mol"]
    active_desc = {
        "frozen_core_orbitals": ints["core"],
        "active_orbitals": ints["active"],
        "n_active_electrons": n_elec,
        "n_active_spatial_orbitals": len(ints["active"]),
        "note": "orbital indices are RHF canonical MOs (0-based, energy order)",
    }
    return {
        "name": name,
        "description": spec["description"],
        "source": f"generated by scripts/make_hamiltonians.py with pyscf {pyscf.__version__}, "
        "STO-3G, RHF, Jordan-Wigner",
        "geometry": f"{spec['atom']} (Angstrom)",
        "bond_length_angstrom": spec["bond_length_angstrom"],
        "basis": "sto-3g",
        "n_qubits": n_qubits,
        "n_electrons": int(mol.nelectron),
        "active_space": active_desc,
        "spin_orbital_order": "interleaved: qubit 2p = spatial orbital p alpha, 2p+1 = p beta",
        "pauli_order": "one letter per qubit, qubit 0 first (reverse of qiskit label order)",
        "nuclear_repulsion": ints["e_nuc"],
        "constant_energy": ints["e_const"],
        "paulis": paulis,
        "coeffs": real,
        "exact_energy": exact,
        "hf_energy": hf_energy,
        "hf_state": hf_state,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    parser.add_argument("molecules", nargs="*", default=list(MOLECULES))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    for name in args.molecules:
        data = make_molecule(name, MOLECULES[name])
        if name == "h2":
            assert abs(data["exact_energy"] - H2_REFERENCE_ENERGY) < 1e-5, data["exact_energy"]
        path = args.out_dir / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(
            f"{name}: {data['n_qubits']} qubits, {len(data['paulis'])} terms, "
            f"exact={data['exact_energy']:.10f}, hf={data['hf_energy']:.10f}, "
            f"hf_state={data['hf_state']} -> {path}"
        )


if __name__ == "__main__":
    main()
