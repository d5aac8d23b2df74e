"""The evolutionary engine: populations, NSGA-II parents, mutation and crossover.

QuantumNAS (Wang et al., HPCA 2022): an elitist loop where the best candidates survive as
parents and breed mutants and crossovers; with several objectives the parents are chosen
by NSGA-II. Random search draws every generation afresh with the same budget. The engine
only wires the pieces: scoring is a callback, so it runs no simulation itself. Each
generation draws from its own seeded generator, so replaying a run after an
interruption proposes exactly the same candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from qnas.evolution.genome import Genome, GenomeSpace
from qnas.evolution.operators import Mutation, UniformCrossover
from qnas.evolution.pareto import nsga2_select

# genomes of one generation, its number -> objective values (n, m), minimised, inf = failed
ScoreFn = Callable[[list[Genome], int], np.ndarray]
# genome -> what identifies its candidate (the study's key: the active circuit and layout)
KeyFn = Callable[[Genome], Hashable]
# generation -> its population, from a strategy outside the engine (an Optuna sampler)
ProposeFn = Callable[[int], list[Genome]]


@dataclass(frozen=True)
class EvolutionSettings:
    population: int = 40
    parents: int = 10
    mutants: int = 20
    crossovers: int = 10
    mutation_prob: float = 0.4
    iterations: int = 40
    strategy: str = "evolution"  # or "random", or "training_free" (drawn afresh as random)
    seed: int = 0


def next_generation(
    parents: Sequence[Genome], space: GenomeSpace, settings: EvolutionSettings, rng: np.random.Generator
) -> list[Genome]:
    """Parents, then mutants of random parents, then crossovers of random parent pairs."""
    mutation, crossover = Mutation(settings.mutation_prob), UniformCrossover()
    children = [
        mutation.mutate(parents[int(rng.integers(len(parents)))], space, rng) for _ in range(settings.mutants)
    ]
    for _ in range(settings.crossovers):
        i, j = rng.choice(len(parents), size=2, replace=False)
        children.append(crossover.crossover(parents[i], parents[j], space, rng))
    return [*parents, *children]


def evolve(
    space: GenomeSpace,
    settings: EvolutionSettings,
    score: ScoreFn,
    initial: Sequence[Genome] = (),
    key: KeyFn | None = None,
    propose: ProposeFn | None = None,
) -> list[tuple[list[Genome], np.ndarray]]:
    """Run every generation; return (population, objective values) per generation.

    `initial` genomes (e.g. a known-good layout) take the first places of generation 0.
    Parents are distinct candidates by `key` (default: the genome itself) while there are
    enough: a population repeats its parents and often the same circuit under genomes that
    differ only in inactive blocks, and NSGA-II alone would keep every copy. With
    `propose` (an Optuna sampler's strategy), every generation after the first is its
    proposal instead of the engine's own.
    """
    key = key or (lambda genome: genome)
    history: list[tuple[list[Genome], np.ndarray]] = []
    parents: list[Genome] = []
    for generation in range(settings.iterations):
        rng = np.random.default_rng([settings.seed, generation])
        if generation == 0 or settings.strategy in ("random", "training_free"):
            seeds = list(initial) if generation == 0 else []
            population = seeds + [space.sample(rng) for _ in range(settings.population - len(seeds))]
        elif propose is not None:
            population = propose(generation)
        else:
            population = next_generation(parents, space, settings, rng)
        values = score(population, generation)
        history.append((population, values))
        keys = [key(genome) for genome in population]
        parents = [population[i] for i in nsga2_select(values, settings.parents, keys)]
    return history
