"""The stages of a run, in order: check the config, train, search, fine-tune, export.

Each stage reads and writes the run directory, so running the same command again
continues where an interrupted run stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from qnas import registry
from qnas.config import Config, objective_direction
from qnas.devices import Device, calibrated_errors, get_device
from qnas.evaluate import CandidateEvaluator, Screen, build_supercircuit, evaluator_payload, simulation_of
from qnas.evolution import samplers
from qnas.evolution.engine import EvolutionSettings, evolve
from qnas.evolution.genome import Genome, GenomeSpace, best_layouts
from qnas.evolution.pareto import hypervolume, pareto_front
from qnas.evolution.samplers import SAMPLER_ATTRS, SAMPLERS
from qnas.evolution.study import CandidateStudy, Screening, open_storage
from qnas.executors import NoisyExecutor
from qnas.export import export_circuit
from qnas.gradients import ProbabilisticGradientPruning, get_engine
from qnas.parallel import EvaluatorPool
from qnas.results import (
    RunDir,
    candidate_id,
    candidates_table,
    find_candidate,
    front_of,
    locked,
    plot_front,
    read_checkpoint,
    write_tables,
)
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks import Task, task_from_config
from qnas.train import finetune, train, train_supercircuit
from qnas.transpiled import transpile_candidate, validate_layout

# Objectives the evaluator computes for any task; every other one is a metric of the task.
_CIRCUIT_OBJECTIVES = frozenset(
    {
        "n_2q",
        "depth",
        "n_params",
        "expressibility",
        "entangling_capability",
        "success_probability",
        "clifford_noise_resilience",
        "gradient_variance",
    }
)
# Objectives that read the class labels.
_CLASSIFICATION_OBJECTIVES = frozenset({"representational_capacity", "elivagar_score"})


def check_config(config: Config) -> tuple[Task, SuperCircuit]:
    """Resolve every name and check the search settings against them; raise before any training."""
    task = task_from_config(config)
    load_space(config.space.name)  # an unknown space fails here, before the device loads
    device = get_device(config.device)
    search = config.search
    screened = search.screen.objectives if search.screen is not None else []
    for objective in [*search.objectives, *screened]:
        user = registry.objective(objective) is not None
        if objective in _CLASSIFICATION_OBJECTIVES and task.kind == "classification":
            continue
        if objective not in _CIRCUIT_OBJECTIVES and objective not in task.metric_names and not user:
            raise ValueError(
                f"objective {objective!r} is not a metric of task {task.name} ({task.kind}); its metrics: "
                f"{', '.join(task.metric_names)}, and for any task: {', '.join(sorted(_CIRCUIT_OBJECTIVES))}"
                + (
                    f"; a classifier also has {', '.join(sorted(_CLASSIFICATION_OBJECTIVES))}"
                    if objective in _CLASSIFICATION_OBJECTIVES
                    else ""
                )
            )
    if task.n_wires > device.n_qubits:
        raise ValueError(f"task {task.name} needs {task.n_wires} qubits; {device.name} has {device.n_qubits}")
    sc = build_supercircuit(config, task)
    if task.n_head_params and config.finetune.engine not in ("backprop", "parameter_shift"):
        # The head's weights are not rotation angles: backprop trains them, or the shift
        # rule's chain rule (the head's gradient by backprop at the unshifted outputs).
        raise ValueError(
            f"task {task.name} trains a classical head with its circuit, which only backprop and "
            "parameter_shift can: "
            f"finetune.engine is {config.finetune.engine!r}; set it to backprop or parameter_shift"
        )
    if search.head_refit_epochs and not task.n_head_params:
        raise ValueError(
            f"search.head_refit_epochs ({search.head_refit_epochs}) re-fits a classical head before each "
            f"score; task {task.name} has none: set it to 0"
        )
    if isinstance(search.layout, list):
        validate_layout(search.layout, task.n_wires, device)
    genome_space(config, sc, device)
    n_valid = task.n_samples("valid")
    if n_valid is not None and search.valid_samples > n_valid:
        raise ValueError(
            f"search.valid_samples = {search.valid_samples}; {task.name} has {n_valid} validation samples: "
            f"set search.valid_samples <= {n_valid}"
        )
    return task, sc


def genome_space(config: Config, sc: SuperCircuit, device: Device) -> GenomeSpace:
    search = config.search
    coupling_map = device.backend.coupling_map
    coupling = tuple(tuple(edge) for edge in coupling_map.get_edges()) if coupling_map is not None else ()
    fixed_layout = _fixed_layout(search.layout)
    preferred: list[tuple[int, ...]] = []
    if fixed_layout is None and coupling and search.noise_aware:
        preferred = best_layouts(sc.n_wires, coupling, *calibrated_errors(device), k=search.preferred_layouts)
    return GenomeSpace(
        n_logical=sc.n_wires,
        n_physical=device.n_qubits,
        coupling=coupling,
        arch_choices=tuple(tuple(c) for c in sc.gene_choices),
        fixed_layout=fixed_layout,
        fixed_arch=sc.validate(search.arch) if search.arch is not None else None,
        preferred_layouts=tuple(preferred),
        layout_order=search.layout_order,
    )


def _fixed_layout(layout: list[int] | str | None) -> tuple[int, ...] | None:
    """None: searched; (): qiskit's default layout per candidate; else the given layout."""
    if layout is None:
        return None
    return () if layout == "default" else tuple(layout)


