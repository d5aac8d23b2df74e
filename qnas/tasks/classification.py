"""Classification: features encoded into angles (4x4_ryzxy by default), a <Z> readout, NLL loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from qnas.measure import z_expectations
from qnas.sim import expval_z
from qnas.tasks.base import LabelledSplits, Task
from qnas.tasks.encoders import DEFAULT_ENCODER, FEATURE_MAPS, get_encoder, n_features_read

N_WIRES = 4


def readout_logits(z: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Logits from the per-qubit <Z> (B, n_wires): class c reads a group of qubits.

    One qubit per class when the counts match; consecutive groups of n_wires / n_classes
    qubits summed when they divide (QuantumNAS: 2 classes on 4 qubits read (0, 1) and
    (2, 3)); otherwise the first n_classes qubits.
    """
    n_wires = z.shape[1]
    if n_classes == n_wires:
        return z
    if n_classes > n_wires:
        raise ValueError(f"no readout for {n_classes} classes on {n_wires} qubits")
    if n_wires % n_classes == 0:
        return z.view(-1, n_classes, n_wires // n_classes).sum(-1)
    return z[:, :n_classes]


def calibrated_loss(logits: torch.Tensor, y: torch.Tensor) -> float:
    """NLL after the one temperature that fits best: min over T >= 0 of NLL(softmax(T * logits)).

    Noise on a device shrinks every <Z> towards 0, which raises the plain loss even when
    the predicted classes (the argmax, so the accuracy) do not change. Fitting a
    temperature (Guo et al., ICML 2017) takes the shrinking out and leaves what noise
    does to the separation of the classes, so it ranks circuits of different depths
    fairly, and more finely than accuracy.
    """
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        return F.nll_loss(F.log_softmax(t * logits, dim=1), y).item()

    # NLL(T) is convex in T; its minimiser for logits in [-2, 2] lies well inside (0, 200).
    result = minimize_scalar(nll, bounds=(0.0, 200.0), method="bounded", options={"xatol": 1e-4})
    return float(min(result.fun, nll(1.0)))


@dataclass
class ClassificationTask(LabelledSplits, Task):
    """A labelled data set split into train/valid/test, encoded into angles in [0, pi]."""

    name: str
    classes: Sequence[int]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    # The logits are logit_scale * <Z>. With <Z> in [-1, 1] and scale 1 (QuantumNAS), softmax
    # cannot get confident, so the NLL keeps pulling on samples already classified right;
    # a scale of 4 lets training spend its steps on the wrong ones (measured, trained alone:
    # 4 blocks 81.0% -> 83.5% test accuracy, 3 seeds). Accuracy and calibrated_loss do not
    # depend on it; only training and the plain loss do.
    logit_scale: float = 1.0
    n_wires: int = N_WIRES
    encoder_name: str = DEFAULT_ENCODER
    input_description: str = (
        "x[i] is pixel (i // 4, i % 4) of the image average-pooled to 4x4, read row by row, scaled from "
        "[0, 1] to [0, pi]"
    )
    kind: str = "classification"
    metric: str = "accuracy"
    higher_is_better: bool = True
    metric_names: tuple[str, ...] = ("loss", "calibrated_loss", "accuracy")
    final_split: str = "test"
    # The encoder the splits' features were computed for (FEATURE_MAPS), so a copy is not mapped twice.
    prepared_for: str | None = None

    def __post_init__(self) -> None:
        if len(self.classes) > self.n_wires:
            raise ValueError(
                f"task {self.name}: {len(self.classes)} classes on {self.n_wires} qubits; the readout needs "
                f"n_wires >= n_classes"
            )
        self.encoder = get_encoder(self.encoder_name, self.n_wires)
        self.n_inputs = int(self.splits["train"][0].shape[1])
        if self.encoder_name in FEATURE_MAPS and self.prepared_for != self.encoder_name:
            self._map_features(*FEATURE_MAPS[self.encoder_name])
        wanted = n_features_read(self.encoder)
        if 0 < wanted < self.n_inputs:
            # The encoder reads fewer features than the samples have: keep the most telling ones.
            self.splits = reduce_features(self.splits, wanted, seed=0)
            self.input_description = (
                f"x[i] is principal component i of the samples' {self.n_inputs} features (fitted on the "
                f"training split), scaled to [0, pi] by its training range; the features: {self.input_description}"
            )
            self.n_inputs = wanted
        if wanted > self.n_inputs:
            raise ValueError(
                f"task {self.name}: encoder {self.encoder_name!r} on {self.n_wires} wires reads {wanted} "
                f"features; the samples have {self.n_inputs}"
            )

    def _map_features(self, reads, prepare) -> None:
        """Turn the features into what the encoder reads (e.g. amplitudes into Möttönen angles)."""
        if self.prepared_for is not None:
            raise ValueError(
                f"task {self.name}: features prepared for encoder {self.prepared_for!r} cannot feed {self.encoder_name!r}"
            )
        wanted = reads(self.n_wires)
        if self.n_inputs < wanted:
            raise ValueError(
                f"task {self.name}: encoder {self.encoder_name!r} on {self.n_wires} wires reads {wanted} "
                f"features; the samples have {self.n_inputs}"
            )
        if self.n_inputs > wanted:
            self.splits = reduce_features(self.splits, wanted, seed=0)
            self.input_description = f"the first {wanted} principal components of: {self.input_description}"
        self.splits = {
            split: (torch.tensor(prepare(x.double().numpy(), self.n_wires), dtype=torch.float32), y)
            for split, (x, y) in self.splits.items()
        }
        self.input_description = (
            f"the {wanted} features, normalized, are the state's amplitudes (qubit 0 most significant); "
            f"x[i] is the i-th angle of their state preparation (qnas.tasks.amplitude.prepare); the features: "
            f"{self.input_description}"
        )
        self.n_inputs = int(self.splits["train"][0].shape[1])
        self.prepared_for = self.encoder_name

    def describe_inputs(self) -> list[str]:
        return [self.input_description, f"encoder: {self.encoder_name}"]

    def describe_readout(self) -> list[str]:
        groups = readout_logits(torch.eye(self.n_wires), self.n_classes).T
        reads = ", ".join(
            f"class {c} ({label}): qubits {torch.nonzero(groups[c]).flatten().tolist()}"
            for c, label in enumerate(self.classes)
        )
        return [
            "readout: measure every qubit in Z; <Z_q> = (shots with bit q = 0 - shots with bit q = 1) / shots",
            f"prediction: the class whose qubits' <Z> sum is largest; {reads}",
        ]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def features(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return batch[0]

    def outputs_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """Per-qubit <Z> (N, n_wires)."""
        return expval_z(state, self.n_wires)

    def outputs_from_probabilities(self, probs_by_basis: dict[str, np.ndarray]) -> np.ndarray:
        (probs,) = probs_by_basis.values()
        return z_expectations(probs, self.n_wires)

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) from per-qubit <Z> (B, n_wires)."""
        return self.logit_scale * readout_logits(z, self.n_classes)

    def loss_from_outputs(
        self, outputs: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Mean NLL of the <Z> readout over the batch, per parameter vector: (K,)."""
        _, y = batch
        k, b, n = outputs.shape
        logits = self.readout(outputs.reshape(k * b, n))
        nll = F.nll_loss(F.log_softmax(logits, dim=1), y.repeat(k), reduction="none")
        return nll.view(k, b).mean(1)

    def metrics_from_outputs(
        self, outputs: torch.Tensor | np.ndarray, samples: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, float]:
        """Loss, temperature-calibrated loss and accuracy from per-qubit <Z> (N, n_wires)."""
        y = samples[1]
        logits = self.readout(torch.as_tensor(np.asarray(outputs), dtype=torch.float64))
        loss = F.nll_loss(F.log_softmax(logits, dim=1), y).item()
        accuracy = (logits.argmax(1) == y).double().mean().item()
        return {"loss": loss, "calibrated_loss": calibrated_loss(logits, y), "accuracy": accuracy}


def reduce_features(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], n_features: int, seed: int, always: bool = False
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits with their angles reduced to `n_features` by PCA fitted on the training split only.

    Each component is then scaled to [0, pi] by its range on the training split (clipped
    outside it), so no statistic of the validation or test samples leaks into training.
    With as many features as the samples have, they are left as they are unless `always`
    (then they become all their principal components, most telling first).
    """
    from sklearn.decomposition import PCA

    x_train = splits["train"][0].double().numpy()
    if n_features > x_train.shape[1] or (n_features == x_train.shape[1] and not always):
        return splits
    pca = PCA(n_components=n_features, random_state=seed).fit(x_train)
    z_train = pca.transform(x_train)
    low, high = z_train.min(0), z_train.max(0)
    span = np.where(high > low, high - low, 1.0)
    out = {}
    for name, (x, y) in splits.items():
        z = np.clip((pca.transform(x.double().numpy()) - low) / span, 0.0, 1.0) * np.pi
        out[name] = (torch.tensor(z, dtype=torch.float32), y)
    return out


def select_classes(
    features: np.ndarray, labels: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of `classes`, relabelled 0..k-1, features in [0, 1] scaled to angles in [0, pi]."""
    keep = np.isin(labels, classes)
    return features[keep] * np.pi, np.searchsorted(np.asarray(classes), labels[keep])


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def split_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    seed: int,
    test: float = 0.3,
    valid: float = 0.15,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified train/valid/test split of the samples of `classes` (test=0: no test split)."""
    from sklearn.model_selection import train_test_split

    x, y = select_classes(features, labels, classes)
    out = {}
    if test > 0:
        x, x_test, y, y_test = train_test_split(x, y, test_size=test, random_state=seed, stratify=y)
        out["test"] = as_tensors(x_test, y_test)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x, y, test_size=valid / (1 - test), random_state=seed, stratify=y
    )
    return {"train": as_tensors(x_train, y_train), "valid": as_tensors(x_valid, y_valid), **out}
