"""Variation operators of the evolutionary search (QuantumNAS, Wang et al. HPCA 2022)."""

from __future__ import annotations

import numpy as np

from qnas.evolution.genome import Genome, GenomeSpace


class Mutation:
    """Per-gene resampling: each free gene is drawn anew with probability `prob`."""

    def __init__(self, prob: float) -> None:
        self.prob = prob

    def mutate(self, parent: Genome, space: GenomeSpace, rng: np.random.Generator) -> Genome:
        layout, arch = list(parent.layout), list(parent.arch)
        if space.fixed_layout is None:
            for i in range(len(layout)):
                if rng.random() < self.prob:
                    layout[i] = space.qubit_near(layout[:i] + layout[i + 1 :], rng)
        if space.fixed_arch is None:
            for i, choices in enumerate(space.arch_choices):
                if rng.random() < self.prob:
                    arch[i] = int(rng.choice(choices))
        return Genome(space.repair(layout, rng), tuple(arch))


class UniformCrossover:
    """Each gene from either parent with equal probability; the layout repaired after."""

    n_parents = 2

    def crossover(self, a: Genome, b: Genome, space: GenomeSpace, rng: np.random.Generator) -> Genome:
        layout = [x if rng.random() < 0.5 else y for x, y in zip(a.layout, b.layout, strict=True)]
        arch = tuple(x if rng.random() < 0.5 else y for x, y in zip(a.arch, b.arch, strict=True))
        return Genome(space.repair(layout, rng), arch)
