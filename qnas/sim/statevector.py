"""Batched statevector simulation in torch.

A state is a (batch, 2**n) complex tensor; wire 0 is the most significant bit of the
index (qiskit's qubit 0 is the least significant: `qnas.qiskit_bridge` handles the
difference). A circuit is a sequence of `Layer`s: one gate kind applied at several
positions, with its angles taken from the trainable weights, from the input features of
each sample, or absent for fixed gates. Building all matrices of a layer in one call and
applying each gate as a single broadcast matmul keeps the number of torch operations,
which is what costs time at these sizes, small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch

from qnas.sim.fusion import MAX_BLOCK_WIRES, Block, Pending, WireState, kron2
from qnas.sim.gates import gate_spec

Source = Literal["weight", "input", "fixed"]
_SWAP_ORDER = [0, 2, 1, 3]


@dataclass(frozen=True)
class Layer:
    """One gate kind at several positions.

    wires[i] are the wires of position i; index[i] are its angles' indices into the
    weight vector (source "weight") or into each sample's features (source "input").
    """

    gate: str
    wires: tuple[tuple[int, ...], ...]
    source: Source = "fixed"
    index: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        spec = gate_spec(self.gate)
        for w in self.wires:
            if len(w) != spec.n_qubits or len(set(w)) != len(w):
                raise ValueError(f"gate {self.gate} needs {spec.n_qubits} distinct wires, got {w}")
        if self.source == "fixed":
            if spec.n_params:
                raise ValueError(f"gate {self.gate} takes {spec.n_params} angles; source 'fixed' gives none")
        elif len(self.index) != len(self.wires) or any(len(i) != spec.n_params for i in self.index):
            raise ValueError(f"gate {self.gate}: need {spec.n_params} angle indices per position")

    @property
    def n_qubits(self) -> int:
        return gate_spec(self.gate).n_qubits


@lru_cache(maxsize=1024)
def _index_tensor(index: tuple[tuple[int, ...], ...], device: torch.device) -> torch.Tensor:
    """A layer's angle indices as a tensor, built once per layer and device."""
    return torch.tensor(index, dtype=torch.long, device=device)


def _matrices(
    layer: Layer, weights: torch.Tensor | None, inputs: torch.Tensor | None, real_dtype
) -> torch.Tensor:
    """Matrices of all positions: (k, d, d), or (B, k, d, d) for input-dependent angles."""
    spec = gate_spec(layer.gate)
    k = len(layer.wires)
    if layer.source == "fixed":
        device = weights.device if weights is not None else (inputs.device if inputs is not None else None)
        return spec.matrix(torch.zeros(k, 0, dtype=real_dtype, device=device))
    if layer.source == "weight":
        if weights is None:
            raise ValueError(f"layer {layer.gate} needs weights")
        return spec.matrix(weights[_index_tensor(layer.index, weights.device)].to(real_dtype))
    if inputs is None:
        raise ValueError(f"layer {layer.gate} needs input features")
    return spec.matrix(inputs[:, _index_tensor(layer.index, inputs.device)].to(real_dtype))


def apply_gate(state: torch.Tensor, matrix: torch.Tensor, wires: Sequence[int], n_wires: int) -> torch.Tensor:
    """Return `state` (B, 2**n) after a 1- or 2-qubit `matrix` ((d, d) or (B, d, d))."""
    b = state.shape[0]
    batched = matrix.dim() == 3
    if len(wires) == 1:
        (w,) = wires
        view = state.view(b, 2**w, 2, 2 ** (n_wires - w - 1))
        m = matrix[:, None] if batched else matrix
        return torch.matmul(m, view).reshape(b, -1)
    a, c = wires
    if a > c:
        a, c = c, a
        matrix = matrix[..., _SWAP_ORDER, :][..., :, _SWAP_ORDER]
    if c == a + 1:
        view = state.view(b, 2**a, 4, 2 ** (n_wires - a - 2))
        m = matrix[:, None] if batched else matrix
        return torch.matmul(m, view).reshape(b, -1)
    view = state.view(b, 2**a, 2, 2 ** (c - a - 1), 2, 2 ** (n_wires - c - 1))
    if batched:
        out = torch.einsum("xabcd,xlcmdr->xlambr", matrix.view(b, 2, 2, 2, 2), view)
    else:
        out = torch.einsum("abcd,xlcmdr->xlambr", matrix.view(2, 2, 2, 2), view)
    return out.reshape(b, -1)


