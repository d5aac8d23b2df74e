"""Training-free proxies that rank circuits before (or instead of) their full noisy score.

- `clifford_noise_resilience` (CNR) and `representational_capacity` (RepCap) follow
  Élivágar (Anagolum et al., "Élivágar: Efficient Quantum Circuit Search for
  Classification", ASPLOS 2024), whose composite score is RepCap x CNR^0.5
  (`elivagar_score`).
- `gradient_variance` measures trainability: the variance of the loss gradient over
  random parameter draws, which falls exponentially with the qubit count on a barren
  plateau (McClean et al., "Barren plateaus in quantum neural network training
  landscapes", Nat. Commun. 2018).

CNR runs on stim (Gidney, Quantum 2021), a stabilizer simulator, so its cost grows with
the gates and not with 2^n: it scores 100+-qubit circuits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import stim
import torch
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Kraus, Operator, Pauli
from qiskit_aer.noise import QuantumError

from qnas import noise_model
from qnas.devices import Device
from qnas.sim import Layer, run
from qnas.supercircuit import Subcircuit
from qnas.tasks.base import Task
from qnas.transpiled import TranspiledCandidate

# Pauli labels in the order of stim's PAULI_CHANNEL_1 / PAULI_CHANNEL_2 arguments (identity first,
# left out of the arguments); in a pair the first letter acts on the first target.
_PAULIS_1 = ("I", "X", "Y", "Z")
_PAULIS_2 = tuple(a + b for a in _PAULIS_1 for b in _PAULIS_1)
# Quarter turns: every rotation angle of a Clifford replica is k * pi/2.
_QUARTER = np.pi / 2


def pauli_twirl(error: QuantumError) -> np.ndarray:
    """Return the Pauli-twirled probabilities of a 1- or 2-qubit error, in stim's order (identity first).

    Twirling a channel with Kraus operators K_k over the Pauli group leaves the Pauli
    channel with p(P) = sum_k |Tr(P K_k)|^2 / d^2: the diagonal of its chi matrix. For
    two qubits the label "AB" has A on the error's first qubit.
    """
    kraus = Kraus(error.to_quantumchannel()).data
    n = error.num_qubits
    if n not in (1, 2):
        raise ValueError(f"Pauli twirl of a {n}-qubit error; qnas twirls 1- and 2-qubit errors")
    labels = _PAULIS_1 if n == 1 else _PAULIS_2
    d = 2**n
    # qiskit's labels read right to left (qubit 0 last); stim's pair reads left to right.
    mats = [Pauli(label[::-1]).to_matrix() for label in labels]
    probs = np.array([sum(abs(np.trace(p @ k)) ** 2 for k in kraus) / d**2 for p in mats])
    return np.clip(probs / probs.sum(), 0.0, 1.0)


@functools.lru_cache(maxsize=65536)
def _gate_twirl(device: Device, name: str, physical: tuple[int, ...]) -> tuple[float, ...] | None:
    error = noise_model.gate_error(device, name, physical)
    return None if error is None else tuple(pauli_twirl(error)[1:])


@functools.lru_cache(maxsize=65536)
def _idle_twirl(device: Device, qubit: int, seconds: float) -> tuple[float, ...] | None:
    error = noise_model.idle_error(device, qubit, seconds)
    return None if error is None else tuple(pauli_twirl(error)[1:])


@functools.lru_cache(maxsize=4096)
def _clifford_gate(name: str, quarters: tuple[int, ...]) -> stim.Circuit:
    """Return qiskit's gate `name` with angles quarters * pi/2 as a stim circuit on targets 0, 1, ..."""
    template = get_standard_gate_name_mapping().get(name)
    if template is None:
        raise ValueError(f"gate {name!r} is not one of qiskit's standard gates; CNR cannot replace it")
    gate = template.base_class(*(q * _QUARTER for q in quarters)) if quarters else template
    try:
        tableau = stim.Tableau.from_unitary_matrix(Operator(gate).data, endian="little")
    except ValueError:
        raise ValueError(
            f"gate {name!r} is not a Clifford gate; CNR needs rotations it can set to k*pi/2"
        ) from None
    return tableau.to_circuit()


