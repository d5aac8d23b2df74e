"""What measured outcome probabilities say: readout error, <Z> per qubit, Pauli parities.

Outcome probabilities are (N, 2**n) arrays with qubit 0 the least significant bit of
the outcome index (qiskit's order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def apply_readout(probs: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Return the measured-outcome probabilities (N, 2**n) given true ones and per-qubit R[true, measured].

    Qubit i is bit i of the outcome index, matrices[i] its confusion matrix.
    """
    n = len(matrices)
    tensor = probs.reshape((probs.shape[0],) + (2,) * n)
    for i, matrix in enumerate(matrices):
        axis = n - i  # bit i is the i-th axis from the end; axis 0 is the sample
        tensor = np.moveaxis(np.tensordot(tensor, matrix, axes=([axis], [0])), -1, axis)
    return tensor.reshape(probs.shape)


def z_expectations(probs: np.ndarray, n_qubits: int) -> np.ndarray:
    """Return <Z_i> for each qubit i: (N, n_qubits), from (N, 2**n_qubits) probabilities."""
    outcomes = np.arange(2**n_qubits)
    signs = 1.0 - 2.0 * ((outcomes[:, None] >> np.arange(n_qubits)[None, :]) & 1)
    return probs @ signs


def parity_signs(support: Sequence[int], n_qubits: int) -> np.ndarray:
    """Return (2**n,) the eigenvalue (+1 or -1) of the Z string on `support` for each outcome.

    Measured in a basis that diagonalizes a Pauli term, its expectation is probs @ signs.
    """
    outcomes = np.arange(2**n_qubits)
    bits = (outcomes[:, None] >> np.asarray(list(support), dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * (bits.sum(axis=1) % 2)