def _check_wires(layer: Layer, n_wires: int) -> None:
    if any(max(w) >= n_wires for w in layer.wires):
        raise ValueError(f"layer {layer.gate} uses wires {layer.wires} beyond n_wires={n_wires}")


def _distinct_runs(wires: Sequence[tuple[int, ...]]) -> list[slice]:
    """Split positions into consecutive runs whose wires are all distinct (usually one run)."""
    runs, start, seen = [], 0, set()
    for i, w in enumerate(wires):
        if w[0] in seen:
            runs.append(slice(start, i))
            start, seen = i, set()
        seen.add(w[0])
    runs.append(slice(start, len(wires)))
    return runs


def run(
    layers: Sequence[Layer],
    n_wires: int,
    weights: torch.Tensor | None = None,
    inputs: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Return the final states (B, 2**n) of the circuit applied to `state` (default |0>).

    B is the number of input samples (1 without inputs), or the number of given states.
    Differentiable in `weights` and `inputs`. 1-qubit gates are fused per wire and folded
    into the next 2-qubit gate, and runs of gates shared by the batch into one matrix on
    up to 4 wires (see `qnas.sim.fusion`), so the state is touched a few times per circuit.
    """
    real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    batch = max(t.shape[0] if t is not None else 1 for t in (inputs, state))
    device = next((t.device for t in (state, inputs, weights) if t is not None), None)
    pending = Pending(n_wires)
    block = Block(min(MAX_BLOCK_WIRES, n_wires))
    wstate = None if state is None else WireState.from_batch_first(state.to(dtype), n_wires, batch)
    for layer in layers:
        _check_wires(layer, n_wires)
        mats = _matrices(layer, weights, inputs, real_dtype)
        if layer.n_qubits == 1:
            for part in _distinct_runs(layer.wires):
                pending.push(mats[..., part, :, :], [w[0] for w in layer.wires[part]])
            continue
        for m, wires in zip(mats.unbind(-3), layer.wires, strict=True):
            if wstate is None:  # first 2-qubit gate on |0>: the state so far is a product state
                wstate = WireState.product(pending.take_all(), n_wires, batch, dtype, device)
            else:
                pa, pc = pending.take(wires[0]), pending.take(wires[1])
                if pa is not None or pc is not None:
                    m = m @ kron2(pa, pc)
            if m.dim() == 2 and block.fits(wires):
                block.add(m, wires)
                continue
            block.flush(wstate)
            if m.dim() == 2:
                block.add(m, wires)
            else:
                wstate.apply(m, wires)
    if wstate is None:
        return WireState.product(pending.take_all(), n_wires, batch, dtype, device).to_batch_first()
    block.flush(wstate)
    for w in range(n_wires):
        p = pending.take(w)
        if p is not None:
            wstate.apply(p, (w,))
    return wstate.to_batch_first()


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """|amplitude|^2, (B, 2**n)."""
    return torch.view_as_real(state).square().sum(-1)


@lru_cache(maxsize=64)
def _z_signs(n_wires: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(2**n, n): the eigenvalue (+1 or -1) of Z_w on each basis state."""
    bits = (torch.arange(2**n_wires)[:, None] >> torch.arange(n_wires - 1, -1, -1)) & 1
    return (1 - 2 * bits).to(dtype=dtype, device=device)


def expval_z(state: torch.Tensor, n_wires: int) -> torch.Tensor:
    """<Z_w> for every wire w: (B, n_wires), as one matmul of the probabilities."""
    probs = probabilities(state)
    return probs @ _z_signs(n_wires, probs.dtype, probs.device)


_PAULI_1Q = {
    "I": torch.tensor([[1, 0], [0, 1]], dtype=torch.complex128),
    "X": torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
    "Y": torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
    "Z": torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
}


def expval_pauli_sum(state: torch.Tensor, paulis: Sequence[str], coeffs: Sequence[float]) -> torch.Tensor:
    """<psi| sum_j c_j P_j |psi> for each state: (B,).

    `paulis[j]` has one letter per wire, wire 0 first (the reverse of qiskit's label).
    """
    n_wires = len(paulis[0])
    total = torch.zeros(state.shape[0], dtype=state.real.dtype, device=state.device)
    for label, coeff in zip(paulis, coeffs, strict=True):
        phi = state
        for w, letter in enumerate(label):
            if letter != "I":
                phi = apply_gate(phi, _PAULI_1Q[letter].to(state.dtype).to(state.device), (w,), n_wires)
        total = total + coeff * (state.conj() * phi).sum(dim=1).real
    return total
