"""Optuna's samplers as search strategies: each generation asked of a sampler that saw the earlier ones.

The genome is Optuna distributions (an integer per layout gene and per architecture
gene), so any of Optuna's samplers can propose candidates: NSGA-II (Deb et al., IEEE
TEC 2002), TPE (Bergstra et al., NeurIPS 2011; Ozaki et al. for several objectives) and
the Gaussian-process sampler. `auto` is the sampler Optuna itself picks for a study with
that many objectives.

A generation's proposals come from a fresh sampler seeded by (seed, generation) that is
shown the candidates of the earlier generations only, in trial order. So a search
resumed after a kill proposes exactly what it proposed before, for every sampler that is
deterministic given its seed and its history (all four are: their randomness comes from
their seeded generators). The study that records the search is not the sampler's own:
the sampler works on an in-memory copy, and its per-trial bookkeeping (NSGA-II's
generation numbers, say) travels with each candidate as a user attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from qnas.evolution.genome import Genome, GenomeSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLERS = ("nsga2", "tpe", "gp", "auto")
# The user attribute holding a sampler's bookkeeping of the trial it proposed.
SAMPLER_ATTRS = "sampler_attrs"


def make_sampler(name: str, seed: int, n_objectives: int, population: int) -> optuna.samplers.BaseSampler:
    """Return Optuna's sampler `name`, seeded."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=population)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=population)
    if name == "auto":
        default = type(optuna.create_study(directions=["minimize"] * n_objectives).sampler)
        return default(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; allowed: {', '.join(SAMPLERS)}")


def distributions(space: GenomeSpace) -> dict[str, IntDistribution]:
    """The genes a sampler chooses: the layout's (unless fixed) and the architecture's (unless fixed)."""
    out: dict[str, IntDistribution] = {}
    if space.fixed_layout is None:
        out.update({f"layout_{i}": IntDistribution(0, space.n_physical - 1) for i in range(space.n_logical)})
    if space.fixed_arch is None:
        out.update({f"arch_{i}": IntDistribution(min(c), max(c)) for i, c in enumerate(space.arch_choices)})
    return out


def propose(
    sampler: str,
    records: Iterable[dict[str, Any]],
    space: GenomeSpace,
    directions: list[str],
    generation: int,
    n: int,
    seed: int,
) -> list[tuple[Genome, dict[str, Any]]]:
    """Return `n` (genome, sampler bookkeeping) proposals for `generation`.

    `records` are the study's finished candidates (their `generation`, `layout`, `arch`,
    `values`, `number`); only those of earlier generations are shown to the sampler.
    """
    dists = distributions(space)
    sampler_seed = int(np.random.default_rng([seed, generation]).integers(2**31))
    study = optuna.create_study(
        directions=directions, sampler=make_sampler(sampler, sampler_seed, len(directions), n)
    )
    past = sorted((r for r in records if r.get("generation", 0) < generation), key=lambda r: r["number"])
    # Generation 0 is qnas's own (the human designs and random genomes); NSGA-II takes it as
    # its first generation, the parents of the next, by the attribute it marks trials with.
    first = {f"{optuna.samplers.NSGAIISampler.__name__}:generation": 0} if sampler == "nsga2" else {}
    study.add_trials([_frozen(r, dists, first) for r in past])
    rng = np.random.default_rng([seed, generation, 1])
    # A generation is proposed as a batch. TPE and the GP would propose one point over and
    # over, so each proposal is told with the worst values seen (a pessimistic constant
    # liar) and the next one goes elsewhere; NSGA-II draws its children from the earlier
    # generation anyway, and a lie would count towards its population, so it is told failed.
    done = [r["values"] for r in past if r.get("values") is not None]
    lie = None
    if sampler != "nsga2" and done:
        worst = np.array(done, dtype=float)
        lie = [
            float(worst[:, j].max() if d == "minimize" else worst[:, j].min())
            for j, d in enumerate(directions)
        ]
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        genome = legal(space, trial.params, rng)
        if lie is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, lie)
        out.append((genome, dict(study.get_trials(deepcopy=False)[-1].system_attrs)))
    return out


def _frozen(
    record: dict[str, Any], dists: dict[str, IntDistribution], default_attrs: dict[str, Any]
) -> optuna.trial.FrozenTrial:
    genome = Genome(tuple(record["layout"]), tuple(record["arch"]))
    params = {k: v for k, v in genome.params().items() if k in dists}
    values = record.get("values")
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
        values=values,
        params=params,
        distributions={k: dists[k] for k in params},
        system_attrs=dict(record.get(SAMPLER_ATTRS) or default_attrs),
    )


def legal(space: GenomeSpace, params: dict[str, int], rng: np.random.Generator) -> Genome:
    """Return the legal genome nearest a sampler's params.

    Architecture genes snap to the nearest allowed choice; the layout keeps each qubit
    that is unused and coupled to those before it, and replaces the others by a qubit
    next to them (`GenomeSpace.qubit_near`): a layout of scattered qubits on a large device
    routes into dozens of qubits.
    """
    if space.fixed_arch is not None:
        arch = space.fixed_arch
    else:
        arch = tuple(
            min(choices, key=lambda c, g=params[f"arch_{i}"]: (abs(c - g), c))
            for i, choices in enumerate(space.arch_choices)
        )
    if space.fixed_layout is not None:
        return Genome(space.fixed_layout, tuple(arch))
    layout: list[int] = []
    for i in range(space.n_logical):
        q = int(params[f"layout_{i}"])
        coupled = not space.coupling or not layout or any(q in space.neighbors[p] for p in layout)
        if q in layout or not coupled:
            q = space.qubit_near(layout, rng) if layout else q
        layout.append(q)
    return Genome(tuple(layout), tuple(arch))
