"""The Task protocol: what the trainer, the scorer and the deploy path ask of a task.

Like Optuna's BaseSampler or qiskit's BackendV2, a task is asked, never checked: the
evaluator, the training loop, the gradient executors and the deploy path call the
methods below and never test which kind of task they hold. A new kind of task is a new
subclass; no other module changes.

A task measures *outputs* per sample: a row of numbers read off the circuit's final
state (per-qubit <Z> for a classifier, the energy for a VQE). Outputs come either from
the simulator's state (noiseless, differentiable) or from outcome probabilities measured
in the task's measurement bases (noisy simulation, hardware); the loss and the metrics
are classical functions of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qnas.sim import Layer, run
from qnas.supercircuit import Subcircuit

if TYPE_CHECKING:
    from qnas.devices import Device
    from qnas.transpiled import TranspiledCandidate

Batch = Any  # whatever `batches` yields and `features` reads: (x, y) for a classifier, None for a VQE
Samples = Any  # the samples of a split, as `samples` returns them (None: a task without data)


class Task(ABC):
    """A task on `n_wires` qubits whose circuits start with `encoder`, reading `n_inputs` features per sample."""

    name: str
    kind: str
    metric: str  # the figure reported to users, one of metric_names
    higher_is_better: bool
    metric_names: tuple[str, ...]  # what metrics_from_outputs returns, usable as search objectives
    final_split: str  # where the final scores of a run come from
    n_wires: int
    n_inputs: int
    encoder: list[Layer]
    # Classical weights the task's readout reads after measurement (a trainable head, e.g.
    # Quantum-Train's mapping model): kept at the end of the SuperCircuit's weight vector,
    # trained, fine-tuned, checkpointed and digested with the angles. 0: no head.
    n_head_params: int = 0

    # --- what an export says ---------------------------------------------------------

    def describe_inputs(self) -> list[str]:
        """Lines for an export's header: what each input feature is."""
        return []

    def describe_readout(self) -> list[str]:
        """Lines for an export's header: which qubits to measure and how counts become the task's result."""
        return []

    # --- a trainable head ------------------------------------------------------------

    def init_head(self, seed: int) -> torch.Tensor:
        """Return the head's initial weights (n_head_params,), seeded."""
        return torch.zeros(0, dtype=torch.float64)

    def bind(self, sub: Subcircuit) -> Task:
        """Return this task reading the head weights of `sub` (itself when it has no head).

        Whoever turns a subcircuit's outputs into a loss or metrics calls it first; the
        head stays differentiable, so backprop trains it with the angles.
        """
        return self

    def warm_start(self, sub: Subcircuit, epochs: int, seed: int) -> Subcircuit:
        """Return `sub` with its head alone re-fitted `epochs` epochs to its own outputs (a task with a head).

        A SuperCircuit's head is shared by every subcircuit, so inherited weights score
        every circuit through one compromise head; a short head-only fit before a
        candidate's score lets the circuits' differences show. Tasks without a head have
        nothing to fit (check_config refuses `search.head_refit_epochs` for them).
        """
        return sub

    def export_artifacts(self, sub: Subcircuit, folder: Path) -> list[Path]:
        """Write what a chosen circuit needs beside its QASM (e.g. generated weights); return the paths."""
        return []

    # --- data -------------------------------------------------------------------------

    @abstractmethod
    def samples(self, split: str, n_samples: int | None = None) -> Samples:
        """Return the samples of `split` (its first `n_samples` when given), or None for a task without data."""

    def n_samples(self, split: str) -> int | None:
        """Return how many samples `split` holds (None: a task without data)."""
        return None

    @abstractmethod
    def features(self, batch: Batch | Samples) -> torch.Tensor:
        """Return the encoder's inputs (B, n_inputs) of a batch or of samples (one empty row without data)."""

    @abstractmethod
    def n_batches(self, batch_size: int) -> int:
        """Return the training steps in one epoch."""

    @abstractmethod
    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        """Yield one epoch of training batches."""

    # --- measurement ------------------------------------------------------------------

    def measurement_bases(self) -> list[str]:
        """Return the bases a noisy score measures in: one letter X/Y/Z per logical qubit, qubit 0 first."""
        return ["Z" * self.n_wires]

    @abstractmethod
    def outputs_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """Return the outputs (N, d) read off final states (N, 2**n_wires) of the torch simulator."""

    @abstractmethod
    def outputs_from_probabilities(self, probs_by_basis: dict[str, np.ndarray]) -> np.ndarray:
        """Return the outputs (N, d) from outcome probabilities (N, 2**n_wires) in each measurement basis.

        Logical qubit 0 is the least significant bit of an outcome (qiskit's order).
        """

    @abstractmethod
    def loss_from_outputs(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Return the losses (K,) of K parameter vectors' outputs (K, B, d) on `batch`; differentiable."""

    @abstractmethod
    def metrics_from_outputs(self, outputs: torch.Tensor | np.ndarray, samples: Samples) -> dict[str, float]:
        """Return the metrics (every name of metric_names) of outputs (N, d) on `samples`."""

    def sampling_error(self, metrics: dict[str, float], n_samples: int | None) -> float | None:
        """Return the standard error of `metric` from a finite test set, or None where it has none."""
        return None

    # --- derived: what callers use -----------------------------------------------------

    def state(self, sub: Subcircuit, x: torch.Tensor, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """Return the final states (B, 2**n_wires) of `sub` after the encoder on inputs `x` (B, n_inputs)."""
        return run([*self.encoder, *sub.layers], self.n_wires, weights=sub.weights, inputs=x, dtype=dtype)

    def loss(self, sub: Subcircuit, batch: Batch) -> torch.Tensor:
        """Return the noiseless, differentiable loss of `sub` on one training batch."""
        outputs = self.outputs_from_state(self.state(sub, self.features(batch)))
        return self.bind(sub).loss_from_outputs(outputs[None], batch)[0]

    def metrics_from_probabilities(
        self, probs_by_basis: dict[str, np.ndarray], samples: Samples
    ) -> dict[str, float]:
        """Return the metrics of measured outcome probabilities (one (N, 2**n) array per basis)."""
        return self.metrics_from_outputs(self.outputs_from_probabilities(probs_by_basis), samples)

    def evaluate(
        self, sub: Subcircuit, split: str = "valid", n_samples: int | None = None
    ) -> dict[str, float]:
        """Return the noiseless metrics of `sub` on a split (its first `n_samples` when given)."""
        return self.noiseless_metrics(sub, self.samples(split, n_samples))

    @torch.no_grad()
    def noiseless_metrics(self, sub: Subcircuit, samples: Samples) -> dict[str, float]:
        """Return the noiseless metrics of `sub` on `samples` (double precision)."""
        state = self.state(sub, self.features(samples).double(), dtype=torch.complex128)
        return self.bind(sub).metrics_from_outputs(self.outputs_from_state(state), samples)

    def measurement_circuits(
        self, candidate: TranspiledCandidate, device: Device
    ) -> dict[str, TranspiledCandidate]:
        """Return the placed candidate measured in each of the task's bases: one transpilation, rotations appended.

        Scoring, noise-aware fine-tuning and deploy all measure through this one method.
        """
        return {basis: candidate.in_basis(device, basis) for basis in self.measurement_bases()}


class LabelledSplits:
    """The data half of a task on labelled samples: `splits` maps train/valid/test to (x, y) tensors.

    Shared by the tasks that train on labelled data (classification, Quantum-Train); the
    task says what the circuit reads of a sample (`features`).
    """

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def samples(self, split: str, n_samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and labels of a split, the first `n_samples` of them when given."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(self.splits)}")
        x, y = self.splits[split]
        return (x, y) if n_samples is None else (x[:n_samples], y[:n_samples])

    def n_samples(self, split: str) -> int:
        return len(self.samples(split)[1])

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self.splits["train"][0]) // batch_size)

    def batches(
        self, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches."""
        x, y = self.splits["train"]
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]

    def sampling_error(self, metrics: dict[str, float], n_samples: int | None) -> float | None:
        """sqrt(p (1 - p) / n): how far the accuracy on n test samples can stray from unseen data's."""
        p = metrics["accuracy"]
        return float(np.sqrt(p * (1 - p) / n_samples)) if n_samples else None
