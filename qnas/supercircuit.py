"""The SuperCircuit: one set of weights that every subcircuit of a design space shares.

QuantumNAS (Wang et al., HPCA 2022): each gate position of every block owns its angles;
a subcircuit is the SuperCircuit with fewer blocks and narrower (front-shared) layers, and
it reads its angles from the same positions. A `Subcircuit` is therefore a view: its
layers index into the shared weight vector and copy nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from qiskit import QuantumCircuit
from torch import nn

from qnas.qiskit_bridge import to_qiskit
from qnas.sim import Layer, gate_spec
from qnas.space import DesignSpace


@dataclass
class Subcircuit:
    """A subcircuit of a SuperCircuit: active layers reading the shared weights."""

    genes: tuple[int, ...]
    n_wires: int
    layers: list[Layer]
    weights: torch.Tensor
    # Weight indices of the task's classical head (Task.n_head_params), read after measurement.
    head: tuple[int, ...] = ()

    def without_inputs(self) -> Subcircuit:
        """The subcircuit without the layers that read input features (its encoder, when it carries one)."""
        return replace(self, layers=[ly for ly in self.layers if ly.source != "input"])

    def parameter_indices(self) -> list[int]:
        """Sorted weight indices it trains: the angles the active layers read, then the task's head."""
        angles = {i for ly in self.layers if ly.source == "weight" for ix in ly.index for i in ix}
        return sorted(angles) + list(self.head)

    @property
    def n_params(self) -> int:
        return len(self.parameter_indices())

    def digest(self, *context: object) -> str:
        """Return the sha256 of what defines this circuit's state: `context`, genes and the angles it reads.

        Not of its OpenQASM text: qiskit writes the terms of a parameter expression in an
        order that changes from one process to the next (p(0.5*p2 + 0.5*p1) or
        p(0.5*p1 + 0.5*p2)), so the text of the very same circuit differs between runs.
        """
        digest = hashlib.sha256(json.dumps([*context, list(self.genes)], sort_keys=True).encode())
        digest.update(self.weights.detach()[self.parameter_indices()].double().cpu().numpy().tobytes())
        return digest.hexdigest()

    def to_qiskit(
        self, bound: bool = True, encoder: Sequence[Layer] = (), n_inputs: int = 0
    ) -> QuantumCircuit:
        """Return the equivalent QuantumCircuit, weights bound or free, after an optional encoder."""
        weights = self.weights.detach() if bound else None
        return to_qiskit([*encoder, *self.layers], self.n_wires, weights=weights, n_inputs=n_inputs)

    def n_gates(self) -> dict[str, int]:
        """Number of 1- and 2-qubit gates of the logical circuit."""
        counts = {"1q": 0, "2q": 0}
        for ly in self.layers:
            counts["2q" if ly.n_qubits == 2 else "1q"] += len(ly.wires)
        return counts


