"""The search genome: a qubit layout plus the design space's architecture genes (QuantumNAS)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Genome:
    """`layout[i]` is the physical qubit of logical qubit i; `arch` the design-space genes.

    An empty layout leaves the choice to qiskit's transpiler (its default, noise-aware
    layout), made anew for each candidate.
    """

    layout: tuple[int, ...]
    arch: tuple[int, ...]

    def params(self) -> dict[str, int]:
        """The genome as flat named integers (an Optuna trial's params)."""
        return {
            **{f"layout_{i}": q for i, q in enumerate(self.layout)},
            **{f"arch_{i}": g for i, g in enumerate(self.arch)},
        }

    @classmethod
    def from_params(cls, params: dict[str, int]) -> Genome:
        layout = [params[f"layout_{i}"] for i in range(sum(k.startswith("layout_") for k in params))]
        arch = [params[f"arch_{i}"] for i in range(sum(k.startswith("arch_") for k in params))]
        return cls(tuple(int(q) for q in layout), tuple(int(g) for g in arch))


@dataclass(frozen=True)
class GenomeSpace:
    """Legal genomes: distinct physical qubits for the layout, each arch gene from its choices.

    A fixed layout or architecture takes no part in sampling, mutation or crossover. With
    the device's `coupling` edges, layouts are drawn as connected groups of qubits and a
    mutated layout gene moves next to the others: on a 127-qubit device a uniformly drawn
    layout is scattered, and routing it spreads the circuit over dozens of qubits.
    `preferred_layouts` (the device's least error-prone qubit groups, see `best_layouts`)
    supply half the sampled layouts: on a 27-127 qubit device a connected group drawn at
    random often holds a qubit whose readout is near a coin flip. `layout_order` "random"
    assigns a drawn group's qubits to the logical qubits in random order; "path" along a
    walk through the group (`path_through`), so that logical neighbours, which chain and
    ring designs couple, are mostly physical neighbours: on fake_fez, 10 logical qubits of
    2 u3cu3 blocks, 80 two-qubit gates after routing instead of 124 (scripts/layout_order.py).
    """

    n_logical: int
    n_physical: int
    arch_choices: tuple[tuple[int, ...], ...]
    fixed_layout: tuple[int, ...] | None = None
    fixed_arch: tuple[int, ...] | None = None
    coupling: tuple[tuple[int, int], ...] = ()
    preferred_layouts: tuple[tuple[int, ...], ...] = ()
    layout_order: str = "random"

    def __post_init__(self) -> None:
        if self.n_logical > self.n_physical:
            raise ValueError(f"the circuit needs {self.n_logical} qubits; the device has {self.n_physical}")
        if self.layout_order not in ("random", "path"):
            raise ValueError(f"layout order {self.layout_order!r}; allowed: random, path")
        if self.fixed_layout:
            check_layout(self.fixed_layout, self.n_logical, self.n_physical)
        if self.fixed_arch is not None:
            if len(self.fixed_arch) != len(self.arch_choices):
                raise ValueError(
                    f"fixed arch needs {len(self.arch_choices)} genes, got {len(self.fixed_arch)}"
                )
            for i, (g, allowed) in enumerate(zip(self.fixed_arch, self.arch_choices, strict=True)):
                if g not in allowed:
                    raise ValueError(f"fixed arch gene {i} = {g} not allowed; allowed: {list(allowed)}")

    @property
    def n_layout_genes(self) -> int:
        """0 when qiskit chooses the layout, else one gene per logical qubit."""
        return 0 if self.fixed_layout == () else self.n_logical

    @functools.cached_property
    def neighbors(self) -> list[set[int]]:
        out: list[set[int]] = [set() for _ in range(self.n_physical)]
        for a, b in self.coupling:
            out[a].add(b)
            out[b].add(a)
        return out

    def qubit_near(self, others: Sequence[int], rng: np.random.Generator) -> int:
        """A random unused qubit coupled to one of `others` (any unused one without a coupling map)."""
        used = set(others)
        near = sorted({n for q in others for n in self.neighbors[q]} - used) if self.coupling else []
        return int(rng.choice(near if near else sorted(set(range(self.n_physical)) - used)))

    def sample(self, rng: np.random.Generator) -> Genome:
        """A random legal genome: uniform arch genes, a connected (or, without coupling, uniform) layout."""
        if self.fixed_layout is not None:
            layout = self.fixed_layout
        elif self.preferred_layouts and rng.random() < 0.5:
            group = self.preferred_layouts[int(rng.integers(len(self.preferred_layouts)))]
            layout = self._ordered(group, rng)
        elif self.coupling:
            chosen = [int(rng.integers(self.n_physical))]
            while len(chosen) < self.n_logical:
                chosen.append(self.qubit_near(chosen, rng))
            layout = self._ordered(chosen, rng)
        else:
            layout = tuple(int(q) for q in rng.choice(self.n_physical, self.n_logical, replace=False))
        arch = (
            self.fixed_arch
            if self.fixed_arch is not None
            else tuple(int(rng.choice(c)) for c in self.arch_choices)
        )
        return Genome(layout, arch)

    def _ordered(self, group: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        if self.layout_order == "path":
            return self.path_through(group, rng)
        return tuple(int(q) for q in rng.permutation(group))

    def path_through(self, group: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        """The group's qubits in the order of a depth-first walk through its couplings.

        The walk starts at a random qubit of the fewest couplings inside the group (an end,
        where the group is a path) and goes on to the neighbour with the fewest unvisited
        neighbours first (Warnsdorff's rule), so it follows a path through the group where
        one exists; where it must backtrack (a branch of a heavy-hex group), the next
        logical qubit is not coupled to the one before.
        """
        members = {int(q) for q in group}
        inside = {q: self.neighbors[q] & members for q in members}
        fewest = min(len(v) for v in inside.values())
        start = int(rng.choice(sorted(q for q in members if len(inside[q]) == fewest)))
        order: list[int] = []
        stack = [start]
        while stack:
            q = stack.pop()
            if q in order:
                continue
            order.append(q)
            unvisited = [p for p in inside[q] if p not in order]
            # Pushed last is popped first: the neighbour with the fewest ways on.
            stack += sorted(unvisited, key=lambda p: (-len(inside[p] - set(order)), -p))
        order += sorted(members - set(order))  # a group without couplings: the rest as they come
        return tuple(order)

    def repair(self, layout: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        """The layout with repeated physical qubits replaced by unused ones near the rest (first use kept)."""
        out: list[int] = []
        for i, q in enumerate(layout):
            if q in out:
                q = self.qubit_near([*out, *layout[i + 1 :]], rng)
            out.append(int(q))
        return tuple(out)


def best_layouts(
    n: int,
    coupling: Sequence[tuple[int, int]],
    qubit_error: dict[int, float],
    pair_error: dict[tuple[int, int], float],
    k: int = 10,
    beam: int = 256,
) -> list[tuple[int, ...]]:
    """The `k` connected groups of `n` qubits with the lowest summed error, best first.

    A group's error is the sum of its qubits' errors (readout) and of the errors of the
    couplings inside it (2-qubit gates), the calibration-only score mapomatic and
    Elivagar use to rank placements before anything is simulated. Groups grow one coupled
    qubit at a time, keeping the `beam` best of each size, so a 127-qubit device costs
    milliseconds. Pair errors are looked up in either direction.
    """
    neighbors: dict[int, set[int]] = {}
    for a, b in coupling:
        neighbors.setdefault(a, set()).add(b)
        neighbors.setdefault(b, set()).add(a)

    def pair(a: int, b: int) -> float:
        return pair_error.get((a, b), pair_error.get((b, a), 0.0))

    def cost(group: frozenset[int]) -> float:
        inside = {(a, b) for a in group for b in neighbors.get(a, ()) if b in group and a < b}
        return sum(qubit_error.get(q, 0.0) for q in group) + sum(pair(a, b) for a, b in inside)

    groups = {frozenset([q]) for q in neighbors}
    for _ in range(n - 1):
        grown = {g | {q} for g in groups for p in g for q in neighbors[p] if q not in g}
        groups = set(sorted(grown, key=lambda g: (cost(g), sorted(g)))[:beam])
    ranked = sorted(groups, key=lambda g: (cost(g), sorted(g)))
    return [tuple(sorted(g)) for g in ranked[:k]]


def check_layout(layout: Sequence[int], n_logical: int, n_physical: int) -> None:
    """Raise naming the values when `layout` is not n_logical distinct qubits in range(n_physical)."""
    if len(layout) != n_logical:
        raise ValueError(f"layout {list(layout)} has {len(layout)} qubits; the circuit has {n_logical}")
    bad = [q for q in layout if not 0 <= q < n_physical]
    if bad:
        raise ValueError(f"layout {list(layout)}: qubits {bad} out of range 0..{n_physical - 1}")
    repeated = sorted({q for q in layout if list(layout).count(q) > 1})
    if repeated:
        raise ValueError(f"layout {list(layout)}: qubits {repeated} repeated")
