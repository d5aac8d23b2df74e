"""Checks on the stored molecular qubit Hamiltonians in ``qnas/data/*.json``.

The data are produced by ``scripts/make_hamiltonians.py`` (pyscf); these tests only need numpy
and qiskit. Pauli strings are stored qubit-0-first, i.e. reversed w.r.t. qiskit labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp

DATA_DIR = Path(__file__).resolve().parent.parent / "qnas" / "data"
MOLECULES = ["h2", "lih", "beh2"]
H2_REFERENCE_ENERGY = -1.137306  # STO-3G FCI at 0.735 Angstrom, incl. nuclear repulsion
# BeH2 linear at 1.326 Angstrom, STO-3G, Be 1s frozen, 4 electrons in 4 sigma orbitals:
# CASCI(4,4) energy and the RHF energy, both from pyscf, incl. nuclear repulsion.
BEH2_REFERENCE_ENERGY = -15.589504
BEH2_RHF_ENERGY = -15.560335
REQUIRED_KEYS = {
    "name",
    "description",
    "source",
    "geometry",
    "basis",
    "n_qubits",
    "paulis",
    "coeffs",
    "exact_energy",
    "hf_energy",
    "hf_state",
}


def _load(name: str) -> dict:
    return json.loads((DATA_DIR / f"{name}.json").read_text())


def _matrix(data: dict) -> np.ndarray:
    op = SparsePauliOp([p[::-1] for p in data["paulis"]], np.asarray(data["coeffs"], dtype=float))
    return op.to_matrix()


@pytest.fixture(scope="module", params=MOLECULES)
def molecule(request):
    data = _load(request.param)
    return data, _matrix(data)


def test_molecule_files_present():
    assert set(MOLECULES) <= {p.stem for p in DATA_DIR.glob("*.json")}


def test_schema(molecule):
    data, _ = molecule
    assert set(data) >= REQUIRED_KEYS
    n = data["n_qubits"]
    assert n <= 10
    assert data["basis"] == "sto-3g"
    assert len(data["paulis"]) == len(data["coeffs"]) > 0
    assert len(set(data["paulis"])) == len(data["paulis"])
    assert all(len(p) == n and set(p) <= set("IXYZ") for p in data["paulis"])
    assert all(isinstance(c, float) and abs(c) >= 1e-10 for c in data["coeffs"])
    assert len(data["hf_state"]) == n and set(data["hf_state"]) <= {0, 1}


def test_hermitian(molecule):
    _, mat = molecule
    assert np.allclose(mat, mat.conj().T, atol=1e-12)


def test_exact_energy(molecule):
    data, mat = molecule
    ground = np.linalg.eigvalsh(mat)[0]
    assert ground == pytest.approx(data["exact_energy"], abs=1e-8)


def test_hf_energy(molecule):
    data, mat = molecule
    # qiskit basis index: bit q of the index is qubit q.
    index = sum(int(b) << q for q, b in enumerate(data["hf_state"]))
    assert mat[index, index].real == pytest.approx(data["hf_energy"], abs=1e-8)
    # HF is variational: above the exact ground state, and a correlation energy of a few mHa.
    assert data["exact_energy"] < data["hf_energy"] < data["exact_energy"] + 0.1


def test_hf_electron_count(molecule):
    """The HF determinant holds the (active) electron count."""
    data, _ = molecule
    n_elec = data.get("active_space", {}).get("n_active_electrons", 2)
    assert sum(data["hf_state"]) == n_elec


def test_h2_reference_energy():
    data = _load("h2")
    ground = np.linalg.eigvalsh(_matrix(data))[0]
    assert ground == pytest.approx(H2_REFERENCE_ENERGY, abs=1e-5)
    assert data["exact_energy"] == pytest.approx(H2_REFERENCE_ENERGY, abs=1e-5)
    assert data["n_qubits"] == 4
    assert data["hf_state"] == [1, 1, 0, 0]


def test_beh2_active_space():
    """BeH2: 8 qubits, 4 active electrons in the HF state, exact energy the Pauli sum's lowest eigenvalue."""
    data = _load("beh2")
    assert data["n_qubits"] == 8
    assert data["n_electrons"] == 6
    assert data["active_space"]["frozen_core_orbitals"] == [0]
    assert data["active_space"]["n_active_electrons"] == 4
    assert data["active_space"]["n_active_spatial_orbitals"] == 4
    assert data["hf_state"] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert sum(data["hf_state"]) == 4
    mat = _matrix(data)
    assert mat.shape == (256, 256)
    ground = np.linalg.eigvalsh(mat)[0]
    assert ground == pytest.approx(data["exact_energy"], abs=1e-8)
    assert ground == pytest.approx(BEH2_REFERENCE_ENERGY, abs=1e-5)
    index = sum(int(b) << q for q, b in enumerate(data["hf_state"]))
    hf = mat[index, index].real
    assert hf == pytest.approx(data["hf_energy"], abs=1e-8)
    assert hf == pytest.approx(BEH2_RHF_ENERGY, abs=1e-5)
    assert hf > ground
