"""Benchmark noisy scoring of a digits4 candidate and the expressibility metric.

Prints: qnas's time to score one candidate on 300 samples on fake_quito against the
per-sample way of QuantumNAS-era code (bind, transpile and run 1024 shots on
AerSimulator.from_backend for each sample), the agreement with qiskit-aer's own noisy
simulation of the same transpiled circuit, fake_brisbane against fake_quito, and the
expressibility of a 4-qubit 2-block u3cu3 circuit.

    python scripts/bench_noise.py [--samples 300] [--baseline-samples 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit_aer import AerSimulator

from qnas.devices import get_device
from qnas.metrics import expressibility
from qnas.noise import noisy_probabilities
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks.encoders import get_encoder
from qnas.transpiled import transpile_candidate


def digits4_supercircuit(n_blocks: int = 2, seed: int = 0) -> SuperCircuit:
    """A u3cu3 SuperCircuit on 4 wires with `n_blocks` blocks and random weights."""
    return SuperCircuit(load_space("u3cu3"), 4, max_blocks=n_blocks, seed=seed)


def digits4_candidate(seed: int = 0) -> QuantumCircuit:
    """The 4x4_ryzxy encoder (16 input parameters) then 2 u3cu3 blocks with random bound weights."""
    sc = digits4_supercircuit(2, seed)
    return sc.subcircuit(sc.largest()).to_qiskit(bound=True, encoder=get_encoder("4x4_ryzxy", 4), n_inputs=16)


def score_qnas(
    circuit: QuantumCircuit, device_name: str, features: np.ndarray
) -> tuple[float, np.ndarray, object]:
    """Return (seconds, probabilities, candidate): transpile once, then all samples in one batch."""
    device = get_device(device_name)
    start = time.perf_counter()
    candidate = transpile_candidate(circuit, device, None)
    probs = noisy_probabilities(candidate, device, features)
    return time.perf_counter() - start, probs, candidate


def score_per_sample(circuit: QuantumCircuit, device_name: str, features: np.ndarray) -> float:
    """Return seconds for the QuantumNAS-era loop: bind, transpile, run 1024 shots, per sample."""
    backend = get_device(device_name).backend
    simulator = AerSimulator.from_backend(backend)
    measured = circuit.copy()
    measured.measure_all()
    start = time.perf_counter()
    for row in features:
        bound = measured.assign_parameters(row)
        simulator.run(transpile(bound, backend, optimization_level=2), shots=1024).result().get_counts()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--baseline-samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    circuit = digits4_candidate()
    features = np.random.default_rng(1).uniform(0, np.pi, (args.samples, 16))
    for name in ("fake_quito", "fake_brisbane"):
        start = time.perf_counter()
        _ = get_device(name).noise_model
        print(f"{name}: noise model built once per process in {time.perf_counter() - start:.2f} s")

    cold, probs, candidate = score_qnas(circuit, "fake_quito", features)
    warm = {
        name: statistics.median(score_qnas(circuit, name, features)[0] for _ in range(args.repeats))
        for name in ("fake_quito", "fake_brisbane")
    }
    device = get_device("fake_quito")
    aer = noisy_probabilities(candidate, device, features, engine="aer")
    per_sample = score_per_sample(circuit, "fake_quito", features[: args.baseline_samples])
    per_sample_total = per_sample / args.baseline_samples * args.samples

    print(
        f"\ncandidate on fake_quito: {candidate.n_2q} two-qubit gates, depth {candidate.depth}, "
        f"active qubits {candidate.active_qubits}, success probability {candidate.success_probability:.3f}"
    )
    print(
        f"qnas, {args.samples} samples, fake_quito: {warm['fake_quito'] * 1e3:.1f} ms "
        f"(median of {args.repeats}; first candidate, gate channels not yet cached: {cold * 1e3:.1f} ms)"
    )
    print(
        f"per-sample bind+transpile+1024 shots: {per_sample / args.baseline_samples * 1e3:.1f} ms/sample, "
        f"timed on {args.baseline_samples} samples, scaled to {args.samples}: {per_sample_total:.2f} s"
    )
    print(
        f"speed-up: {per_sample_total / warm['fake_quito']:.0f}x (first candidate: {per_sample_total / cold:.0f}x); goal >= 200x"
    )
    print(
        f"max |qnas - qiskit-aer density matrix| over {args.samples} x 16 probabilities: "
        f"{np.max(np.abs(probs - aer)):.2e} (goal <= 1e-6)"
    )
    print(
        f"fake_brisbane: {warm['fake_brisbane'] * 1e3:.1f} ms, "
        f"{warm['fake_brisbane'] / warm['fake_quito']:.2f}x fake_quito (goal within 2x)"
    )

    sc = digits4_supercircuit(2)
    free = sc.subcircuit(sc.largest()).to_qiskit(bound=False)
    expressibility(free, n_samples=100)  # warm-up: first-call overhead of torch
    start = time.perf_counter()
    value = expressibility(free, n_samples=5000)
    print(
        f"expressibility, 4-qubit 2-block u3cu3 ({free.num_parameters} free angles), 5000 pairs: "
        f"{value:.4f} in {time.perf_counter() - start:.3f} s (goal < 1 s)"
    )


if __name__ == "__main__":
    main()
