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
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch


def _eye2(like: torch.Tensor) -> torch.Tensor:
    return torch.eye(2, dtype=like.dtype, device=like.device)


def kron2(pa: torch.Tensor | None, pc: torch.Tensor | None) -> torch.Tensor:
    """kron(Pa, Pc) of 2x2 matrices with broadcast leading dims; None is the identity."""
    like = pa if pa is not None else pc
    pa = pa if pa is not None else _eye2(like)
    pc = pc if pc is not None else _eye2(like)
    out = pa[..., :, None, :, None] * pc[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], 4, 4)


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
        """Apply a 1- or 2-qubit matrix, (d, d) for all samples or (B, d, d) per sample."""
        if len(wires) == 1:
            self._apply_at(matrix, self.order.index(wires[0]), 2)
            return
        a, c = wires
        pa, pc = self.order.index(a), self.order.index(c)
        if pa == pc + 1:  # neighbours in the other order: reorder the matrix, not the state
            shape = matrix.shape[:-2]
            matrix = (
                matrix.reshape(*shape, 2, 2, 2, 2).transpose(-4, -3).transpose(-2, -1).reshape(*shape, 4, 4)
            )
            pa = pc
        elif pc != pa + 1:
            self._move_before(a, c)
            pa = self.order.index(a)
        self._apply_at(matrix, pa, 4)

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
        self.psi = out.reshape(-1, batch)

    def _move_before(self, a: int, c: int) -> None:
        """Permute the state so that wire a sits just before wire c (one copy)."""
        order = [w for w in self.order if w != a]
        order.insert(order.index(c), a)
        perm = [self.order.index(w) for w in order]
        n, batch = self.n_wires, self.psi.shape[-1]
        self.psi = self.psi.view(*(2,) * n, batch).permute(*perm, n).reshape(-1, batch)
        self.order = order

    def to_batch_first(self) -> torch.Tensor:
        """(B, 2**n) with wire 0 the most significant bit."""
        n, batch = self.n_wires, self.psi.shape[-1]
        perm = [self.order.index(w) for w in range(n)]
        return self.psi.view(*(2,) * n, batch).permute(n, *perm).reshape(batch, -1)
