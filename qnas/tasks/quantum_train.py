"""Quantum-Train: a parameterized circuit whose measured probabilities generate a classical network's weights.

Quantum-Train (Liu et al., arXiv 2405.11304; Quantum Parameter Adaptation, ICLR 2025):
an n-qubit circuit with only trainable angles (no data encoding) is measured in the
computational basis; a small classical *mapping model* turns each basis state's bits and
probability into one weight, and the first M of the 2^n such weights (n = ceil(log2 M))
are the weights of a classical target network. Training touches the circuit's angles and
the mapping model's weights, O(polylog M) in all, and the result is a purely classical
network: nothing is encoded into the circuit and no quantum hardware runs at inference.

In qnas the circuit is any subcircuit of a design space, and the mapping model is the
task's *head*: classical weights kept at the end of the SuperCircuit's weight vector,
trained with the angles by the same loop, shared by every subcircuit during SuperCircuit
training like the angles are, fine-tuned with the chosen circuit, and digested,
checkpointed and exported with it (`Task.n_head_params`, `Task.bind`).

The mapping model reads, for basis state i, its n bits as +-1 and 2^n p_i - 1 (the
probability relative to the uniform distribution, so a random circuit gives inputs of
order one at any n), and outputs w_i through tanh hidden layers. The weights into each
output unit of the target (a conv filter, a row of a linear layer) are then standardized
(zero mean, unit spread: weight standardization, Qiao et al., arXiv 1903.10520) and scaled
to torch's default initial spread times a learned gain, one per tensor: without it the raw
outputs share one sign and magnitude, and a ReLU network built from them starts dead
(measured: loss stuck at ln 10 for 30 epochs). Per unit, every filter starts at the same
spread and the network at chance; standardized whole per tensor (`standardize="tensor"`,
qnas before 2026-12-05), the CNN started far from it (loss 5.8) and ended 2.3 points
lower (docs/results.md, Quantum-Train, session 13). `label_smoothing` (Szegedy et al. 2016) regularizes the generated network's
training loss: it fits its training set either way and generalizes better with it.

`task.mapping: mps` replaces the MLP by a matrix product state over the same inputs
(`mps_mapping`, after the tensor-network mapping of Liu et al., arXiv 2409.06992).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qnas.sim import Layer
from qnas.tasks.base import LabelledSplits, Task

TARGETS = ("cnn", "mlp")


def target_network(kind: str, n_features: int = 64, n_classes: int = 10) -> nn.Module:
    """The classical network whose weights are generated: a small CNN for 8x8 images, or an MLP.

    cnn: conv 1->8 (3x3) + ReLU + max-pool, conv 8->16 (3x3) + ReLU + max-pool, linear 64->10
    (1898 weights for 8x8 digits). mlp: 64 -> 32 -> 10 with ReLU (2410 weights).
    """
    if kind == "cnn":
        side = round(math.sqrt(n_features))
        if side * side != n_features or side % 4:
            raise ValueError(
                f"the cnn target reads square images of side divisible by 4; got {n_features} features"
            )
        return nn.Sequential(
            nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (side // 4) ** 2, n_classes),
        )
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, n_classes))
    raise ValueError(f"unknown Quantum-Train target {kind!r}; allowed: {', '.join(TARGETS)}")


def n_weights(module: nn.Module) -> int:
    """M: the number of weights of a network."""
    return sum(p.numel() for p in module.parameters())


def mapping_sizes(n_qubits: int, hidden: Sequence[int]) -> list[tuple[int, int]]:
    """(in, out) of each linear layer of the mapping model: n bits and a probability in, one weight out."""
    widths = [n_qubits + 1, *hidden, 1]
    return list(itertools.pairwise(widths))


MAPPINGS = ("mlp", "mps")
STANDARDIZE = ("unit", "tensor")


def mapping_model(head: torch.Tensor, inputs: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
    """Apply the mapping MLP whose flat weights are `head` to inputs (..., n + 1); tanh between layers."""
    h, start = inputs, 0
    for i, (n_in, n_out) in enumerate(sizes):
        w = head[start : start + n_in * n_out].view(n_out, n_in)
        start += n_in * n_out
        b = head[start : start + n_out]
        start += n_out
        h = h @ w.T + b
        if i < len(sizes) - 1:
            h = torch.tanh(h)
    return h[..., 0]


def mps_shapes(n_qubits: int, bond: int) -> list[tuple[int, int, int]]:
    """(local dimension, left bond, right bond) of each core of the MPS mapping: n bits, then the probability."""
    bonds = [1] + [bond] * n_qubits + [1]
    return [(2, bonds[k], bonds[k + 1]) for k in range(n_qubits + 1)]


def mps_mapping(head: torch.Tensor, inputs: torch.Tensor, shapes: list[tuple[int, int, int]]) -> torch.Tensor:
    """Apply the matrix-product-state mapping whose flat cores are `head` to inputs (N, n + 1).

    The tensor-network mapping model of Liu et al. (arXiv 2409.06992): one core per input,
    contracted along a chain. A bit (+-1) picks one of its core's two matrices, so over the
    bits the MPS is a tensor train of the weight index (the compression of Novikov et al.'s
    TT layers); the probability enters through the last core as (1, tanh q), so each
    weight is a(i) + b(i) tanh(q_i) with a and b tensor trains of i.
    """
    n = len(shapes) - 1
    left, start = None, 0
    for k, (d, chi_l, chi_r) in enumerate(shapes):
        core = head[start : start + d * chi_l * chi_r].view(d, chi_l, chi_r)
        start += d * chi_l * chi_r
        if k < n:
            picked = core[(inputs[:, k] > 0).long()]  # (N, chi_l, chi_r): the matrix of bit k of each index
        else:
            q = torch.tanh(inputs[:, n])
            picked = core[0] + q[:, None, None] * core[1]
        left = picked[:, 0, :] if left is None else torch.bmm(left[:, None, :], picked)[:, 0, :]
    return left[:, 0]


@dataclass
class QuantumTrainTask(LabelledSplits, Task):
    """Train a classical network on `splits` with weights generated by a circuit on ceil(log2 M) qubits."""

    name: str
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    target: str = "cnn"
    hidden: tuple[int, ...] = (8, 8)  # the MLP mapping's hidden widths
    shots: int | None = None  # probabilities estimated from this many shots (None: exact)
    seed: int = 0
    n_classes: int = 10
    kind: str = "quantum_train"
    metric: str = "accuracy"
    higher_is_better: bool = True
    metric_names: tuple[str, ...] = ("loss", "accuracy")
    final_split: str = "test"
    n_inputs: int = 0
    encoder: list[Layer] = field(default_factory=list)
    head: torch.Tensor | None = field(default=None, repr=False)  # the bound mapping weights (see bind)
    mapping: str = "mlp"  # the mapping model: "mlp" or "mps" (a matrix product state)
    bond: int = 4  # the MPS mapping's bond dimension
    standardize: str = "unit"  # the generated weights standardized per output unit, or per "tensor"
    label_smoothing: float = 0.0  # of the training loss's cross-entropy (the metrics' loss is plain)

    def __post_init__(self) -> None:
        if self.mapping not in MAPPINGS:
            raise ValueError(f"task.mapping must be one of {', '.join(MAPPINGS)}, got {self.mapping!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"task.mapping_hidden must be positive layer widths, got {list(self.hidden)}")
        if self.standardize not in STANDARDIZE:
            raise ValueError(
                f"task.standardize must be one of {', '.join(STANDARDIZE)}, got {self.standardize!r}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"task.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.bond < 1:
            raise ValueError(f"task.mapping_bond must be a positive bond dimension, got {self.bond}")
        if self.shots is not None and self.shots < 1:
            raise ValueError(f"task.shots must be a positive number of shots, got {self.shots}")
        self.n_features = int(self.splits["train"][0].shape[1])
        self.network = target_network(self.target, self.n_features, self.n_classes)
        self.shapes = {k: v.shape for k, v in self.network.named_parameters()}
        self.n_target = n_weights(self.network)
        self.n_wires = max(1, math.ceil(math.log2(self.n_target)))
        self.sizes = mapping_sizes(self.n_wires, self.hidden)
        self.cores = mps_shapes(self.n_wires, self.bond)
        n_mapping = (
            sum(i * o + o for i, o in self.sizes)
            if self.mapping == "mlp"
            else sum(d * a * b for d, a, b in self.cores)
        )
        # The mapping model's weights, then one log-gain per generated tensor.
        self.n_head_params = n_mapping + len(self.shapes)
        fan_in = {k.rsplit(".", 1)[0]: int(np.prod(v[1:])) for k, v in self.shapes.items() if len(v) > 1}
        self.init_spread = {k: 1 / math.sqrt(3 * fan_in[k.rsplit(".", 1)[0]]) for k in self.shapes}
        index = torch.arange(2**self.n_wires)
        bits = (index[:, None] >> torch.arange(self.n_wires)) & 1  # qubit 0 = least significant bit
        self.bits = (2.0 * bits - 1.0).double()

    # --- what an export says -----------------------------------------------------------

    def describe_inputs(self) -> list[str]:
        return [
            "no inputs: the circuit has only trainable angles (Quantum-Train generates a network's weights)"
        ]

    def describe_readout(self) -> list[str]:
        model = (
            f"mapping MLP {[s[0] for s in self.sizes] + [1]}"
            if self.mapping == "mlp"
            else f"MPS mapping (bond {self.bond}, the probability through its last core)"
        )
        per = "per output unit (each filter, each row)" if self.standardize == "unit" else "per tensor"
        return [
            f"measure all {self.n_wires} qubits in Z; p_i = shots with outcome i / shots (qubit 0 = bit 0 of i)",
            f"weight i (i < {self.n_target}) = {model} of "
            f"(bits of i as +-1, 2^{self.n_wires} p_i - 1); the network they make is in generated_weights.pt",
            f"the weights standardized {per} and scaled by torch's initial spread times a learned gain per tensor",
            f"the weights fill a {self.target} ({self.n_target} weights) in torch's parameter order",
        ]

    # --- the head: the mapping model's weights -----------------------------------------

    def init_head(self, seed: int) -> torch.Tensor:
        """Initial mapping weights, seeded: for the MLP torch's default (uniform +-1/sqrt(fan_in)) for
        each layer; for the MPS each bit's matrix the identity plus N(0, 0.5^2 / bond) entries (so
        the chain's product neither vanishes nor explodes over n cores)."""
        gen = torch.Generator().manual_seed(seed)
        parts = []
        if self.mapping == "mps":
            for d, chi_l, chi_r in self.cores:
                noise = (
                    torch.randn(d, chi_l, chi_r, generator=gen, dtype=torch.float64) * 0.5 / math.sqrt(chi_r)
                )
                parts.append((torch.eye(chi_l, chi_r, dtype=torch.float64) + noise).reshape(-1))
        else:
            for n_in, n_out in self.sizes:
                bound = 1 / math.sqrt(n_in)
                parts.append(
                    (torch.rand(n_in * n_out + n_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
                )
        return torch.cat([*parts, torch.zeros(len(self.shapes), dtype=torch.float64)])

    def bind(self, sub) -> QuantumTrainTask:
        """This task reading the mapping weights of `sub` (its head), gradients kept."""
        if not sub.head:
            raise ValueError(
                f"task {self.name} needs a SuperCircuit built with its {self.n_head_params} mapping weights"
            )
        bound = type(self).__new__(type(self))  # a subclass binds as itself
        bound.__dict__.update(self.__dict__)
        bound.head = sub.weights[list(sub.head)]
        return bound

    # --- data --------------------------------------------------------------------------

    def features(self, batch) -> torch.Tensor:
        """No encoder: one circuit per step, whatever the batch."""
        return torch.zeros(1, 0)

    # --- measurement -------------------------------------------------------------------

    def outputs_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """The outcome probabilities (N, 2^n)."""
        return state.abs() ** 2

    def outputs_from_probabilities(self, probs_by_basis: dict[str, np.ndarray]) -> np.ndarray:
        (probs,) = probs_by_basis.values()
        return np.asarray(probs, dtype=np.float64)

    # --- the generated network ---------------------------------------------------------

    def _with_shots(self, probs: torch.Tensor, batch) -> torch.Tensor:
        """Probabilities estimated from `shots` draws; the gradient passes straight through.

        The draw is seeded by the config's seed and the batch itself, so a resumed
        training run and a re-scored candidate draw the same counts.
        """
        if self.shots is None:
            return probs
        x, y = batch
        key = zlib.crc32(y.numpy().tobytes() + x[:, 0].double().numpy().tobytes()) ^ self.seed
        gen = torch.Generator().manual_seed(key)
        p = probs.detach().double().clamp_min(0)
        counts = torch.stack(
            [torch.multinomial(row / row.sum(), self.shots, True, generator=gen) for row in p]
        )
        estimate = (
            torch.zeros_like(p).scatter_add_(1, counts, torch.ones_like(counts, dtype=p.dtype)) / self.shots
        )
        return probs + (estimate - probs).detach()

    def generated_weights(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The target network's weights generated from outcome probabilities (2^n,), by name."""
        if self.head is None:
            raise ValueError(
                f"task {self.name}: bind a subcircuit first (Task.bind), to read its mapping weights"
            )
        q = (2**self.n_wires) * probs.double() - 1.0
        inputs = torch.cat([self.bits.to(q.device), q[:, None]], dim=1)[: self.n_target]
        head = self.head.double()
        gains = head[-len(self.shapes) :].exp()
        mapping = head[: -len(self.shapes)]
        if self.mapping == "mlp":
            flat = mapping_model(mapping, inputs, self.sizes)
        else:
            flat = mps_mapping(mapping, inputs, self.cores)
        out, start = {}, 0
        for gain, (name, shape) in zip(gains, self.shapes.items(), strict=True):
            size = int(np.prod(shape))
            raw = flat[start : start + size]
            if self.standardize == "unit" and len(shape) > 1 and size > shape[0]:
                rows = raw.view(shape[0], -1)  # the weights into each output unit
                unit = (rows - rows.mean(1, keepdim=True)) / (rows.std(1, keepdim=True) + 1e-8)
            else:  # a bias, or the whole tensor
                spread = raw.std() if size > 1 else raw.abs()
                unit = (raw - raw.mean()) / (spread + 1e-8)
            out[name] = (unit * gain * self.init_spread[name]).reshape(shape)
            start += size
        return out

    def _logits(self, probs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        weights = self.generated_weights(probs)
        return torch.func.functional_call(self.network, weights, (x.double(),))

    def loss_from_outputs(self, outputs: torch.Tensor, batch) -> torch.Tensor:
        """Cross-entropy (label-smoothed as set) of the generated network on the batch, per parameter vector: (K,)."""
        _, y = batch
        probs = self._with_shots(outputs[:, 0], batch)
        smoothing = self.label_smoothing
        return torch.stack(
            [F.cross_entropy(self._logits(p, batch[0]), y, label_smoothing=smoothing) for p in probs]
        )

    def metrics_from_outputs(self, outputs, samples) -> dict[str, float]:
        """Loss and accuracy of the generated network on `samples`."""
        probs = torch.as_tensor(np.asarray(outputs.detach() if torch.is_tensor(outputs) else outputs))
        probs = self._with_shots(probs.reshape(1, -1).double(), samples)[0]
        with torch.no_grad():
            logits = self._logits(probs, samples[0])
        y = samples[1]
        return {
            "loss": F.cross_entropy(logits, y).item(),
            "accuracy": (logits.argmax(1) == y).double().mean().item(),
        }

    def refit_head(
        self, sub, probs: np.ndarray | torch.Tensor, epochs: int = 30, lr: float = 0.01, seed: int = 0
    ) -> torch.Tensor:
        """Return mapping weights re-trained on fixed outcome probabilities `probs` (2^n,); the angles stay.

        On hardware the circuit's probabilities are the device's, not the simulator's; the
        mapping model, a classical function of them, can be fitted to what the device
        gives (e.g. the noisy simulation of its calibration) with no further circuit
        runs. Adam on the training split, batches of 32, `epochs` passes.
        """
        probs = torch.as_tensor(np.asarray(probs.detach() if torch.is_tensor(probs) else probs))
        probs = probs.to(torch.float64).reshape(-1)
        head = torch.nn.Parameter(sub.weights.detach()[list(sub.head)].double().clone())
        optimizer = torch.optim.Adam([head], lr=lr)
        rng = np.random.default_rng(seed)
        bound = self.bind(sub)
        for _ in range(epochs):
            for batch in self.batches(32, rng):
                optimizer.zero_grad()
                bound.head = head
                bound.loss_from_outputs(probs[None, None], batch)[0].backward()
                optimizer.step()
        return head.detach()

    def warm_start(self, sub, epochs: int, seed: int):
        """`sub` with its mapping model re-fitted `epochs` epochs to its own noiseless probabilities.

        Every subcircuit of the SuperCircuit generates its weights through the one shared
        mapping model, so inherited losses differ little between circuits (the best 8 of
        a 64-candidate search within 0.02); fitted to each circuit's own probabilities, the
        mapping shows what that circuit can generate. The angles stay.
        """
        if not epochs:
            return sub
        with torch.no_grad():
            state = self.state(sub, self.features(None).double(), dtype=torch.complex128)
            probs = self.outputs_from_state(state)[0]
        weights = sub.weights.detach().to(torch.float64).clone()
        weights[list(sub.head)] = self.refit_head(sub, probs, epochs=epochs, seed=seed)
        return dataclasses.replace(sub, weights=weights)

    # --- what a finished run saves -----------------------------------------------------

    @torch.no_grad()
    def export_artifacts(self, sub, folder: Path) -> list[Path]:
        """Save the generated network as a plain torch state dict (noiseless probabilities)."""
        bound = self.bind(sub)
        state = bound.state(sub, self.features(None).double(), dtype=torch.complex128)
        weights = bound.generated_weights(bound.outputs_from_state(state)[0])
        path = folder / "generated_weights.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(
            {
                "target": self.target,
                "state_dict": {k: v.float().clone() for k, v in weights.items()},
                "n_target_weights": self.n_target,
                "n_trained": sub.n_params,
            },
            tmp,
        )
        tmp.replace(path)
        return [path]
