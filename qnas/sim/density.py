"""Batched density-matrix simulation: N samples' density matrices evolved together.

A program is a list of `Step`s on n local qubits (qubit 0 least significant, qiskit's
order): fixed channels (a gate fused with its noise, idle relaxation, or several of
those merged) and Z rotations whose angle is a linear form of each sample's parameter
values. The samples differ only in those angles, so one contraction per step serves all
of them. What a program holds is built from a circuit and a noise model elsewhere
(`qnas.noise`); this module knows neither qiskit nor devices.

The engine holds each density matrix as its real coefficients in the Pauli basis and
each channel as its Pauli transfer matrix (`pauli_transfer_matrix`): real arithmetic,
2.0-2.7x faster than complex density matrices at 6-8 qubits, the same probabilities to
1e-15. Cost: 8 x 4^n bytes per sample and buffer (two buffers), so a few hundred samples
at 8 qubits need a gigabyte; `density_matrix_bytes` lets callers refuse what does not fit.
"""

from __future__ import annotations

import functools
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
    """Return an upper bound on the bytes held for `n_samples` density matrices of `n_qubits` during a step.

    qnas's engine holds two real buffers (16 x 4^n bytes a sample); qiskit-aer's complex
    density matrices and its workspace take up to twice that (32 x 4^n), the bound given.
    """
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
    matrix product per step, in the Pauli basis (torch, float64, on the CPU).
    """
    angles_of = torch.as_tensor(values, dtype=torch.float64)
    prefixes, rest = _split_prefixes(program, n)
    # Each qubit's steps before its first multi-qubit step act on a one-qubit state per sample
    # (4 numbers, not 4^n); the samples' product states start the full evolution. An encoder
    # is mostly such steps: at 8 qubits they were 65 of 92 steps.
    qubit_vectors = [_one_qubit_vectors(prefixes[q], angles_of) for q in range(n)]
    state = _PauliVectors(values.shape[0], n, qubit_vectors)
    for step in rest:
        if step.kind == "rz":
            state.rz(step, angles_of)
        else:
            state.channel(step.qubits, torch.from_numpy(pauli_transfer_matrix(step.tensor)))
    probs = state.probabilities().numpy()
    n_samples = values.shape[0]
    keep = [1 + n - 1 - q for q in reversed(measured)]
    drop = tuple(a for a in range(1, n + 1) if a not in keep)
    probs = probs.sum(axis=drop) if drop else probs
    remaining = sorted(keep)
    probs = np.moveaxis(probs, [remaining.index(a) + 1 for a in keep], list(range(1, len(keep) + 1)))
    return np.ascontiguousarray(probs).reshape(n_samples, 2 ** len(measured))


# I, X, Y, Z: a density matrix is (1/2^n) sum_P c_P P over Pauli strings P, with real c_P.
_PAULIS = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128
)


@functools.cache
def _pauli_strings(k: int) -> np.ndarray:
    """The 4^k Pauli strings of k qubits, (4^k, 2^k, 2^k): index (i_{k-1} ... i_0), i_0 on qubits[0]."""
    out = _PAULIS
    for _ in range(k - 1):
        d = out.shape[1]
        out = np.einsum("iab,jcd->ijacbd", out, _PAULIS).reshape(len(out) * 4, 2 * d, 2 * d)
    return out


def pauli_transfer_matrix(tensor: np.ndarray) -> np.ndarray:
    """R[i, j] = Tr(P_i Lambda(P_j)) / 2^k of the channel T (see `Step`): real, as Lambda keeps Hermiticity.

    The Pauli transfer matrix (e.g. Greenbaum, arXiv 1509.02921): in the Pauli basis a
    channel acts on the real coefficients c_P by R, so the engine multiplies real numbers
    (a quarter of the arithmetic of complex ones, half the memory).
    """
    d = tensor.shape[0]
    strings = _pauli_strings(d.bit_length() - 1)
    images = np.einsum("abce,jce->jab", tensor, strings)  # Lambda(P_j)
    return np.ascontiguousarray(np.einsum("iba,jab->ij", strings, images).real / d)


def _split_prefixes(program: list[Step], n: int) -> tuple[list[list[Step]], list[Step]]:
    """Return (each qubit's one-qubit steps before its first multi-qubit step, the other steps in order).

    A qubit's prefix commutes with every step before it on other qubits, so it may run first.
    """
    prefixes: list[list[Step]] = [[] for _ in range(n)]
    rest: list[Step] = []
    entangled: set[int] = set()
    for step in program:
        if len(step.qubits) == 1 and step.qubits[0] not in entangled:
            prefixes[step.qubits[0]].append(step)
        else:
            entangled.update(step.qubits)
            rest.append(step)
    return prefixes, rest


def _one_qubit_vectors(steps: list[Step], values: torch.Tensor) -> torch.Tensor:
    """(N, 4) Pauli coefficients of one qubit after `steps` from |0>, per sample."""
    vectors = torch.zeros((values.shape[0], 4), dtype=torch.float64)
    vectors[:, 0] = vectors[:, 3] = 1.0
    for step in steps:
        if step.kind == "rz":
            _rotate_xy(vectors[:, 1], vectors[:, 2], *_rotation(step, values))
        else:
            vectors = vectors @ torch.from_numpy(pauli_transfer_matrix(step.tensor)).T
    return vectors


def _rotate_xy(
    x: torch.Tensor,
    y: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    scratch: torch.Tensor | None = None,
) -> None:
    """In place: RZ(a) maps X to cos(a) X + sin(a) Y and Y to cos(a) Y - sin(a) X, so (c_X, c_Y) rotate by a.

    `scratch` (x's shape) holds x's old values; without one a copy is allocated.
    """
    x_before = x.clone() if scratch is None else scratch.copy_(x)
    x.mul_(cos).addcmul_(y, sin, value=-1.0)
    y.mul_(cos).addcmul_(x_before, sin)


def _rotation(step: Step, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos a, sin a) per sample of a Z rotation's angle a = values[:, columns] @ coeffs + offset."""
    angle = values[:, torch.as_tensor(step.columns)] @ torch.as_tensor(step.coeffs) + step.offset
    return torch.cos(angle), torch.sin(angle)


# A block of axes inside the state is multiplied in place (a batched product) when at
# least this many coefficients follow it; below that, moving it last and one product is faster.
_MIN_INNER = 16


def _in_order(transfer: torch.Tensor, factors: list[int], order: list[int]) -> torch.Tensor:
    """The transfer matrix over qubits `factors` (most significant first) with its factors in `order`."""
    if factors == order:
        return transfer
    k = len(factors)
    perm = [factors.index(q) for q in order]
    return transfer.reshape((4,) * (2 * k)).permute(perm + [k + p for p in perm]).reshape(transfer.shape)


class _PauliVectors:
    """N density matrices of n qubits as real Pauli coefficients (N, 4, ..., 4), axes in the last step's order.

    Axis i + 1 holds qubit order[i] (I, X, Y, Z); the sample axis stays first. A channel
    wants its qubits' axes last: then its transfer matrix acts by one matrix product on
    the right. Moving axes there is one copy, skipped when the last step left them so.
    Two buffers of the batch's size take turns as a step's input and output: a fresh
    array of 50 MB (8 qubits, 100 samples) costs more in page faults than the product
    itself, so no step allocates one.
    """

    def __init__(self, batch: int, n: int, qubit_vectors: list[torch.Tensor]) -> None:
        """Start from the product of each qubit's (batch, 4) coefficients (qubit q's at qubit_vectors[q])."""
        self.n = n
        self.shape = (batch,) + (4,) * n
        self.order = list(range(n - 1, -1, -1))  # qubit 0 last
        product = qubit_vectors[self.order[0]]
        for q in self.order[1:]:
            product = (product[:, :, None] * qubit_vectors[q][:, None, :]).reshape(batch, -1)
        self.data = product.reshape(self.shape)
        self.spare = torch.empty_like(self.data)

    def _move_last(self, wanted: list[int]) -> None:
        k = len(wanted)
        if self.order[-k:] != wanted:
            new = [q for q in self.order if q not in wanted] + wanted
            self.spare.copy_(self.data.permute([0] + [1 + self.order.index(q) for q in new]))
            self.data, self.spare = self.spare, self.data
            self.order = new

    def channel(self, qubits: tuple[int, ...], transfer: torch.Tensor) -> None:
        wanted = list(reversed(qubits))  # the transfer matrix's factors, most significant first
        k = len(wanted)
        start = min(self.order.index(q) for q in wanted)
        block = self.order[start : start + k]
        inner = 4 ** (self.n - start - k)  # the axes after the block
        if set(block) == set(wanted) and (inner == 1 or inner >= _MIN_INNER):
            # The qubits' axes already sit side by side: multiply in place, with the matrix's
            # factors put in the block's order; no copy of the state moves them (a chain's
            # neighbours mostly do: on a line of qubits half the copies go).
            matrix = _in_order(transfer, wanted, block)
            d = matrix.shape[0]
            if inner == 1:
                torch.matmul(self.data.view(-1, d), matrix.T, out=self.spare.view(-1, d))
            else:
                torch.matmul(matrix, self.data.view(-1, d, inner), out=self.spare.view(-1, d, inner))
        else:
            self._move_last(wanted)
            d = transfer.shape[0]
            torch.matmul(self.data.view(-1, d), transfer.T, out=self.spare.view(-1, d))
        self.data, self.spare = self.spare, self.data

    def rz(self, step: Step, values: torch.Tensor) -> None:
        """Rotate each sample's (c_X, c_Y) of the step's qubit by its angle (`_rotate_xy`)."""
        (q,) = step.qubits
        shape = [self.shape[0]] + [1] * (self.n - 1)
        cos, sin = (t.reshape(shape) for t in _rotation(step, values))
        axis = 1 + self.order.index(q)
        # The spare buffer is free between channels: a quarter of it holds c_X's old values.
        _rotate_xy(self.data.select(axis, 1), self.data.select(axis, 2), cos, sin, self.spare.select(axis, 1))

    def probabilities(self) -> torch.Tensor:
        """(N, 2, ..., 2) outcome probabilities, qubit 0 last: p(x) = sum over I/Z strings of c_S (-1)^(x.S) / 2^n."""
        self._move_last(list(range(self.n - 1, -1, -1)))
        diagonal = self.data
        for axis in range(1, self.n + 1):
            diagonal = diagonal.index_select(axis, torch.tensor([0, 3]))
        # Per qubit: p(0) = (c_I + c_Z) / 2, p(1) = (c_I - c_Z) / 2.
        half = torch.tensor([[0.5, 0.5], [0.5, -0.5]], dtype=torch.float64)
        for axis in range(1, self.n + 1):
            diagonal = torch.movedim(torch.tensordot(diagonal, half, dims=([axis], [1])), -1, axis)
        return diagonal
