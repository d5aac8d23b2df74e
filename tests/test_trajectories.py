"""Monte-Carlo trajectories: the same probabilities as the exact engine within their standard error, seeded, bounded."""

import numpy as np
import pytest

from qnas.devices import get_device
from qnas.noise import Simulation, noisy_probability_groups
from qnas.sim.density import unitary_tensor
from qnas.sim.trajectories import kraus_operators
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks.encoders import get_encoder
from qnas.transpiled import transpile_candidate


def _candidate(n: int, device: str = "fake_guadalupe", blocks: int = 2):
    sc = SuperCircuit(load_space("u3cu3"), n, blocks, seed=0)
    circuit = sc.subcircuit(sc.largest()).to_qiskit(bound=True, encoder=get_encoder("ry", n), n_inputs=n)
    dev = get_device(device)
    candidate = transpile_candidate(circuit, dev, None, 2, 0, idle_noise=True)
    x = np.random.default_rng(0).uniform(0, np.pi, (4, n))
    return candidate, dev, x[:, [p.index for p in candidate.circuit.parameters]]


def test_kraus_operators_rebuild_the_channel():
    from qiskit.quantum_info import SuperOp
    from qiskit_aer.noise import depolarizing_error, thermal_relaxation_error

    from qnas.sim.density import superop_tensor

    error = thermal_relaxation_error(50e-6, 40e-6, 300e-9).tensor(
        thermal_relaxation_error(80e-6, 60e-6, 300e-9)
    )
    error = error.compose(depolarizing_error(0.03, 2))
    tensor = superop_tensor(SuperOp(error.to_quantumchannel()).data)
    kraus = kraus_operators(tensor)
    rebuilt = sum(unitary_tensor(k) for k in kraus)  # sum_i K_i (.) K_i^dagger
    assert np.allclose(rebuilt, tensor, atol=1e-12)
    assert np.allclose(sum(k.conj().T @ k for k in kraus), np.eye(4), atol=1e-12)  # trace preserving
    assert len(kraus) <= 16 and np.linalg.norm(kraus[0]) >= np.linalg.norm(kraus[-1])


@pytest.mark.parametrize("n", [5, 6])
def test_trajectories_agree_with_the_exact_engine_within_their_standard_error(n):
    candidate, device, values = _candidate(n)
    assert len(candidate.active_qubits) == n and candidate.n_2q > 20
    exact = noisy_probability_groups(candidate, device, values, simulation=Simulation(method="exact"))[0]
    groups = noisy_probability_groups(
        candidate,
        device,
        values,
        seed=3,
        simulation=Simulation(method="trajectories", trajectories=2048, groups=32),
    )
    mean = groups.mean(0)
    se = groups.std(0, ddof=1) / np.sqrt(len(groups))
    z = (mean - exact) / np.maximum(se, 1e-9)
    # Unbiased with a right-sized error: the squared z average 1 (a biased or mis-scaled estimate fails).
    assert 0.5 < np.mean(z**2) < 2.0, np.mean(z**2)
    assert np.abs(z).max() < 5
    assert np.allclose(mean.sum(1), 1, atol=1e-5)
    # Far from the noiseless answer: the test sees the noise, not only the circuit.
    noiseless = noisy_probability_groups(candidate, device, values, noiseless=True)[0]
    assert np.abs(noiseless - exact).max() > 20 * se.max()


def test_trajectories_are_seeded():
    candidate, device, values = _candidate(5)
    sim = Simulation(method="trajectories", trajectories=64)
    a = noisy_probability_groups(candidate, device, values, seed=1, simulation=sim)
    b = noisy_probability_groups(candidate, device, values, seed=1, simulation=sim)
    c = noisy_probability_groups(candidate, device, values, seed=2, simulation=sim)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_auto_switches_to_trajectories_above_the_exact_limit():
    candidate, device, values = _candidate(5)
    assert (
        len(noisy_probability_groups(candidate, device, values, simulation=Simulation(exact_max_qubits=5)))
        == 1
    )
    assert (
        len(noisy_probability_groups(candidate, device, values, simulation=Simulation(exact_max_qubits=4)))
        == 8
    )


def test_a_candidate_over_the_memory_budget_fails_with_the_reason():
    candidate, device, values = _candidate(6)
    with pytest.raises(ValueError, match="over the memory budget"):
        noisy_probability_groups(
            candidate, device, values, simulation=Simulation(method="exact", memory_budget=1 << 16)
        )
    with pytest.raises(ValueError, match="over the memory budget"):
        noisy_probability_groups(
            candidate, device, values, simulation=Simulation(method="trajectories", memory_budget=1 << 10)
        )


def test_the_exact_engine_chunks_samples_under_the_budget():
    candidate, device, values = _candidate(5)
    values = np.repeat(values, 3, axis=0)
    whole = noisy_probability_groups(candidate, device, values, simulation=Simulation(method="exact"))
    # 2 samples' density matrices per chunk: same probabilities.
    chunked = noisy_probability_groups(
        candidate, device, values, simulation=Simulation(method="exact", memory_budget=2 * 2 * 16 * 4**5)
    )
    assert np.allclose(whole, chunked, atol=1e-12)


def test_a_scored_candidate_carries_standard_errors(tmp_path):
    from qnas.config import load_config
    from qnas.evaluate import CandidateEvaluator
    from qnas.evolution.genome import Genome
    from qnas.supercircuit import SuperCircuit

    config = load_config(
        None, ["search.noise_method=trajectories", "search.valid_samples=16", "space.max_blocks=2"]
    )
    sc = SuperCircuit(load_space("u3cu3"), 4, 2, seed=0)
    evaluator = CandidateEvaluator(config.model_dump(), sc.weights.detach().clone())
    scores = evaluator.evaluate(Genome((0, 1, 2, 3), tuple(sc.largest())))
    assert scores["loss_se"] > 0 and scores["calibrated_loss_se"] > 0
    assert scores["accuracy_se"] >= 0  # 16 samples' argmax may not move between groups
    assert scores["loss_se"] < 0.1 * scores["loss"]
