"""A user's own data set or Hamiltonian as a task, in one call each.

    qnas.register_task("blobs", qnas.classification_task(x, y))
    qnas.register_task("ising4", qnas.vqe_task(SparsePauliOp.from_list([("ZZII", -1.0), ...])))

A classification task is registered as a factory, so its train/valid/test split is drawn
with each run's seed, as the built-in tasks' are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qnas.tasks.classification import ClassificationTask, as_tensors
from qnas.tasks.encoders import DEFAULT_ENCODER
from qnas.tasks.vqe import VQETask


@dataclass(frozen=True)
class ArrayClassification:
    """Builds a ClassificationTask from arrays for a run's seed (what `classification_task` returns)."""

    x: np.ndarray
    y: np.ndarray
    n_wires: int
    encoder: str
    test: float
    valid: float

    def __call__(self, seed: int = 0, max_train: int | None = None) -> ClassificationTask:
        from sklearn.model_selection import train_test_split

        classes = np.unique(self.y)
        labels = np.searchsorted(classes, self.y)
        x, y = self.x, labels
        if max_train is not None and len(x) > max_train:
            x, _, y, _ = train_test_split(x, y, train_size=max_train, random_state=seed, stratify=y)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=self.test, random_state=seed, stratify=y
        )
        x_train, x_valid, y_train, y_valid = train_test_split(
            x_rest, y_rest, test_size=self.valid / (1 - self.test), random_state=seed, stratify=y_rest
        )
        # Each feature scaled to rotation angles in [0, pi] by the training split's range alone.
        low, high = x_train.min(0), x_train.max(0)
        span = np.where(high > low, high - low, 1.0)

        def angles(a: np.ndarray) -> np.ndarray:
            return np.clip((a - low) / span, 0.0, 1.0) * np.pi

        splits = {
            "train": as_tensors(angles(x_train), y_train),
            "valid": as_tensors(angles(x_valid), y_valid),
            "test": as_tensors(angles(x_test), y_test),
        }
        return ClassificationTask(
            name="custom",
            classes=tuple(classes.tolist()),
            splits=splits,
            n_wires=self.n_wires,
            encoder_name=self.encoder,
            input_description="x[i] is feature i of the sample, scaled to [0, pi] by its range on the training split",
        )


def classification_task(
    x: np.ndarray,
    y: np.ndarray,
    n_wires: int = 4,
    encoder: str = DEFAULT_ENCODER,
    test: float = 0.3,
    valid: float = 0.15,
) -> ArrayClassification:
    """A classification task from a user's arrays, for `qnas.register_task`.

    `x` is (n_samples, n_features), any real values: each feature is scaled to angles in
    [0, pi] by its range on the training split. `y` holds n_classes <= n_wires distinct
    labels, relabelled 0..n_classes-1 in sorted order. The split is stratified: `test`
    and `valid` are the shares of the test and validation sets. `encoder` must read at
    most n_features features on n_wires wires (4x4_ryzxy: 16 on 4).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"x must be (n_samples, n_features), got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must be ({len(x)},), one label per sample, got shape {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values")
    if not (0 < test < 1 and 0 < valid < 1 and test + valid < 1):
        raise ValueError(f"test ({test}) and valid ({valid}) are shares in (0, 1) that sum below 1")
    task = ArrayClassification(x, y, n_wires, encoder, test, valid)
    task(0)  # fail now, not in the search, if the arrays do not fit the encoder or the readout
    return task


def vqe_task(
    hamiltonian,
    exact_energy: float | None = None,
    hf_state: list[int] | None = None,
    name: str = "custom",
) -> VQETask:
    """A VQE task from a user's `qiskit.quantum_info.SparsePauliOp`, for `qnas.register_task`.

    qiskit labels read qubit 0 last; qnas's read it first, so each label is reversed here.
    The coefficients must be real (a Hamiltonian is Hermitian). Without `exact_energy`, the
    ground energy comes from sparse diagonalization. `hf_state` (qubit 0 first) is the
    reference state the circuit starts from (default all zeros).
    """
    from qiskit.quantum_info import SparsePauliOp

    if not isinstance(hamiltonian, SparsePauliOp):
        raise ValueError(f"hamiltonian must be a qiskit SparsePauliOp, got {type(hamiltonian).__name__}")
    op = hamiltonian.simplify()
    coeffs = np.asarray(op.coeffs)
    if np.abs(coeffs.imag).max(initial=0.0) > 1e-10:
        raise ValueError("the Hamiltonian has complex coefficients; a Hamiltonian's are real")
    n = op.num_qubits
    if exact_energy is None:
        exact_energy = ground_energy(op)
    hf = [0] * n if hf_state is None else [int(b) for b in hf_state]
    if len(hf) != n or set(hf) - {0, 1}:
        raise ValueError(f"hf_state must be {n} bits (0 or 1), got {hf_state}")
    return VQETask(
        name=name,
        paulis=[label[::-1] for label in op.paulis.to_labels()],
        coeffs=[float(c) for c in coeffs.real],
        exact_energy=float(exact_energy),
        hf_state=hf,
    )


def ground_energy(op) -> float:
    """The lowest eigenvalue of a SparsePauliOp: dense below 10 qubits, Lanczos (scipy eigsh) above."""
    if op.num_qubits < 10:
        return float(np.linalg.eigvalsh(op.to_matrix()).min())
    from scipy.sparse.linalg import eigsh

    return float(eigsh(op.to_matrix(sparse=True), k=1, which="SA")[0][0])