def run_train(config: Config, run: RunDir, progress: bool = True) -> tuple[Task, SuperCircuit]:
    """Train (or finish training) the run's SuperCircuit; return the task and the trained SuperCircuit."""
    task, sc = check_config(config)
    run.prepare(config)
    if config.search.strategy == "training_free":
        # Élivágar trains no SuperCircuit: candidates are ranked untrained, finalists trained alone.
        return task, sc
    if config.search.arch is not None:
        # A fixed architecture is trained alone: the human-designed baseline of QuantumNAS.
        genes = sc.validate(config.search.arch)
        train(sc, task, config.train, lambda: genes, config.seed, run.checkpoint, progress=progress)
    else:
        t = config.train
        train_supercircuit(sc, task, t, t.sampler, t.limit_diff, config.seed, run.checkpoint, progress)
    return task, sc


@dataclass
class SearchOutcome:
    candidates: pd.DataFrame
    front: pd.DataFrame
    history: list[dict]
    best: dict[str, Any]


def run_search(
    config: Config,
    run: RunDir,
    workers: int = 2,
    ray_address: str | None = None,
    storage: str | None = None,
    progress: bool = True,
    finetune_dir: Path | None = None,
) -> SearchOutcome:
    """Train, then search, then fine-tune and export the best candidate; resumable at every stage.

    Fine-tuned checkpoints go to `finetune_dir` (default: the run directory), named by
    what they depend on, so runs that share a SuperCircuit (the same task on several
    devices) share the fine-tuning of the circuits they have in common.
    """
    task, sc = run_train(config, run, progress)
    device = get_device(config.device)
    space = genome_space(config, sc, device)
    search = config.search
    directions = [objective_direction(o) for o in search.objectives]
    study = CandidateStudy(
        open_storage(run.storage_url(storage)),
        run.study_name(config),
        search.objectives,
        directions,
        space,
        key_of=lambda g: candidate_key(sc, g),
    )
    settings = EvolutionSettings(
        search.population,
        search.parents,
        search.mutants,
        search.crossovers,
        search.mutation_prob,
        search.iterations,
        search.strategy,
        config.seed,
    )
    history: list[dict] = []
    reference: list[np.ndarray] = []
    with EvaluatorPool(CandidateEvaluator, evaluator_payload(config, sc, task), workers, ray_address) as pool:
        bar = tqdm(
            total=search.population * search.iterations, desc="search", disable=not progress, unit="cand"
        )
        status: dict[str, Any] = {"evaluated": 0, "this_generation": 0}
        started = time.perf_counter()

        def show(**fields: Any) -> None:
            status.update(fields)
            rate = status["evaluated"] / max(time.perf_counter() - started, 1e-9)
            shown = {k: status[k] for k in ("gen", "best", "hv") if k in status}
            bar.set_postfix(**shown, evals_per_s=f"{rate:.2f}")

        def evaluate(items):
            for key, result in pool.evaluate(items):
                status["evaluated"] += 1
                status["this_generation"] += 1
                bar.update(1)
                show()
                yield key, result

        screening = None
        if search.screen is not None:
            cheap = tuple(search.screen.objectives)
            screening = Screening(
                list(cheap),
                [1.0 if objective_direction(o) == "minimize" else -1.0 for o in cheap],
                search.screen.keep,
                lambda items: pool.evaluate([(key, Screen(genome, cheap)) for key, genome in items]),
            )

        def score(
            genomes: list[Genome], generation: int, extra: dict[Genome, dict[str, Any]] | None = None
        ) -> np.ndarray:
            values = study.score(genomes, generation, evaluate, screening, extra)
            done = [r for r in study.completed() if r.get("values") is not None]
            all_values = np.array([study.signs * np.asarray(r["values"]) for r in done]).reshape(
                len(done), -1
            )
            if not reference and len(all_values):
                # Fixed after generation 0 so the hypervolume of later generations is comparable.
                span = np.ptp(all_values, axis=0)
                reference.append(all_values.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0))
            hv = hypervolume(all_values[pareto_front(all_values)], reference[0]) if len(all_values) else 0.0
            best = float(study.signs[0] * all_values[:, 0].min()) if len(all_values) else float("nan")
            history.append(
                {
                    "generation": generation,
                    "evaluated": len(study.records),
                    "hypervolume": hv,
                    f"best_{search.objectives[0]}": best,
                    "seconds": time.perf_counter() - started,
                }
            )
            # candidates found in the study (duplicates, survivors, a resumed run) count as done
            bar.update(len(genomes) - status["this_generation"])
            status["this_generation"] = 0
            show(gen=generation, best=f"{best:.4f}", hv=f"{hv:.4g}")
            _write(run, study, search.objectives, history)
            return values

        initial = _initial_genomes(config, sc, task, device, space)
        # An Optuna sampler's bookkeeping of each genome it proposed, kept with its trial.
        extra: dict[Genome, dict[str, Any]] = {}

        def propose(generation: int) -> list[Genome]:
            proposals = samplers.propose(
                search.strategy,
                study.completed(),
                space,
                directions,
                generation,
                search.population,
                config.seed,
            )
            extra.clear()
            extra.update({genome: {SAMPLER_ATTRS: attrs} for genome, attrs in proposals})
            return [genome for genome, _ in proposals]

        # Parents are distinct circuits: genomes differing only in inactive blocks share a key.
        evolve(
            space,
            settings,
            lambda genomes, generation: score(genomes, generation, extra),
            initial=initial,
            key=study.key_of,
            propose=propose if search.strategy in SAMPLERS else None,
        )
        bar.close()
    df, front = _write(run, study, search.objectives, history)
    plot_front(df, front, search.objectives, run.path / "pareto.png", run.path / "pareto.html")
    best = finish_best(config, run, task, sc, df, progress, finetune_dir)
    return SearchOutcome(df, front, history, best)


