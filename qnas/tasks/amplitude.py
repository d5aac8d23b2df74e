"""Amplitude encoding: 2^n non-negative features become the amplitudes of an n-qubit state.

Feature i is the amplitude of basis state i read with qubit 0 as its most significant bit
(the order of qnas's simulator, and of a row-major image: qubit 0 splits top from bottom).

Möttönen et al. (Quantum Inf. Comput. 2005, "Transformation of quantum states using
uniformly controlled rotations"): the state is prepared by a tree of RY rotations, the
one on qubit t controlled by every more significant qubit; each uniformly controlled
RY on k controls is 2^k RY gates and 2^k CNOTs, whose angles theta = 2^-k M^T alpha are a
fixed linear map of the tree's angles alpha (M_ij = (-1)^(i . g_j), g_j the Gray code of j).
So the circuit is fixed RY/CNOT gates whose angles are per-sample *inputs*, like any
angle encoder: the noisy scorer binds them row by row, and the export is OpenQASM 3 with
inputs. The classical part (amplitudes -> angles) runs once per sample when the task is
built (`prepare`). Real, non-negative amplitudes only (an image's pixels, PCA components
scaled to [0, pi]): no phases are needed. 2^n - 1 RY and 2^n - 2 CNOTs on n qubits.
"""

from __future__ import annotations

import numpy as np

from qnas.sim import Layer


def _gray(i: int) -> int:
    return i ^ (i >> 1)


def amplitude_encoder(n_wires: int) -> list[Layer]:
    """The fixed RY/CNOT sequence; RY number m reads input feature m (the angles of `prepare`)."""
    layers: list[Layer] = []
    feature = 0
    # The simulator's state index reads qubit 0 as its most significant bit: level k rotates
    # qubit k, controlled by qubits 0..k-1; bit p of a control state is qubit k - 1 - p.
    for k in range(n_wires):
        for i in range(2**k):
            layers.append(Layer("ry", ((k,),), "input", ((feature,),)))
            feature += 1
            if k:
                changed = _gray(i) ^ _gray((i + 1) % 2**k)
                layers.append(Layer("cx", ((k - changed.bit_length(), k),)))
    return layers


def prepare(x: np.ndarray, n_wires: int) -> np.ndarray:
    """The encoder's angles (N, 2^n - 1) of samples whose 2^n features are their amplitudes (normalized here).

    A sample of all zeros becomes |0...0>.
    """
    x = np.asarray(x, dtype=np.float64)
    size = 2**n_wires
    if x.shape[1] != size:
        raise ValueError(f"amplitude encoding on {n_wires} wires reads {size} features, got {x.shape[1]}")
    if (x < 0).any():
        raise ValueError("amplitude encoding takes non-negative features (it prepares no phases)")
    weights = x**2
    out = []
    for k in range(n_wires):
        # Control state j: the bits of qubits 0..k-1 (qubit 0 most significant), then qubit k's bit.
        blocks = weights.reshape(len(x), 2**k, 2, 2 ** (n_wires - 1 - k))
        lower, upper = blocks[:, :, 0].sum(-1), blocks[:, :, 1].sum(-1)
        alpha = 2 * np.arctan2(np.sqrt(upper), np.sqrt(lower))  # (N, 2^k); 0 where the block is empty
        if k:
            # Rows j are control states, columns the Gray steps.
            gray = np.array([_gray(i) for i in range(2**k)])
            dots = np.array([[bin(j & g).count("1") % 2 for g in gray] for j in range(2**k)])
            m = (-1.0) ** dots
            alpha = alpha @ m / 2**k  # theta = 2^-k M^T alpha, one row per sample
        out.append(alpha)
    return np.concatenate(out, axis=1)