def _gate_text(gate: stim.Circuit, targets: Sequence[int]) -> str:
    """Return `gate` (on targets 0, 1, ...) as stim text on `targets`."""
    lines = []
    for inst in gate:
        args = inst.gate_args_copy()
        head = inst.name + (f"({_numbers(args)})" if args else "")
        lines.append(" ".join([head, *(str(targets[t.value]) for t in inst.targets_copy())]))
    return "\n".join(lines)


def _numbers(values: Sequence[float]) -> str:
    return ",".join(f"{float(v):.17g}" for v in values)


def clifford_replicas(
    candidate: TranspiledCandidate, device: Device, replicas: int, rng: np.random.Generator
) -> list[tuple[stim.Circuit, stim.Circuit]]:
    """Return (noiseless, noisy) stim circuits of `replicas` Clifford replicas of a transpiled candidate.

    Every rotation angle of the transpiled circuit (bound or a free input) becomes a
    uniformly random multiple of pi/2; the fixed gates (sx, x, ecr, cz, ...) are Clifford
    already, so a replica keeps the candidate's gates, routing and schedule. The noisy
    replica carries the device's errors as their Pauli twirls: after each gate, over each
    scheduled delay (thermal relaxation) and, as a symmetric flip with the mean of
    P(0|1) and P(1|0), before each measurement (readout twirling).
    """
    circuit = candidate.circuit
    dt = device.backend.target.dt
    measured = candidate.measured_local_qubits
    physical_measured = [candidate.active_qubits[q] for q in measured]
    readout = [
        float((m[0, 1] + m[1, 0]) / 2) for m in noise_model.device_readout_matrices(device, physical_measured)
    ]
    # Each step: (stim text of each choice of quarter turns, noise text after it).
    steps: list[tuple[list[str], str]] = []
    for inst in circuit.data:
        op = inst.operation
        local = tuple(circuit.find_bit(q).index for q in inst.qubits)
        physical = tuple(candidate.active_qubits[q] for q in local)
        if op.name == "barrier":
            continue
        if op.name == "delay":
            twirl = _idle_twirl(device, physical[0], noise_model.seconds(op.duration, op.unit, dt))
            choices = [""]
        else:
            twirl = _gate_twirl(device, op.name, physical)
            n_angles = len(op.params)
            choices = [
                _gate_text(_clifford_gate(op.name, tuple(int(q) for q in quarters)), local)
                for quarters in np.ndindex(*([4] * n_angles))
            ]
        noise = ""
        if twirl is not None and sum(twirl) > 0:
            channel = "PAULI_CHANNEL_1" if len(local) == 1 else "PAULI_CHANNEL_2"
            noise = f"{channel}({_numbers(twirl)}) {' '.join(map(str, local))}"
        steps.append((choices, noise))
    clean_tail = "\n".join(f"M {q}" for q in measured)
    noisy_tail = "\n".join(f"M({_numbers([p])}) {q}" for q, p in zip(measured, readout, strict=True))
    out = []
    for _ in range(replicas):
        picks = [choices[int(rng.integers(len(choices)))] for choices, _ in steps]
        clean = "\n".join([*(p for p in picks if p), clean_tail])
        noisy = "\n".join(
            [*(t for p, (_, n) in zip(picks, steps, strict=True) for t in (p, n) if t), noisy_tail]
        )
        out.append((stim.Circuit(clean), stim.Circuit(noisy)))
    return out


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Return the total-variation distance of the empirical outcome distributions of shots `a` and `b` (bool rows)."""
    rows = np.packbits(np.concatenate([a, b]), axis=1)
    _, which = np.unique(rows, axis=0, return_inverse=True)
    which = which.reshape(-1)
    n = int(which.max()) + 1
    p = np.bincount(which[: len(a)], minlength=n) / len(a)
    q = np.bincount(which[len(a) :], minlength=n) / len(b)
    return float(0.5 * np.abs(p - q).sum())


def clifford_noise_resilience(
    candidate: TranspiledCandidate, device: Device, replicas: int = 32, shots: int = 1024, seed: int = 0
) -> float:
    """Return Élivágar's Clifford noise resilience: 1 - mean TVD of noisy and noiseless Clifford replicas.

    Anagolum et al. (ASPLOS 2024), Sec. 5: replace every rotation by a random Clifford,
    sample each of `replicas` replicas `shots` times noiseless and noisy, and average the
    total-variation distance of the two outcome distributions (Élivágar: 32 replicas,
    1024 shots). The device's non-Pauli channels (amplitude damping in T1, asymmetric
    readout) enter as their Pauli-twirled approximations (`clifford_replicas`): a
    stabilizer simulator runs only Pauli noise. Both distributions are estimated from
    shots, as Élivágar does, so the TVD carries shot noise that grows with the number of
    distinct outcomes; rankings share it.
    """
    rng = np.random.default_rng(seed)
    tvds = []
    for clean, noisy in clifford_replicas(candidate, device, replicas, rng):
        sampler_seed = int(rng.integers(2**63))
        a = clean.compile_sampler(seed=sampler_seed).sample(shots)
        b = noisy.compile_sampler(seed=sampler_seed).sample(shots)
        tvds.append(total_variation(a, b))
    return 1.0 - float(np.mean(tvds))


def readout_wires(task: Task) -> list[int]:
    """Return the logical wires a classifier's readout reads (the qubits whose <Z> make its logits)."""
    from qnas.tasks.classification import readout_logits

    groups = readout_logits(torch.eye(task.n_wires), task.n_classes)
    return sorted(int(w) for w in torch.nonzero(groups.sum(1)).flatten())


