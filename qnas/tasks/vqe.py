"""Variational quantum eigensolver: the energy of a molecule's qubit Hamiltonian.

Hamiltonians are data (`qnas/data/<name>.json`, made by scripts/make_hamiltonians.py):
Pauli strings with one letter per qubit, qubit 0 first, real coefficients, and the exact
ground energy from diagonalization. The circuit starts from the Hartree-Fock state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qnas.sim import Layer, expval_pauli_sum, run
from qnas.supercircuit import Subcircuit

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass
class VQETask:
    """Minimise <H> over the subcircuit's weights."""

    name: str
    paulis: list[str]
    coeffs: list[float]
    exact_energy: float
    hf_state: list[int]
    kind: str = "vqe"
    n_inputs: int = 0
    metric: str = "energy"
    higher_is_better: bool = False
    steps_per_epoch: int = 10
    encoder: list[Layer] = field(init=False)

    def __post_init__(self) -> None:
        occupied = tuple((w,) for w, occ in enumerate(self.hf_state) if occ)
        self.encoder = [Layer("x", occupied)] if occupied else []

    @property
    def n_wires(self) -> int:
        return len(self.paulis[0])

    def n_batches(self, batch_size: int) -> int:
        return self.steps_per_epoch

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[None]:
        """A VQE has no data: an epoch is `steps_per_epoch` steps."""
        return iter([None] * self.steps_per_epoch)

    def energy(self, sub: Subcircuit, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        state = run([*self.encoder, *sub.layers], self.n_wires, weights=sub.weights, dtype=dtype)
        return expval_pauli_sum(state, self.paulis, self.coeffs)[0]

    def loss(self, sub: Subcircuit, batch: None = None) -> torch.Tensor:
        return self.energy(sub)

    @torch.no_grad()
    def evaluate(
        self, sub: Subcircuit, split: str = "valid", n_samples: int | None = None
    ) -> dict[str, float]:
        """Noiseless energy (float64), beside the exact ground energy."""
        e = self.energy(sub, dtype=torch.complex128).item()
        return {"loss": e, "energy": e, "exact_energy": self.exact_energy, "error": e - self.exact_energy}

    def measurement_bases(self) -> list[str]:
        """Qubit-wise commuting groups of the Pauli terms, each a basis string (X, Y or Z per qubit, qubit 0 first)."""
        bases: list[list[str]] = []
        for label in self.paulis:
            for basis in bases:
                if all(p == "I" or b in ("I", p) for p, b in zip(label, basis, strict=True)):
                    for i, p in enumerate(label):
                        if p != "I":
                            basis[i] = p
                    break
            else:
                bases.append(list(label))
        return ["".join(b).replace("I", "Z") for b in bases]

    def energy_from_probabilities(self, probs_by_basis: dict[str, np.ndarray]) -> float:
        """<H> from measured outcome probabilities in each basis (qiskit bit order: qubit 0 least significant)."""
        n = self.n_wires
        outcomes = np.arange(2**n)
        bits = (outcomes[:, None] >> np.arange(n)[None, :]) & 1  # bits[k, q] = bit of qubit q
        energy = 0.0
        for label, coeff in zip(self.paulis, self.coeffs, strict=True):
            support = [q for q, p in enumerate(label) if p != "I"]
            if not support:
                energy += coeff
                continue
            basis = next(b for b in probs_by_basis if all(label[q] == b[q] for q in support))
            parity = 1 - 2 * (bits[:, support].sum(axis=1) % 2)
            energy += coeff * float(np.asarray(probs_by_basis[basis]).reshape(-1) @ parity)
        return energy


def load_vqe_task(name: str, steps_per_epoch: int = 10) -> VQETask:
    """Return the VQE task of the molecule whose Hamiltonian is qnas/data/<name>.json."""
    path = DATA_DIR / f"{name}.json"
    data = json.loads(path.read_text())
    return VQETask(
        name=name,
        paulis=data["paulis"],
        coeffs=[float(c) for c in data["coeffs"]],
        exact_energy=float(data["exact_energy"]),
        hf_state=[int(b) for b in data.get("hf_state", [0] * data["n_qubits"])],
        steps_per_epoch=steps_per_epoch,
    )
