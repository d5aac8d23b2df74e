"""The machinery behind `qnas.sim.run`: a batch-last state and fused 1-qubit gates.

Two things make a training step fast at the sizes qnas uses (a few to ~12 qubits,
batches of hundreds):

* The state is kept as (2**n, B), batch last, so a gate with one matrix for the whole
  batch (trainable or fixed angles) is a plain matmul over contiguous rows: no copies,
  and the inner dimension is always >= B. Wires are laid out in a tracked physical order;
  a 2-qubit gate on non-neighbouring wires moves one wire next to the other once and the
  layout stays that way, instead of a permute there and back per gate. `to_batch_first`
  returns the usual (B, 2**n) in logical order (one copy, needed anyway for the
  transpose).
* 1-qubit gates are never applied on their own while avoidable: `Pending` multiplies
  them per wire into one 2x2 matrix (per sample when their angles come from inputs).
  Before the first 2-qubit gate the state is the product of |0> under those matrices and
  is built directly as a Kronecker product of their first columns; later, the pending
  matrices on a 2-qubit gate's wires are folded into that gate as M @ kron(Pa, Pc).
  A 4x4 matrix costs about what a 2x2 does, so every state pass is a 2-qubit gate.
* Consecutive gates shared by the batch are multiplied by `Block` into one matrix on up
  to `MAX_BLOCK_WIRES` wires (small matrices, cheap to multiply), so that several
  2-qubit gates cost one pass over the state, forward and backward.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch


def _eye2(like: torch.Tensor) -> torch.Tensor:
    return torch.eye(2, dtype=like.dtype, device=like.device)


def kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kronecker product of square matrices with broadcast leading dims."""
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    d = a.shape[-1] * b.shape[-1]
    return out.reshape(*out.shape[:-4], d, d)


def kron2(pa: torch.Tensor | None, pc: torch.Tensor | None) -> torch.Tensor:
    """kron(Pa, Pc) of 2x2 matrices; None is the identity."""
    like = pa if pa is not None else pc
    return kron(pa if pa is not None else _eye2(like), pc if pc is not None else _eye2(like))


def permute_qubits(matrix: torch.Tensor, perm: Sequence[int]) -> torch.Tensor:
    """The same operator with its qubits reordered: new qubit i is old qubit perm[i]."""
    k, batch = len(perm), matrix.shape[:-2]
    nb = len(batch)
    dims = [*range(nb), *(nb + p for p in perm), *(nb + k + p for p in perm)]
    return matrix.reshape(*batch, *(2,) * (2 * k)).permute(dims).reshape(*batch, 2**k, 2**k)


def embed(matrix: torch.Tensor, positions: Sequence[int], k: int) -> torch.Tensor:
    """A matrix on qubits `positions` of a k-qubit register, as a 2**k matrix."""
    m = len(positions)
    if m < k:
        matrix = kron(matrix, torch.eye(2 ** (k - m), dtype=matrix.dtype, device=matrix.device))
    current = [*positions, *(q for q in range(k) if q not in positions)]
    if current != list(range(k)):
        matrix = permute_qubits(matrix, [current.index(q) for q in range(k)])
    return matrix


@lru_cache(maxsize=256)
def _fill_index(wires: tuple[int, ...], n_wires: int, device: torch.device) -> torch.Tensor:
    """For each wire, its position in `wires`, or len(wires) (the identity slot) if absent."""
    where = {w: i for i, w in enumerate(wires)}
    return torch.tensor([where.get(w, len(wires)) for w in range(n_wires)], device=device)


class Pending:
    """Products of the 1-qubit gates not yet applied, one 2x2 matrix per wire.

    Held either stacked, (..., n, 2, 2) with identities on untouched wires, which makes a
    whole layer one matmul, or as a list of rows, which makes taking one wire free; the
    representation switches (one op) when the use does.
    """

    def __init__(self, n_wires: int) -> None:
        self.n_wires = n_wires
        self.stack: torch.Tensor | None = None
        self.rows: list[torch.Tensor | None] | None = None
        self.active: set[int] = set()

    def push(self, mats: torch.Tensor, wires: Sequence[int]) -> None:
        """Left-multiply the matrices `mats` (..., k, 2, 2) of k distinct `wires`."""
        if tuple(wires) == tuple(range(self.n_wires)):
            full = mats
        else:
            eye = _eye2(mats).expand(*mats.shape[:-3], 1, 2, 2)
            index = _fill_index(tuple(wires), self.n_wires, mats.device)
            full = torch.cat([mats, eye], dim=-3).index_select(-3, index)
        stack = self._stacked()
        self.stack = full if stack is None else full @ stack
        self.active.update(wires)

    def take(self, wire: int) -> torch.Tensor | None:
        """The pending matrix of `wire` (None if identity); the wire becomes identity."""
        if wire not in self.active:
            return None
        if self.rows is None:
            self.rows = list(self.stack.unbind(-3))
            self.stack = None
        self.active.discard(wire)
        row, self.rows[wire] = self.rows[wire], None
        return row

    def take_all(self) -> torch.Tensor | None:
        """All pending matrices, stacked (..., n, 2, 2), or None if all are identities."""
        stack = self._stacked() if self.active else None
        self.stack, self.rows, self.active = None, None, set()
        return stack

    def _stacked(self) -> torch.Tensor | None:
        if self.rows is not None:
            like = next(r for r in self.rows if r is not None) if self.active else None
            if like is None:
                self.stack = None
            else:
                shape = torch.broadcast_shapes(*(r.shape for r in self.rows if r is not None))
                eye = _eye2(like).expand(shape)
                self.stack = torch.stack([eye if r is None else r.expand(shape) for r in self.rows], -3)
            self.rows = None
        return self.stack