def _with_weights(sub: Subcircuit, weights: torch.Tensor) -> Subcircuit:
    return Subcircuit(sub.genes, sub.n_wires, sub.layers, weights, sub.head)


def _random_weights(sub: Subcircuit, rng: np.random.Generator) -> torch.Tensor:
    """The subcircuit's weight vector with its active angles drawn uniformly from [0, 2pi)."""
    weights = sub.weights.detach().double().clone()
    active = sub.parameter_indices()
    weights[active] = torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=len(active)))
    return weights


def reduced_similarity(states: torch.Tensor, n_wires: int, wires: Sequence[int]) -> np.ndarray:
    """Return S[a, b], the mean over `wires` of Tr(rho_a rho_b)^2 of the states' one-qubit reduced density matrices.

    Élivágar's similarity in its single-qubit form (compute_reduced_similarity with
    single_qubit=True), the form that matches a readout of per-qubit <Z>: on the whole
    pure state, Tr(rho_a rho_b) = |<a|b>|^2 would not depend on the circuit after the
    encoder at all, since a unitary keeps every overlap. The states (N, 2**n) are pure,
    so every Tr rho is 1.
    """
    n = states.shape[0]
    psi = states.reshape(n, *[2] * n_wires)
    total = torch.zeros(n, n, dtype=torch.float64)
    for w in wires:
        a = psi.movedim(1 + w, 1).reshape(n, 2, -1)
        rho = a @ a.conj().transpose(1, 2)
        total += torch.einsum("aij,bji->ab", rho, rho).real.square()
    return (total / len(wires)).numpy()


