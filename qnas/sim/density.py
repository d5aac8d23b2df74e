"""Batched density-matrix simulation: N samples' density matrices evolved together.

A program is a list of `Step`s on n local qubits (qubit 0 least significant, qiskit's
order): fixed channels (a gate fused with its noise, idle relaxation, or several of
those merged) and Z rotations whose angle is a linear form of each sample's parameter
values. The samples differ only in those angles, so one contraction per step serves all
of them. What a program holds is built from a circuit and a noise model elsewhere
(`qnas.noise`); this module knows neither qiskit nor devices.

Cost: 16 x 4^n bytes per sample and state, so a few hundred samples at 8 qubits need
gigabytes; `density_matrix_bytes` lets callers refuse what does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Step:
    """One instruction (or fused run of instructions) of a program, on local qubits.

    kind "channel": `tensor` T[a, b, c, e] (rho'[a, b] = sum T[a, b, c, e] rho[c, e]) over
    `qubits` (qubits[0] least significant); kind "rz": a Z rotation of each sample by
    angle = values[:, columns] @ coeffs + offset.
    """

    kind: str
    qubits: tuple[int, ...]
    tensor: np.ndarray | None = None
    columns: np.ndarray | None = None
    coeffs: np.ndarray | None = None
    offset: float = 0.0


def density_matrix_bytes(n_qubits: int, n_samples: int) -> int:
    """Return the bytes the engine holds for `n_samples` complex128 density matrices of `n_qubits` (x2 for a step)."""
    return 2 * 16 * 4**n_qubits * n_samples


def unitary_tensor(unitary: np.ndarray) -> np.ndarray:
    """T[a, b, c, e] = U[a, c] conj(U[b, e]): the channel rho -> U rho U^dagger."""
    return np.einsum("ac,be->abce", unitary, unitary.conj())


def superop_tensor(superop: np.ndarray) -> np.ndarray:
    """T of a column-stacking superoperator matrix (vec(rho)[i + d j] = rho[i, j]), as qiskit's SuperOp."""
    d = math.isqrt(superop.shape[0])
    return superop.reshape(d, d, d, d).transpose(1, 0, 3, 2)


def compose(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """T of the channel `before` followed by `after` (same qubits)."""
    return np.einsum("abxy,xyce->abce", after, before)


def fuse(steps: list[Step], max_qubits: int = 2) -> list[Step]:
    """Return `steps` with fixed channels merged into channels on at most `max_qubits` qubits.

    A channel moves back past the steps that touch none of its qubits and joins the last
    channel that does, when their qubits together are few enough. Contractions, not
    arithmetic, cost time at these sizes: this cuts them several-fold (Aer's gate fusion,
    for density matrices of a few qubits).
    """
    blocks: list[tuple[str, set[int], list[Step]]] = []
    for step in steps:
        touching = [i for i, (_, qubits, _) in enumerate(blocks) if qubits & set(step.qubits)]
        last = touching[-1] if touching else None
        if (
            step.kind == "channel"
            and last is not None
            and blocks[last][0] == "channel"
            and len(blocks[last][1] | set(step.qubits)) <= max_qubits
        ):
            blocks[last][1].update(step.qubits)
            blocks[last][2].append(step)
        else:
            blocks.append((step.kind, set(step.qubits), [step]))
    return [
        members[0] if len(members) == 1 else _merge(members, sorted(qubits)) for _, qubits, members in blocks
    ]


def _merge(members: list[Step], qubits: list[int]) -> Step:
    """Return one channel step equal to applying `members` in order on `qubits`."""
    k = len(qubits)
    d = 2**k
    position = {q: i for i, q in enumerate(qubits)}
    # Push the d*d matrix units E_ce through the members: column (c, e) of the fused T.
    basis = np.eye(d * d, dtype=np.complex128).reshape((d * d,) + (2,) * (2 * k))
    for member in members:
        basis = apply_channel(basis, member.tensor, tuple(position[q] for q in member.qubits), k)
    tensor = basis.reshape(d, d, d, d).transpose(2, 3, 0, 1)
    return Step("channel", tuple(qubits), np.ascontiguousarray(tensor))


def apply_channel(rho: np.ndarray, tensor: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """Return rho (N, 2,.., 2) with 2n qubit axes after the channel T on `qubits`."""
    k = len(qubits)
    # Row axis of qubit q is 1 + (n - 1 - q) (qubit 0 least significant), its column axis n further.
    rows = [1 + n - 1 - q for q in reversed(qubits)]
    cols = [r + n for r in rows]
    t = tensor.reshape((2,) * (4 * k))
    out = np.tensordot(t, rho, axes=(list(range(2 * k, 4 * k)), rows + cols))
    return np.moveaxis(out, list(range(2 * k)), rows + cols)


def run_density_matrices(program: list[Step], n: int, values: np.ndarray, measured: list[int]) -> np.ndarray:
    """Return (N, 2**len(measured)) outcome probabilities of the `measured` qubits (measured[0] least significant).

    Evolves all N density matrices of the n qubits together from |0...0><0...0|, one
    matrix product per step (torch, complex128, on the CPU).
    """
    state = _DensityMatrices(values.shape[0], n)
    angles_of = torch.as_tensor(values, dtype=torch.float64)
    for step in program:
        if step.kind == "rz":
            state.rz(step, angles_of)
        else:
            state.channel(step)
    rho = state.canonical().numpy()
    n_samples = values.shape[0]
    diagonal = np.einsum("nii->ni", rho.reshape(n_samples, 2**n, 2**n)).real
    probs = diagonal.reshape((n_samples,) + (2,) * n)
    keep = [1 + n - 1 - q for q in reversed(measured)]
    drop = tuple(a for a in range(1, n + 1) if a not in keep)
    probs = probs.sum(axis=drop) if drop else probs
    remaining = sorted(keep)
    probs = np.moveaxis(probs, [remaining.index(a) + 1 for a in keep], list(range(1, len(keep) + 1)))
    return np.ascontiguousarray(probs).reshape(n_samples, 2 ** len(measured))


class _DensityMatrices:
    """N density matrices of n qubits whose 2n axes stay in whatever order the last step left them.

    Axis labels are (q, "row") and (q, "col"); the sample axis stays first. A channel
    wants its qubits' row axes, then their column axes, last: then its T, as a
    (4^k, 4^k) matrix, acts by one matrix product on the right. Moving axes there is one
    copy, skipped when the last step left them so. Two buffers of the batch's size take
    turns as a step's input and output: a fresh array of 100 MB (8 qubits, 100 samples)
    costs more in page faults than the product itself, so no step allocates one.
    """

    def __init__(self, batch: int, n: int) -> None:
        self.n = n
        self.shape = (batch,) + (2,) * (2 * n)
        self.data = torch.zeros(self.shape, dtype=torch.complex128)
        self.data.view(batch, -1)[:, 0] = 1.0
        self.spare = torch.empty_like(self.data)
        self.order = self._canonical_order()

    def _canonical_order(self) -> list[tuple[int, str]]:
        return [(q, "row") for q in range(self.n - 1, -1, -1)] + [
            (q, "col") for q in range(self.n - 1, -1, -1)
        ]

    def _move_last(self, wanted: list[tuple[int, str]]) -> None:
        k = len(wanted)
        if self.order[-k:] != wanted:
            new = [a for a in self.order if a not in wanted] + wanted
            self.spare.copy_(self.data.permute([0] + [1 + self.order.index(a) for a in new]))
            self.data, self.spare = self.spare, self.data
            self.order = new

    def channel(self, step: Step) -> None:
        qubits = list(reversed(step.qubits))
        self._move_last([(q, "row") for q in qubits] + [(q, "col") for q in qubits])
        d2 = 4 ** len(qubits)
        matrix = torch.from_numpy(np.ascontiguousarray(step.tensor).reshape(d2, d2))
        torch.matmul(self.data.view(-1, d2), matrix.T, out=self.spare.view(-1, d2))
        self.data, self.spare = self.spare, self.data

    def rz(self, step: Step, values: torch.Tensor) -> None:
        (q,) = step.qubits
        angle = values[:, torch.as_tensor(step.columns)] @ torch.as_tensor(step.coeffs) + step.offset
        phase = torch.polar(torch.ones_like(angle), -0.5 * angle)  # e^{-i a/2} on |0>, e^{+i a/2} on |1>
        factor = torch.stack([phase, phase.conj()], 1)
        # rho[a, b] takes factor[a] conj(factor[b]): one (N, 2, 2) broadcast over q's row and column axes.
        both = factor[:, :, None] * factor.conj()[:, None, :]
        row, col = 1 + self.order.index((q, "row")), 1 + self.order.index((q, "col"))
        shape = [self.shape[0]] + [1] * (2 * self.n)
        shape[row] = shape[col] = 2
        self.data.mul_((both if row < col else both.transpose(1, 2)).reshape(shape))

    def canonical(self) -> torch.Tensor:
        """The density matrices with their axes in qubit order again (rows, then columns; qubit 0 last)."""
        self._move_last(self._canonical_order())
        return self.data