def candidate_key(sc: SuperCircuit, genome: Genome) -> str:
    """Return the study key of a candidate: its layout and active circuit (inactive blocks do not count)."""
    return f"L{list(genome.layout)}A{list(sc.canonical(genome.arch))}"


def candidate_label(sc: SuperCircuit, genome: Genome, trial: int | str) -> str:
    """Return how files name a candidate: "best", or its stable id however `trial` named it."""
    return "best" if str(trial) == "best" else candidate_id(candidate_key(sc, genome))


def _write(run: RunDir, study: CandidateStudy, objectives: list[str], history: list[dict]):
    df = candidates_table(study.completed(), objectives)
    front = front_of(df, objectives)
    write_tables(run, df, front, history)
    return df, front


def _initial_genomes(
    config: Config, sc: SuperCircuit, task: Task, device, space: GenomeSpace
) -> list[Genome]:
    """Generation 0 starts from the human designs: a full-width circuit of every depth.

    Drawn gene by gene, a genome almost never has every layer at full width (1 in 4^16
    for u3cu3 at 8 blocks), and the narrow circuits it does draw leave qubits without
    rotations; the seeds give the search the known-good shapes to trade depth and width
    against noise from. Their layouts alternate between qiskit's own (noise-aware) layout
    of the largest circuit and the device's least error-prone qubit group. At most half
    the population is seeded.
    """
    if space.fixed_arch is not None and space.fixed_layout is not None:
        return []
    cap = max(1, config.search.population // 2)
    depths = np.linspace(sc.max_blocks, 1, min(cap, sc.max_blocks)).round().astype(int)
    archs = [space.fixed_arch] if space.fixed_arch is not None else [sc.fixed_blocks(int(b)) for b in depths]
    if space.fixed_layout is not None:
        layouts = [space.fixed_layout]
    else:
        circuit = sc.subcircuit(sc.largest()).to_qiskit(
            bound=True, encoder=task.encoder, n_inputs=task.n_inputs
        )
        qiskit_layout = transpile_candidate(
            circuit, device, None, config.search.optimization_level, config.seed, idle_noise=False
        ).initial_layout
        layouts = [tuple(qiskit_layout), *space.preferred_layouts[:1]]
    if space.fixed_arch is not None:
        seeds = [Genome(tuple(layout), tuple(space.fixed_arch)) for layout in layouts]
    else:
        seeds = [Genome(tuple(layouts[i % len(layouts)]), tuple(a)) for i, a in enumerate(archs)]
    return seeds[:cap]


def finish_best(
    config: Config,
    run: RunDir,
    task: Task,
    sc: SuperCircuit,
    candidates: pd.DataFrame,
    progress: bool = True,
    finetune_dir: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune finalists of every depth, keep the best on the validation set, test it and export it.

    Inherited weights rank candidates only roughly and under-rate deep ones, which
    gain most from training of their own (and noise then widens the gap), so the
    best-scored candidate of each block count, and the best-scored full-width one of that
    count, are fine-tuned and scored again on the validation samples (noisy when the
    search is noise-aware) before one is chosen.
    """
    ok = candidates[~candidates["failed"]] if not candidates.empty else candidates
    if ok.empty:
        raise RuntimeError("every candidate failed; see the error column of candidates.csv")
    first = config.search.objectives[0]
    ranked = ok.assign(blocks=ok["arch"].map(lambda a: json.loads(a)[-1]))
    ranked = ranked.sort_values(first, ascending=objective_direction(first) == "minimize", kind="stable")
    per_depth = ranked.drop_duplicates("blocks").sort_values("blocks")
    keep = (
        np.linspace(0, len(per_depth) - 1, min(config.finetune.finalists, len(per_depth))).round().astype(int)
    )
    chosen = per_depth.iloc[sorted(set(keep.tolist()))]
    # The full-width circuit of each chosen depth (the human design the search was seeded
    # with) competes too: inherited weights often rank a narrower circuit of that depth
    # above it that fine-tuning then leaves far behind (measured on fake_cambridge: a 2-block
    # circuit with width-1 layers, 62% valid accuracy, against 84% for the full-width one).
    full = {tuple(sc.fixed_blocks(b)) for b in chosen["blocks"]}
    is_full = ranked["arch"].map(lambda a: tuple(json.loads(a)) in full)
    widest = ranked[is_full].drop_duplicates("blocks")
    chosen = pd.concat([chosen, widest]).drop_duplicates("trial").sort_values(["blocks", "trial"])
    finalists = []
    for _, row in chosen.iterrows():
        genome = Genome(tuple(json.loads(row["layout"])), tuple(json.loads(row["arch"])))
        tuned = _finetuned(config, finetune_dir or run.path, task, sc, genome, progress)
        valid = score_genome(config, task, tuned, genome, "valid", config.search.noise_aware)
        finalists.append(
            {
                "trial": int(row["trial"]),
                "genome": genome,
                "tuned": tuned,
                "valid": valid,
                "search_scores": {o: float(row[o]) for o in config.search.objectives},
            }
        )
    # A search objective the finalists' weights change decides; a training-free proxy does not.
    decides = first if first in task.metric_names else task.metric
    sign = 1 if objective_direction(decides) == "minimize" else -1
    best = min(finalists, key=lambda f: sign * f["valid"][decides])
    genome, tuned = best["genome"], best["tuned"]
    sub = tuned.subcircuit(genome.arch)
    run.exports.mkdir(exist_ok=True)
    about = {"run": str(run.path), "candidate": f"best (id {candidate_id(candidate_key(sc, genome))})"}
    about["run_device"] = config.device
    # OpenQASM 2 has no inputs: a task that reads features is exported as OpenQASM 3 alone.
    formats = ("qasm3",) if task.n_inputs else ("qasm2", "qasm3")
    paths = {
        fmt: str(export_circuit(sub, task, fmt, run.exports / f"best.{fmt}", about=about)) for fmt in formats
    }
    # What the circuit needs beside its QASM (Quantum-Train: the generated network's weights).
    paths.update({p.stem: str(p) for p in task.export_artifacts(sub, run.exports)})
    summary = {
        "trial": best["trial"],
        "id": candidate_id(candidate_key(sc, genome)),
        "layout": list(genome.layout),
        "arch": list(genome.arch),
        "search_scores": best["search_scores"],
        "valid_after_finetune": _summary(best["valid"]),
        "finalists": [
            {
                "trial": f["trial"],
                "arch": list(f["genome"].arch),
                "layout": list(f["genome"].layout),
                "valid_after_finetune": _summary(f["valid"]),
            }
            for f in finalists
        ],
        "test": {
            "noiseless_inherited": task.evaluate(sc.subcircuit(genome.arch), task.final_split),
            "noiseless": task.evaluate(sub, task.final_split),
            "noisy": _summary(score_genome(config, task, tuned, genome, task.final_split, True)),
            "device": config.device,
        },
        "exports": paths,
    }
    torch.save(
        {"weights": tuned.weights.detach(), "genes": genome.arch, "layout": genome.layout},
        run.path / "best.pt",
    )
    run.best_json.write_text(json.dumps(summary, indent=2))
    return summary


def _finetuned(
    config: Config, folder: Path, task: Task, sc: SuperCircuit, genome: Genome, progress: bool
) -> SuperCircuit:
    ft = config.finetune
    if not ft.epochs:
        return sc
    engine = get_engine(ft.engine)
    if ft.gradient_pruning is not None:
        engine = ProbabilisticGradientPruning(engine, ratio=ft.gradient_pruning, seed=config.seed)
    sub = sc.subcircuit(sc.canonical(genome.arch))
    if ft.noise_aware:
        # Noise-aware fine-tuning depends on the device, the layout and how circuits are scored too.
        search = config.search
        scoring = [
            config.device,
            list(genome.layout),
            search.optimization_level,
            search.shots,
            search.idle_noise,
            *([] if search.readout_noise else ["no readout error"]),
            *(["dynamical decoupling"] if search.dynamical_decoupling else []),
            *(
                [search.noise_method, search.exact_max_qubits, search.trajectories]
                if task.n_wires > search.exact_max_qubits or search.noise_method != "auto"
                else []
            ),
        ]
        executor_of = noisy_executor_of(config, task, genome)
    else:
        # Noiseless fine-tuning depends on the task, the settings, the seed, the circuit and
        # the angles it starts from, not on the device or the layout: the checkpoint is named
        # by those, so any run holding the same circuit finds it.
        scoring, executor_of = [], None
    checkpoint = _finetune_checkpoint(folder, config, task, sub, scoring)
    # Runs sharing the folder wait for one another's fine-tuning of a common circuit, then find it finished.
    with locked(checkpoint.with_suffix(".lock")):
        tuned, _ = finetune(sc, sub.genes, task, ft, config.seed, engine, executor_of, checkpoint, progress)
    return tuned


# Task settings added since fine-tuned checkpoints were first named, left out of the name at
# their defaults, so a run made before them finds its checkpoints.
_ADDED_TASK_SETTINGS = {"encoder": None}
# Settings added after that, in the order they came, each with the values that do what the
# code did before it existed. A checkpoint's name holds the settings of its day; a run looks
# for the newest name first, then for the older ones its settings share, so a run resumed
# across an upgrade keeps its fine-tuning. (Quantum-Train standardized per tensor before
# `standardize` existed: its default, per unit, does not share the older names.)
_LATER_TASK_SETTINGS: list[dict[str, tuple]] = [
    {"mapping_hidden": (None,), "shots": (None,)},
    {"reupload": (False,)},
    {"mapping": (None,), "mapping_bond": (None,)},
    {"standardize": (None, "tensor"), "label_smoothing": (None, 0.0)},
]


def _task_settings(
    config: Config, task: Task | None = None, era: int = len(_LATER_TASK_SETTINGS)
) -> dict | None:
    """The task settings that name a fine-tuned checkpoint, as named when the first `era` of the
    later settings existed; None when the config sets one of the others off its old behaviour."""
    settings = {
        k: v
        for k, v in config.task.model_dump().items()
        if not (k in _ADDED_TASK_SETTINGS and v == _ADDED_TASK_SETTINGS[k])
    }
    if task is not None and task.kind == "quantum_train" and settings["standardize"] is None:
        settings["standardize"] = "unit"  # what None means for Quantum-Train
    for added in _LATER_TASK_SETTINGS[era:]:
        for k, old in added.items():
            if settings.pop(k) not in old:
                return None
    if config.search.encoders:
        # The encoder gene indexes this list: what the inputs are and which encoder reads them.
        settings["encoders"] = list(config.search.encoders)
    return settings


def _finetune_checkpoint(folder: Path, config: Config, task: Task, sub: Subcircuit, scoring: list) -> Path:
    """Where `sub`'s fine-tuning is checkpointed: the newest name, or an older one that exists."""
    names = []
    for era in range(len(_LATER_TASK_SETTINGS), -1, -1):
        settings = _task_settings(config, task, era)
        if settings is not None:
            key = sub.digest(settings, config.finetune.model_dump(), config.seed, *scoring)[:16]
            names.append(folder / f"finetune-{key}.pt")
    return next((p for p in names if p.exists()), names[0])


def noisy_executor_of(config: Config, task: Task, genome: Genome) -> Callable[[Subcircuit], NoisyExecutor]:
    """Return the executor factory of noise-aware fine-tuning: the circuit tuned is the circuit scored.

    Same device, layout, optimization level, seed, shots and idle noise as the search's scorer.
    """
    search = config.search
    device = get_device(config.device)

    def executor_of(sub: Subcircuit) -> NoisyExecutor:
        return NoisyExecutor(
            sub,
            task,
            device,
            genome.layout or None,
            search.optimization_level,
            search.shots,
            config.seed,
            idle_noise=search.idle_noise,
            simulation=simulation_of(search),
            decoupling=search.dynamical_decoupling,
        )

    return executor_of


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    keys = ("loss", "calibrated_loss", "accuracy", "energy", "n_2q", "depth", "success_probability")
    # Scored by trajectories, each metric's standard error goes with it.
    return {k: scores[k] for key in keys for k in (key, f"{key}_se") if k in scores}


def score_genome(
    config: Config, task: Task, sc: SuperCircuit, genome: Genome, split: str, noise_aware: bool
) -> dict[str, Any]:
    """A genome's scores on all samples of `split` with the given weights: noisy on the device, or noiseless."""
    scoring = config.model_copy(deep=True)
    scoring.search.noise_aware = noise_aware
    scoring.search.strategy = "evolution"  # a training-free run's finalists are scored on the task too
    scoring.search.head_refit_epochs = 0  # the weights given are scored as they are
    samples = task.samples(split)
    n_samples = task.n_samples(split)
    if n_samples is not None:
        scoring.search.valid_samples = n_samples
    evaluator = CandidateEvaluator(scoring.model_dump(), sc.weights.detach().clone(), samples, task=task)
    return evaluator.evaluate(genome)


def load_supercircuit(config: Config, run: RunDir) -> tuple[Task, SuperCircuit]:
    """The task and the trained SuperCircuit of a run directory."""
    task = task_from_config(config)
    sc = build_supercircuit(config, task)
    if config.search.strategy == "training_free":
        return task, sc  # never trained: its candidates were ranked on the seeded initial weights
    if not run.checkpoint.exists():
        raise FileNotFoundError(
            f"{run.path} has no trained SuperCircuit ({run.checkpoint.name}); run qnas train first"
        )
    sc.load_state_dict(read_checkpoint(run.checkpoint)["model"])
    return task, sc


def load_candidate(run: RunDir, trial: int | str) -> tuple[Config, Task, SuperCircuit, Genome]:
    """Return (config, task, SuperCircuit holding the candidate's weights, genome) of a run's candidate.

    `trial` "best" is the fine-tuned best candidate (best.pt); anything else names a row
    of the candidates table (see `find_candidate`: an id, a unique id prefix, or a trial
    number, which is not stable across resumes), with the weights it inherits from the
    trained SuperCircuit.
    """
    config = run.load_config()
    if str(trial) == "best":
        best_pt = run.path / "best.pt"
        if not best_pt.exists():
            raise FileNotFoundError(f"{run.path} has no best.pt yet; finish qnas search first")
        task, sc = load_supercircuit(config, run)
        best = read_checkpoint(best_pt)
        with torch.no_grad():
            sc.weights.copy_(best["weights"])
        return config, task, sc, Genome(tuple(best["layout"]), tuple(best["genes"]))
    if not run.candidates_parquet.exists():
        raise FileNotFoundError(f"{run.path} has no candidates table yet; run qnas search first")
    # Resolved before the SuperCircuit is loaded, so a wrong --trial fails at once.
    row = find_candidate(pd.read_parquet(run.candidates_parquet), trial, run.path)
    task, sc = load_supercircuit(config, run)
    return config, task, sc, Genome(tuple(json.loads(row["layout"])), tuple(json.loads(row["arch"])))
