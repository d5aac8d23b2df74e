"""Scoring one candidate (subcircuit + layout) on a device: the search's unit of work.

Composes the pieces, each a function of its own: subcircuit -> qiskit circuit ->
transpile on the device with the layout -> noisy (or noiseless) task metric on the
validation samples -> cost figures and circuit metrics. An evaluator is built once per
worker with the SuperCircuit weights, the validation data and the device, and then
scores many genomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from qiskit import QuantumCircuit

from qnas import metrics, proxies, registry
from qnas.config import Config
from qnas.devices import Device, get_device
from qnas.evolution.genome import Genome
from qnas.noise import Simulation, noisy_probability_groups
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks import Task, task_from_config
from qnas.tasks.base import Samples
from qnas.transpiled import TranspiledCandidate, transpile_candidate


@dataclass(frozen=True)
class Screen:
    """A request to score only a genome's training-free objectives (the search's screening stage)."""

    genome: Genome
    objectives: tuple[str, ...]


def build_supercircuit(config: Config, task: Task) -> SuperCircuit:
    """The SuperCircuit of the config's design space on the task's wires (weights seeded by the config).

    With the encoder as a gene (`search.encoders`), the task's encoders are the SuperCircuit's;
    with `task.reupload`, the encoder comes again before every block after the first.
    """
    return SuperCircuit(
        load_space(config.space.name),
        task.n_wires,
        config.space.max_blocks,
        seed=config.seed,
        encoders=getattr(task, "encoder_choices", None),
        head=task.init_head(config.seed) if task.n_head_params else None,
        reupload=task.encoder if config.task.reupload else None,
    )


class CandidateEvaluator:
    """Scores genomes of one SuperCircuit on one device; built once per worker."""

    def __init__(
        self,
        config: dict,
        weights: torch.Tensor,
        samples: Samples = None,
        task: Task | None = None,
        registered: dict | None = None,
    ) -> None:
        # A worker process knows only qnas's own names until it gets the driver's registrations.
        registry.restore(registered)
        self.config = Config.model_validate(config)
        self.search = self.config.search
        self.task: Task = task if task is not None else task_from_config(self.config)
        # The samples scored: given once per worker, or the first valid_samples of the split.
        self.samples = (
            samples if samples is not None else self.task.samples("valid", self.search.valid_samples)
        )
        self.supercircuit = build_supercircuit(self.config, self.task)
        with torch.no_grad():
            self.supercircuit.weights.copy_(weights)
        self.device = get_device(self.config.device)

    def evaluate(self, item: Genome | Screen) -> dict[str, Any]:
        """All objectives and cost figures of a genome, with the seconds each part took.

        A `Screen` asks for its training-free objectives only (and the transpiled cost).
        """
        if isinstance(item, Screen):
            return self._evaluate(item.genome, item.objectives, score_task=False)
        training_free = self.search.strategy == "training_free"
        return self._evaluate(item, tuple(self.search.objectives), score_task=not training_free)

    def _evaluate(self, genome: Genome, objectives: tuple[str, ...], score_task: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        sub = self.supercircuit.subcircuit(genome.arch)
        out: dict[str, Any] = {
            "n_params": sub.n_params,
            **{f"logical_{k}": v for k, v in sub.n_gates().items()},
        }
        candidate = transpile_candidate(
            sub.to_qiskit(bound=True, encoder=self.task.encoder, n_inputs=self.task.n_inputs),
            self.device,
            genome.layout or None,
            self.search.optimization_level,
            seed=self.config.seed,
            idle_noise=self.search.idle_noise,
            decoupling=self.search.dynamical_decoupling,
        )
        if len(candidate.active_qubits) > self.search.max_active_qubits:
            raise ValueError(
                f"layout {list(genome.layout)} spreads the routed circuit over {len(candidate.active_qubits)} "
                f"physical qubits; search.max_active_qubits is {self.search.max_active_qubits}"
            )
        out.update(
            n_2q=candidate.n_2q,
            depth=candidate.depth,
            duration=candidate.duration,
            success_probability=candidate.success_probability,
            final_layout=list(candidate.final_layout),
        )
        t1 = time.perf_counter()
        if score_task:
            sub = self.task.warm_start(sub, self.search.head_refit_epochs, self.config.seed)
        if score_task and self.search.noise_aware:
            out.update(
                noisy_metrics(
                    self.task.bind(sub),
                    candidate,
                    self.device,
                    self.samples,
                    self.search.shots,
                    self.config.seed,
                    simulation_of(self.search),
                )
            )
        elif score_task:
            out.update(self.task.noiseless_metrics(sub, self.samples))
        t2 = time.perf_counter()
        for name, function in (
            ("expressibility", metrics.expressibility),
            ("entangling_capability", metrics.entangling_capability),
        ):
            if name in objectives:
                start = time.perf_counter()
                # Of the trainable circuit: an encoder gene's layers read inputs, not angles.
                out[name] = function(
                    sub.without_inputs(), n_samples=self.search.expressibility_samples, seed=self.config.seed
                )
                out[f"seconds_{name}"] = time.perf_counter() - start
        out.update(proxy_metrics(objectives, sub, candidate, self.task, self.device, self.config))
        for name in objectives:
            user = registry.objective(name)
            if user is not None:
                out[name] = float(
                    user.function(subcircuit=sub, transpiled=candidate, task=self.task, device=self.device)
                )
        out.update(seconds_transpile=t1 - t0, seconds_score=t2 - t1, seconds_total=time.perf_counter() - t0)
        return out


def proxy_metrics(
    objectives: tuple[str, ...] | list[str],
    sub: Subcircuit,
    candidate: TranspiledCandidate,
    task: Task,
    device: Device,
    config: Config,
) -> dict[str, float]:
    """The training-free proxies among `objectives` (qnas.proxies), each with the seconds it took."""
    settings, seed = config.proxies, config.seed
    wanted = set(objectives)
    if "elivagar_score" in wanted:
        wanted |= {"clifford_noise_resilience", "representational_capacity"}
    out: dict[str, float] = {}
    compute = {
        "clifford_noise_resilience": lambda: proxies.clifford_noise_resilience(
            candidate, device, settings.cnr_replicas, settings.cnr_shots, seed
        ),
        "representational_capacity": lambda: proxies.representational_capacity(
            sub, task, settings.repcap_samples_per_class, settings.repcap_param_samples, seed
        ),
        "gradient_variance": lambda: proxies.task_gradient_variance(
            sub, task, settings.gradient_samples, settings.gradient_draws, seed
        ),
    }
    for name, function in compute.items():
        if name in wanted:
            start = time.perf_counter()
            out[name] = float(function())
            out[f"seconds_{name}"] = time.perf_counter() - start
    if "elivagar_score" in wanted:
        out["elivagar_score"] = proxies.elivagar_score(
            out["representational_capacity"], out["clifford_noise_resilience"]
        )
    return out


def input_values(circuit: QuantumCircuit, x: torch.Tensor) -> np.ndarray:
    """Return the per-sample values (N, n_params) of a circuit's input Parameters (qiskit's order), read from features."""
    return x.double().numpy()[:, [p.index for p in circuit.parameters]]


def simulation_of(search: Any) -> Simulation:
    """The noisy simulation a search config asks for (`search.noise_method` and its keys)."""
    return Simulation(
        method=search.noise_method,
        exact_max_qubits=search.exact_max_qubits,
        trajectories=search.trajectories,
        memory_budget=int(search.memory_budget_gb * 2**30),
        readout=search.readout_noise,
    )


def noisy_metrics(
    task: Task,
    candidate: TranspiledCandidate,
    device: Device,
    samples: Samples,
    shots: int | None = None,
    seed: int = 0,
    simulation: Simulation | None = None,
) -> dict[str, float]:
    """Return the task's metrics of a bound candidate on `samples`, from its noisy probabilities in every basis.

    Scored by trajectories, each metric `m` comes with `m_se`: its standard error by the
    jackknife over the groups of trajectories (leave one group out, recompute the metric).
    """
    x = task.features(samples)
    groups = {
        basis: noisy_probability_groups(
            measured, device, input_values(measured.circuit, x), shots=shots, seed=seed, simulation=simulation
        )
        for basis, measured in task.measurement_circuits(candidate, device).items()
    }
    metrics = task.metrics_from_probabilities({b: g.mean(0) for b, g in groups.items()}, samples)
    n_groups = len(next(iter(groups.values())))
    if n_groups > 1:
        leave_out = [
            task.metrics_from_probabilities(
                {b: np.delete(g, i, axis=0).mean(0) for b, g in groups.items()}, samples
            )
            for i in range(n_groups)
        ]
        for name in list(metrics):
            values = np.array([m[name] for m in leave_out], dtype=float)
            metrics[f"{name}_se"] = float(
                np.sqrt((n_groups - 1) / n_groups * np.sum((values - values.mean()) ** 2))
            )
    return metrics


def evaluator_payload(config: Config, supercircuit: SuperCircuit, task: Task) -> dict[str, Any]:
    """What each worker receives once: the config, the shared weights, the task and its validation samples.

    The task itself travels (not only its name), and so do the user's registrations: a
    worker need not rebuild the data split nor know a task, objective or device that a
    notebook registered.
    """
    return {
        "config": config.model_dump(),
        "weights": supercircuit.weights.detach().clone(),
        "samples": task.samples("valid", config.search.valid_samples),
        "task": task,
        "registered": registry.snapshot(),
    }
