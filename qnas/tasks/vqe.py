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

from qnas.measure import parity_signs
from qnas.sim import Layer, expval_pauli_sum
from qnas.tasks.base import Task

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass
class VQETask(Task):
    """Minimise <H> over the subcircuit's weights; the output of a circuit is its energy."""

    name: str
    paulis: list[str]
    coeffs: list[float]
    exact_energy: float
    hf_state: list[int]
    kind: str = "vqe"
    n_inputs: int = 0
    metric: str = "energy"
    higher_is_better: bool = False
    metric_names: tuple[str, ...] = ("loss", "energy")
    final_split: str = "valid"
    steps_per_epoch: int = 10
    encoder: list[Layer] = field(init=False)

    def __post_init__(self) -> None:
        occupied = tuple((w,) for w, occ in enumerate(self.hf_state) if occ)
        self.encoder = [Layer("x", occupied)] if occupied else []

    def describe_readout(self) -> list[str]:
        bases = self.measurement_bases()
        return [
            f"start: |{''.join(map(str, self.hf_state))}> (qubit 0 first; the X gates are in the circuit)",
            f"energy: sum of {len(self.paulis)} Pauli terms' coefficients times their expectations, measured in "
            f"{len(bases)} bases (qubit 0 first): {', '.join(bases[:8])}{' ...' if len(bases) > 8 else ''}",
            "in a basis, rotate X to Z with H and Y to Z with Sdg then H before measuring; a term's expectation "
            "is the mean parity of its qubits' bits",
            f"exact ground energy: {self.exact_energy:.6f} Ha",
        ]

    @property
    def n_wires(self) -> int:
        return len(self.paulis[0])

    def samples(self, split: str, n_samples: int | None = None) -> None:
        """A VQE has no data."""
        return None

    def features(self, batch: None) -> torch.Tensor:
        return torch.zeros(1, 0)

    def n_batches(self, batch_size: int) -> int:
        return self.steps_per_epoch

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[None]:
        """A VQE has no data: an epoch is `steps_per_epoch` steps."""
        return iter([None] * self.steps_per_epoch)

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

    def outputs_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """The energy <H> of each state: (N, 1)."""
        return expval_pauli_sum(state, self.paulis, self.coeffs)[:, None]

    def outputs_from_probabilities(self, probs_by_basis: dict[str, np.ndarray]) -> np.ndarray:
        """<H> (N, 1) from outcome probabilities in each basis; each term is read in a basis that holds it."""
        n_rows = len(next(iter(probs_by_basis.values())))
        energy = np.zeros(n_rows)
        for label, coeff in zip(self.paulis, self.coeffs, strict=True):
            support = [q for q, p in enumerate(label) if p != "I"]
            if not support:
                energy += coeff
                continue
            basis = next(b for b in probs_by_basis if all(label[q] == b[q] for q in support))
            energy += coeff * (np.asarray(probs_by_basis[basis]) @ parity_signs(support, self.n_wires))
        return energy[:, None]

    def loss_from_outputs(self, outputs: torch.Tensor, batch: None) -> torch.Tensor:
        return outputs[:, 0, 0]

    def metrics_from_outputs(self, outputs: torch.Tensor | np.ndarray, samples: None) -> dict[str, float]:
        """The energy, beside the exact ground energy."""
        e = float(np.asarray(outputs, dtype=np.float64).reshape(-1)[0])
        return {
            "loss": e,
            "energy": e,
            "exact_energy": self.exact_energy,
            "above_exact": e - self.exact_energy,
        }


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
