"""Scoring one candidate (subcircuit + layout) on a device: the search's unit of work.

Composes the pieces, each a function of its own: subcircuit -> qiskit circuit ->
transpile on the device with the layout -> noisy (or noiseless) task metric on the
validation samples -> cost figures and circuit metrics. An evaluator is built once per
worker with the SuperCircuit weights, the validation data and the device, and then
scores many genomes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from qnas import metrics, noise
from qnas.config import Config
from qnas.devices import get_device
from qnas.search.genome import Genome
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks import ClassificationTask, Task, task_from_config


def build_supercircuit(config: Config, n_wires: int) -> SuperCircuit:
    """The SuperCircuit of the config's design space on `n_wires` (weights seeded by the config)."""
    return SuperCircuit(load_space(config.space.name), n_wires, config.space.max_blocks, seed=config.seed)


class CandidateEvaluator:
    """Scores genomes of one SuperCircuit on one device; built once per worker."""

    def __init__(
        self, config: dict, weights: torch.Tensor, valid: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> None:
        self.config = Config.model_validate(config)
        self.task: Task = task_from_config(self.config)
        if valid is not None and isinstance(self.task, ClassificationTask):
            self.task.splits["valid"] = valid
        self.supercircuit = build_supercircuit(self.config, self.task.n_wires)
        with torch.no_grad():
            self.supercircuit.weights.copy_(weights)
        self.device = get_device(self.config.device)
        self.search = self.config.search

    def evaluate(self, genome: Genome) -> dict[str, Any]:
        """All objectives and cost figures of `genome`, with the seconds each part took."""
        t0 = time.perf_counter()
        sub = self.supercircuit.subcircuit(genome.arch)
        out: dict[str, Any] = {
            "n_params": sub.n_params,
            **{f"logical_{k}": v for k, v in sub.n_gates().items()},
        }
        circuit = sub.to_qiskit(bound=True, encoder=self.task.encoder, n_inputs=self.task.n_inputs)
        candidate = noise.transpile_candidate(
            circuit, self.device, genome.layout or None, self.search.optimization_level, seed=self.config.seed
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
        out.update(self._task_metrics(sub, circuit, candidate, genome))
        t2 = time.perf_counter()
        if "expressibility" in self.search.objectives:
            out["expressibility"] = metrics.expressibility(
                sub, n_samples=self.search.expressibility_samples, seed=self.config.seed
            )
        if "entangling_capability" in self.search.objectives:
            out["entangling_capability"] = metrics.entangling_capability(
                sub, n_samples=self.search.expressibility_samples, seed=self.config.seed
            )
        out.update(seconds_transpile=t1 - t0, seconds_score=t2 - t1, seconds_total=time.perf_counter() - t0)
        return out

    def _task_metrics(self, sub: Subcircuit, circuit, candidate, genome: Genome) -> dict[str, float]:
        noiseless = not self.search.noise_aware
        if isinstance(self.task, ClassificationTask):
            x, y = self.task.inputs("valid", self.search.valid_samples)
            if noiseless:
                return self.task.evaluate(sub, "valid", self.search.valid_samples)
            values = _input_columns(candidate.circuit, x.numpy())
            probs = noise.noisy_probabilities(
                candidate, self.device, values, shots=self.search.shots, seed=self.config.seed
            )
            return self.task.metrics_from_z(noise.z_expectations(probs, self.task.n_wires), y)
        if noiseless:
            result = self.task.evaluate(sub)
            return {"loss": result["energy"], "energy": result["energy"]}
        probs_by_basis = {}
        for basis in self.task.measurement_bases():
            measured = noise.transpile_candidate(
                noise.basis_rotation(circuit, basis[::-1]),  # qiskit's labels put qubit 0 last
                self.device,
                genome.layout or None,
                self.search.optimization_level,
                seed=self.config.seed,
            )
            probs_by_basis[basis] = noise.noisy_probabilities(
                measured, self.device, None, shots=self.search.shots, seed=self.config.seed
            )[0]
        energy = self.task.energy_from_probabilities(probs_by_basis)
        return {"loss": energy, "energy": energy}


def _input_columns(circuit, x: np.ndarray) -> np.ndarray:
    """Per-sample values of the circuit's parameters (qiskit's order), read from the features."""
    columns = [p.index for p in circuit.parameters]
    return x[:, columns]


def evaluator_payload(config: Config, supercircuit: SuperCircuit, task: Task) -> dict[str, Any]:
    """What each worker receives once: the config, the shared weights and the validation data."""
    valid = None
    if isinstance(task, ClassificationTask):
        valid = task.inputs("valid", config.search.valid_samples)
    return {"config": config.model_dump(), "weights": supercircuit.weights.detach().clone(), "valid": valid}
