"""Training-free circuit metrics: expressibility, entangling capability, parameter count.

Both descriptors follow Sim, Johnson & Aspuru-Guzik, "Expressibility and entangling
capability of parameterized quantum circuits" (Adv. Quantum Technol. 2019), and run
batched on qnas's torch simulator: every sampled parameter set is one row of the
`inputs` of `qnas.sim.run`, so thousands of states cost one pass through the circuit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from qiskit import QuantumCircuit

from qnas.qiskit_bridge import from_qiskit
from qnas.sim import Layer, run

_CHUNK = 4096  # rows per simulator pass: bounds memory for wider circuits


class SubcircuitLike(Protocol):
    """What the metrics need from a qnas Subcircuit."""

    n_wires: int
    layers: list[Layer]
    weights: torch.Tensor

    def parameter_indices(self) -> list[int]: ...


Circuit = QuantumCircuit | SubcircuitLike


def _as_batched(circuit: Circuit) -> tuple[list[Layer], int, np.ndarray, list[int]]:
    """Return (layers reading per-row inputs, n_wires, base parameter row, indices to sample)."""
    if isinstance(circuit, QuantumCircuit):
        layers, free, fixed = from_qiskit(circuit)
        n_wires = circuit.num_qubits
        base = np.concatenate([np.zeros(len(free)), fixed])
        sampled = list(range(len(free)))
    else:
        layers = list(circuit.layers)
        n_wires = int(circuit.n_wires)
        base = circuit.weights.detach().cpu().double().numpy().copy()
        sampled = [int(i) for i in circuit.parameter_indices()]
        if any(layer.source == "input" for layer in layers):
            raise ValueError("the circuit reads input features; pass the subcircuit without its encoder")
    # A weight layer reads row `r` of `inputs` exactly as it would read the weight vector.
    batched = [Layer(ly.gate, ly.wires, "input", ly.index) if ly.source == "weight" else ly for ly in layers]
    return batched, n_wires, base, sampled


def sample_states(circuit: Circuit, n_states: int, seed: int = 0) -> torch.Tensor:
    """Return (n_states, 2**n) complex128 states of `circuit`, its free angles uniform in [0, 2pi).

    Wire 0 is the most significant bit (qnas.sim's order).
    """
    layers, n_wires, base, sampled = _as_batched(circuit)
    rng = np.random.default_rng(seed)
    rows = np.tile(base, (n_states, 1))
    rows[:, sampled] = rng.uniform(0.0, 2 * np.pi, size=(n_states, len(sampled)))
    inputs = torch.from_numpy(rows)
    if inputs.shape[1] == 0:
        inputs = torch.zeros(n_states, 1, dtype=torch.float64)
    with torch.no_grad(), _one_thread():
        chunks = [
            run(layers, n_wires, inputs=inputs[i : i + _CHUNK], dtype=torch.complex128)
            for i in range(0, n_states, _CHUNK)
        ]
    return torch.cat(chunks)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: states of a few qubits are too small to pay for the thread pool.

    Measured here: torch.sin on 10,000 doubles takes 15 us on one thread and 4 ms on two
    when the cores are shared, which made expressibility 5x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def haar_fidelity_masses(n_qubits: int, n_bins: int = 75) -> np.ndarray:
    """Return the Haar probability of each of `n_bins` equal fidelity bins over [0, 1].

    P(F) = (N - 1)(1 - F)^(N - 2) with N = 2^n, so bin [l, u] has mass (1-l)^(N-1) - (1-u)^(N-1).
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    tail = (1.0 - edges) ** (2**n_qubits - 1)
    return tail[:-1] - tail[1:]


def expressibility_from_fidelities(fidelities: np.ndarray, n_qubits: int, n_bins: int = 75) -> float:
    """Return KL(P_circuit || P_Haar) (natural log) of a sample of fidelities (Sim et al. 2019)."""
    counts, _ = np.histogram(np.clip(fidelities, 0.0, 1.0), bins=n_bins, range=(0.0, 1.0))
    p = counts / counts.sum()
    q = haar_fidelity_masses(n_qubits, n_bins)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def expressibility(circuit: Circuit, n_samples: int = 5000, n_bins: int = 75, seed: int = 0) -> float:
    """Return the expressibility of `circuit`: KL divergence from Haar of its fidelity histogram.

    Sim, Johnson & Aspuru-Guzik (2019): F = |<psi(a)|psi(b)>|^2 over `n_samples`
    independent pairs of parameter sets, each angle uniform in [0, 2pi). Lower is more
    expressive; an idle n-qubit circuit gives (2^n - 1) ln(n_bins). `circuit` is a qiskit
    QuantumCircuit with free Parameters or a qnas Subcircuit (its active weights sampled).
    """
    states = sample_states(circuit, 2 * n_samples, seed)
    a, b = states[:n_samples], states[n_samples:]
    fidelities = (a.conj() * b).sum(dim=1).abs().square().numpy()
    return expressibility_from_fidelities(fidelities, _n_qubits(states), n_bins)


def meyer_wallach(states: torch.Tensor) -> torch.Tensor:
    """Return Q = 2 (1 - mean_k Tr rho_k^2) of each state (B,) (Meyer & Wallach 2002).

    `states` is (B, 2**n); Q is 0 for product states and 1 for GHZ states.
    """
    n = _n_qubits(states)
    purities = []
    for k in range(n):
        psi = states.reshape(states.shape[0], 2**k, 2, 2 ** (n - k - 1))
        rho = torch.einsum("bxiy,bxjy->bij", psi, psi.conj())
        purities.append(rho.abs().square().sum(dim=(1, 2)))
    return 2.0 * (1.0 - torch.stack(purities, dim=1).mean(dim=1))


def entangling_capability(circuit: Circuit, n_samples: int = 2000, seed: int = 0) -> float:
    """Return the mean Meyer-Wallach Q of `circuit` over `n_samples` sampled parameter sets.

    Sim, Johnson & Aspuru-Guzik (2019), with Q from Meyer & Wallach (2002). Same inputs as
    `expressibility`.
    """
    return float(meyer_wallach(sample_states(circuit, n_samples, seed)).mean())


def _n_qubits(states: Any) -> int:
    return int(states.shape[1]).bit_length() - 1