class SuperCircuit(nn.Module):
    """The largest circuit of a design space on `n_wires`, with one flat weight vector."""

    def __init__(
        self,
        space: DesignSpace,
        n_wires: int,
        max_blocks: int | None = None,
        seed: int = 0,
        encoders: Sequence[Sequence[Layer]] | None = None,
        head: torch.Tensor | None = None,
        reupload: Sequence[Layer] | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.n_wires = n_wires
        self.max_blocks = max_blocks or space.max_blocks
        # With `encoders` (the encoder as a gene), the gene before the block count picks one,
        # and every subcircuit starts with its encoder: the SuperCircuit is trained with the
        # encoder sampled like any other gene, so inherited weights fit each encoder.
        self.encoders = [list(e) for e in encoders] if encoders else None
        # Data re-uploading (Pérez-Salinas et al., Quantum 2020): the encoder again before
        # every block after the first, so the circuit is a function of the data of higher
        # degree than one encoding allows. With the encoder as a gene, the chosen one.
        self.reupload = None if reupload is None else list(reupload)
        self.gene_choices = self._with_encoder(
            space.gene_choices(n_wires, self.max_blocks), list(range(len(self.encoders or [])))
        )
        # index[b][l][p] = weight indices of position p of layer l in block b
        self._index: list[list[list[tuple[int, ...]]]] = []
        self._positions = space.layer_positions(n_wires)
        count = 0
        for _ in range(self.max_blocks):
            block = []
            for ly, pos in zip(space.layers, self._positions, strict=True):
                n_par = gate_spec(ly.gate).n_params
                block.append(
                    [tuple(range(count + p * n_par, count + (p + 1) * n_par)) for p in range(len(pos))]
                )
                count += n_par * len(pos)
            self._index.append(block)
        gen = torch.Generator().manual_seed(seed)
        # Uniform in [-pi, pi), as torchquantum initialises its rotation gates.
        angles = (torch.rand(count, generator=gen, dtype=torch.float64) * 2 - 1) * np.pi
        # The task's classical head (Task.n_head_params) follows the angles, shared by every subcircuit.
        head = torch.zeros(0, dtype=torch.float64) if head is None else head.detach().to(torch.float64)
        self.head = tuple(range(count, count + len(head)))
        self.weights = nn.Parameter(torch.cat([angles, head]))

    @property
    def n_layers(self) -> int:
        return len(self.space.layers)

    def _with_encoder(self, genes: list, encoder: object) -> list:
        """Space genes with the encoder gene put before the block count (when the encoder is a gene)."""
        return genes if self.encoders is None else [*genes[:-1], encoder, genes[-1]]

    def _split(self, genes: Sequence[int]) -> tuple[tuple[int, ...], int | None]:
        """Return (the design space's genes, the encoder gene or None)."""
        genes = tuple(int(g) for g in genes)
        if self.encoders is None:
            return genes, None
        if len(genes) != len(self.gene_choices):
            raise ValueError(
                f"genome needs {len(self.gene_choices)} genes (the encoder's included), got {len(genes)}"
            )
        return (*genes[:-2], genes[-1]), genes[-2]

    def validate(self, genes: Sequence[int]) -> tuple[int, ...]:
        """Return genes as a tuple if legal for this SuperCircuit, else raise naming the bad gene."""
        space_genes, encoder = self._split(genes)
        space_genes = self.space.validate(space_genes, self.n_wires, self.max_blocks)
        if encoder is not None and encoder not in range(len(self.encoders)):
            raise ValueError(
                f"encoder gene = {encoder} not allowed; allowed: {list(range(len(self.encoders)))}"
            )
        return tuple(self._with_encoder(list(space_genes), encoder))

    def fixed_blocks(self, n_blocks: int, encoder: int = 0) -> tuple[int, ...]:
        """The genome of `n_blocks` full-width blocks (a human design), with the first encoder when it is a gene."""
        genes = self.space.fixed_blocks(n_blocks, self.n_wires, self.max_blocks)
        return tuple(self._with_encoder(list(genes), encoder))

    def subcircuit(self, genes: Sequence[int]) -> Subcircuit:
        """Return the view of the subcircuit `genes` (widths per layer per block, [the encoder,] then blocks)."""
        full = self.validate(genes)
        genes, encoder = self._split(full)
        n_blocks = genes[-1]
        layers = [] if encoder is None else list(self.encoders[encoder])
        for b in range(n_blocks):
            if b and self.reupload is not None:
                layers.extend(self.reupload if encoder is None else self.encoders[encoder])
            for li, ly in enumerate(self.space.layers):
                width = genes[b * self.n_layers + li]
                wires = tuple(self._positions[li][:width])
                if gate_spec(ly.gate).n_params:
                    layers.append(Layer(ly.gate, wires, "weight", tuple(self._index[b][li][:width])))
                else:
                    layers.append(Layer(ly.gate, wires))
        return Subcircuit(full, self.n_wires, layers, self.weights, self.head)

    def largest(self) -> tuple[int, ...]:
        """The genome of the whole SuperCircuit (with the first encoder when it is a gene)."""
        return tuple(self._with_encoder(list(self.space.largest(self.n_wires, self.max_blocks)), 0))

    def canonical(self, genes: Sequence[int]) -> tuple[int, ...]:
        """The genome with the widths of inactive blocks set to their largest value."""
        genes, encoder = self._split(self.validate(genes))
        genes = list(genes)
        start = genes[-1] * self.n_layers
        full = self.space.largest(self.n_wires, self.max_blocks)
        genes[start:-1] = full[start:-1]
        return tuple(self._with_encoder(genes, encoder))


class ArchSampler:
    """Draws the subcircuit to train at each SuperCircuit step.

    "uniform" draws every gene anew; "restricted" changes at most `limit_diff` genes from
    the previous sample (QuantumNAS's limit_diff), so consecutive steps train similar
    subcircuits and the shared weights settle; "sandwich" alternates the largest
    subcircuit with a restricted sample (after BigNAS's sandwich rule, Yu et al. 2020),
    which trains the largest circuit almost as well as alone at the smaller ones' expense.
    """

    STRATEGIES = ("uniform", "restricted", "sandwich")

    def __init__(
        self, gene_choices: list[list[int]], strategy: str = "restricted", limit_diff: int = 4, seed: int = 0
    ):
        if strategy not in self.STRATEGIES:
            raise ValueError(f"unknown sampler {strategy!r}; allowed: {', '.join(self.STRATEGIES)}")
        if limit_diff < 1:
            raise ValueError(f"limit_diff must be >= 1, got {limit_diff}")
        self.choices = gene_choices
        self.strategy = strategy
        self.limit_diff = limit_diff
        self.rng = np.random.default_rng(seed)
        self.previous: tuple[int, ...] | None = None
        self.step = 0

    def sample(self) -> tuple[int, ...]:
        self.step += 1
        if self.strategy == "sandwich" and self.step % 2 == 0:
            return tuple(c[-1] for c in self.choices)
        if self.strategy == "uniform" or self.previous is None:
            genes = [int(self.rng.choice(c)) for c in self.choices]
        else:
            genes = list(self.previous)
            n_change = int(self.rng.integers(1, self.limit_diff + 1))
            for i in self.rng.choice(len(genes), size=min(n_change, len(genes)), replace=False):
                genes[i] = int(self.rng.choice(self.choices[i]))
        self.previous = tuple(genes)
        return self.previous

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "previous": self.previous, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.previous = None if state["previous"] is None else tuple(state["previous"])
        self.step = state["step"]