def representational_capacity(
    sub: Subcircuit,
    task: Task,
    samples_per_class: int = 16,
    param_samples: int = 32,
    seed: int = 0,
) -> float:
    """Return Élivágar's representational capacity of `sub` after the task's encoder.

    Anagolum et al. (ASPLOS 2024), Sec. 6: for each of `param_samples` random parameter
    draws, the similarity matrix of the encoded training samples' reduced states on the
    readout qubits, S = Tr(rho_a rho_b)^2 averaged over those qubits (`reduced_similarity`), is thresholded at its mean off-diagonal value;
    the thresholded matrices are averaged and compared with the ideal one (1 within a
    class, 0 across), each cross-class entry weighted 1/(C - 1):
    RepCap = 1 - sum(((ideal - mean) * weight)^2) / N^2. 1 means states of one class
    coincide and states of different classes are far apart under every draw; a circuit
    that maps every sample to the same state scores 1 - 1/C.
    """
    if task.kind != "classification":
        raise ValueError(
            f"representational_capacity needs a classification task; {task.name} is a {task.kind}"
        )
    rng = np.random.default_rng(seed)
    x, y = task.samples("train")
    picked = []
    for c in range(task.n_classes):
        members = np.flatnonzero(y.numpy() == c)
        picked.extend(rng.choice(members, size=min(samples_per_class, len(members)), replace=False))
    picked = np.asarray(picked)
    labels = y.numpy()[picked]
    features = task.features((x[picked], y[picked])).double()
    ideal = (labels[:, None] == labels[None, :]).astype(float)
    weight = ideal + (1 - ideal) / max(task.n_classes - 1, 1)
    n = len(picked)
    wires = readout_wires(task)
    mean = np.zeros((n, n))
    with torch.no_grad():
        for _ in range(param_samples):
            state = task.state(
                _with_weights(sub, _random_weights(sub, rng)), features, dtype=torch.complex128
            )
            similarity = reduced_similarity(state, task.n_wires, wires)
            threshold = (similarity.sum() - np.trace(similarity)) / (n * (n - 1))
            mean += (similarity > threshold) / param_samples
    return float(1.0 - np.sum(((ideal - mean) * weight) ** 2) / n**2)


def elivagar_score(repcap: float, cnr: float, noise_importance: float = 0.5) -> float:
    """Return Élivágar's composite score RepCap x CNR^noise_importance (the paper uses 0.5)."""
    return float(repcap * max(cnr, 0.0) ** noise_importance)


def gradient_variance(
    layers: Sequence[Layer],
    n_wires: int,
    weights: torch.Tensor,
    active: Sequence[int],
    cost: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor | None = None,
    draws: int = 64,
    seed: int = 0,
) -> float:
    """Return the mean over active angles of Var[dC/d theta] over `draws` uniform draws of the angles.

    McClean et al. (Nat. Commun. 2018): on a barren plateau the variance of every partial
    derivative falls exponentially with the number of qubits, so gradient-based training
    stalls. `cost` maps the final states (B, 2**n) to one number.
    """
    rng = np.random.default_rng(seed)
    active = list(active)
    if not active:
        return 0.0
    grads = []
    for _ in range(draws):
        w = weights.detach().double().clone()
        w[active] = torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=len(active)))
        w.requires_grad_(True)
        value = cost(run(layers, n_wires, weights=w, inputs=inputs, dtype=torch.complex128))
        (grad,) = torch.autograd.grad(value, w)
        grads.append(grad[active].numpy())
    return float(np.var(np.stack(grads), axis=0, ddof=1).mean())


def task_gradient_variance(
    sub: Subcircuit, task: Task, n_samples: int = 16, draws: int = 64, seed: int = 0
) -> float:
    """Return `gradient_variance` of the task's noiseless training loss on its first `n_samples` training samples."""
    batch = task.samples("train", n_samples)
    x = task.features(batch).double()
    bound = task.bind(sub)  # a classical head keeps its weights; only the angles are drawn

    def cost(state: torch.Tensor) -> torch.Tensor:
        return bound.loss_from_outputs(task.outputs_from_state(state)[None], batch)[0]

    layers = [*task.encoder, *sub.layers]
    angles = [i for i in sub.parameter_indices() if i not in set(sub.head)]
    return gradient_variance(layers, task.n_wires, sub.weights.detach(), angles, cost, x, draws, seed)