class WireState:
    """A batch of states stored as (2**n, B) with the wires in a tracked physical order."""

    def __init__(self, psi: torch.Tensor, n_wires: int, order: list[int] | None = None) -> None:
        self.psi = psi
        self.n_wires = n_wires
        self.order = order if order is not None else list(range(n_wires))  # physical axis -> wire

    @classmethod
    def from_batch_first(cls, state: torch.Tensor, n_wires: int, batch: int) -> WireState:
        return cls(state.expand(batch, -1).t().contiguous(), n_wires)

    @classmethod
    def product(cls, pending: torch.Tensor | None, n_wires: int, batch: int, dtype, device) -> WireState:
        """|0...0> under the 1-qubit matrices `pending` (..., n, 2, 2): a Kronecker product of
        their first columns, built directly instead of by gate application."""
        if pending is None:
            psi = torch.zeros(2**n_wires, batch, dtype=dtype, device=device)
            psi[0] = 1
            return cls(psi, n_wires)
        cols = pending[..., 0]  # (n, 2) or (B, n, 2)
        # (n, 2, B), contiguous so that the products below come out batch-last too
        cols = cols[..., None] if cols.dim() == 2 else cols.permute(1, 2, 0).contiguous()
        psi = cols[0]
        for w in range(1, n_wires):
            psi = (psi[:, None, :] * cols[w][None]).reshape(-1, psi.shape[-1])
        return cls(psi.expand(-1, batch).contiguous(), n_wires)

    def apply(self, matrix: torch.Tensor, wires: Sequence[int]) -> None:
        """Apply a matrix on `wires`, (d, d) for all samples or (B, d, d) per sample."""
        k = len(wires)
        start = min(self.order.index(w) for w in wires)
        here = self.order[start : start + k]
        if set(here) != set(wires):
            self._gather(wires)
            start = self.order.index(wires[0])
        elif here != list(wires):  # neighbours in another order: reorder the matrix, not the state
            matrix = permute_qubits(matrix, [list(wires).index(w) for w in here])
        self._apply_at(matrix, start, 2**k)

    def _apply_at(self, matrix: torch.Tensor, pos: int, d: int) -> None:
        """Apply a d x d matrix on the physical axes starting at `pos`."""
        batch = self.psi.shape[-1]
        view = self.psi.view(2**pos, d, -1)
        if matrix.dim() == 2:
            # bmm on the expanded matrix, not matmul: with autograd on, matmul folds the
            # batch into one mm through a transposed copy of the state, forward and backward.
            out = torch.bmm(matrix.expand(view.shape[0], d, d), view)
        else:
            out = torch.einsum("bij,ljrb->lirb", matrix, view.view(2**pos, d, -1, batch))
        self.psi = out.reshape(-1, batch).contiguous()  # einsum may return a permuted layout

    def _gather(self, wires: Sequence[int]) -> None:
        """Permute the state (one copy) so that `wires` are neighbours, in their given order,
        where the first of them was; the layout then stays until another gather."""
        rest = [w for w in self.order if w not in wires]
        at = min(self.order.index(w) for w in wires)
        at -= sum(1 for w in self.order[:at] if w in wires)
        order = [*rest[:at], *wires, *rest[at:]]
        perm = [self.order.index(w) for w in order]
        n, batch = self.n_wires, self.psi.shape[-1]
        self.psi = self.psi.view(*(2,) * n, batch).permute(*perm, n).reshape(-1, batch)
        self.order = order

    def to_batch_first(self) -> torch.Tensor:
        """(B, 2**n) with wire 0 the most significant bit."""
        n, batch = self.n_wires, self.psi.shape[-1]
        perm = [self.order.index(w) for w in range(n)]
        return self.psi.view(*(2,) * n, batch).permute(n, *perm).reshape(batch, -1)


# A matrix on up to this many wires costs one pass over the state, about what a single
# 2-qubit gate does (measured at 10 qubits, batch 256): so runs of gates shared by the
# batch are multiplied into one matrix first.
MAX_BLOCK_WIRES = 4


class Block:
    """Consecutive gates shared by the whole batch, multiplied into one matrix."""

    def __init__(self, max_wires: int) -> None:
        self.max_wires = max_wires
        self.wires: list[int] = []
        self.matrix: torch.Tensor | None = None

    def fits(self, wires: Sequence[int]) -> bool:
        return len(set(self.wires).union(wires)) <= self.max_wires

    def add(self, matrix: torch.Tensor, wires: Sequence[int]) -> None:
        """Append a gate (its (d, d) matrix on `wires`); the caller checks `fits` first."""
        if self.matrix is None:
            self.wires, self.matrix = list(wires), matrix
            return
        new = [w for w in wires if w not in self.wires]
        if new:
            eye = torch.eye(2 ** len(new), dtype=matrix.dtype, device=matrix.device)
            self.matrix = kron(self.matrix, eye)
            self.wires += new
        first, *others = (self.wires.index(w) for w in wires)
        if others == list(range(first + 1, first + len(wires))):
            # neighbours in order: apply to the block's rows as to a state (fewer ops than embed)
            d = matrix.shape[-1]
            rows = self.matrix.view(2**first, d, -1)
            self.matrix = torch.bmm(matrix.expand(rows.shape[0], d, d), rows).view(self.matrix.shape)
        else:
            k = len(self.wires)
            self.matrix = embed(matrix, [first, *others], k) @ self.matrix

    def flush(self, state: WireState) -> None:
        if self.matrix is not None:
            state.apply(self.matrix, self.wires)
        self.wires, self.matrix = [], None
