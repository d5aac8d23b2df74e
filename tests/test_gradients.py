"""Gradient engines against autograd on the real simulator, and what each gradient costs."""

import dataclasses
import math

import pytest
import torch

from qnas import executors as X
from qnas import gradients as G
from qnas.config import FinetuneConfig
from qnas.devices import get_device
from qnas.sim import Layer
from qnas.space import load_space
from qnas.supercircuit import Subcircuit, SuperCircuit
from qnas.tasks import VQETask, get_task
from qnas.train import finetune

torch.set_num_threads(1)
SPACES = ["u3cu3", "zzry", "rxyz", "zxxx", "ibm_basis"]
F64 = torch.complex128


@pytest.fixture(scope="module")
def digits4():
    return get_task("digits4")


def three_qubit_hamiltonian() -> VQETask:
    """A 3-qubit VQE whose terms touch every wire in every Pauli basis."""
    paulis = ["ZII", "IXI", "IIY", "XXI", "IYZ", "ZIX", "YYY"]
    coeffs = [0.5, -0.3, 0.7, 0.2, -0.6, 0.4, 0.25]
    return VQETask("toy3", paulis, coeffs, exact_energy=0.0, hf_state=[1, 0, 0])


def largest(space: str, n_wires: int, blocks: int, seed: int = 1) -> Subcircuit:
    sc = SuperCircuit(load_space(space), n_wires, max_blocks=blocks, seed=seed)
    return sc.subcircuit(sc.largest())


def assert_exact_engines(sub: Subcircuit, task, batch) -> None:
    executor = X.NoiselessExecutor(sub, task, dtype=F64)
    theta = X.parameters_of(sub)
    true = G.Backprop().gradient(executor, theta, batch).values
    assert true.abs().max() > 1e-3  # a gradient worth comparing
    for engine in (G.ParameterShift(), G.FiniteDifference()):
        estimate = engine.gradient(executor, theta, batch).values
        assert torch.allclose(estimate, true, atol=1e-5, rtol=0), (engine.name, (estimate - true).abs().max())


@pytest.mark.parametrize("space", SPACES)
def test_shift_and_differences_equal_autograd_classification(space, digits4):
    assert_exact_engines(largest(space, 4, 2), digits4, digits4.samples("train", 2))


@pytest.mark.parametrize("space", SPACES)
def test_shift_and_differences_equal_autograd_vqe(space):
    assert_exact_engines(largest(space, 3, 1), three_qubit_hamiltonian(), None)


def test_every_rotation_gate_including_controlled_ones():
    gates = ["rx", "ry", "rz", "u3", "crx", "cry", "crz", "cu3", "rxx", "ryy", "rzz", "rzx"]
    layers, count = [Layer("h", ((0,), (1,), (2,)))], 0
    for gate in gates:
        n_params = {"u3": 3, "cu3": 3}.get(gate, 1)
        wires = ((1,), (2,)) if gate in ("rx", "ry", "rz", "u3") else ((0, 1), (2, 0))
        index = tuple(tuple(range(count + k * n_params, count + (k + 1) * n_params)) for k in range(2))
        layers.append(Layer(gate, wires, "weight", index))
        count += 2 * n_params
    weights = (torch.rand(count, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1) * 3
    assert_exact_engines(Subcircuit((), 3, layers, weights), three_qubit_hamiltonian(), None)


def test_four_term_rule_is_exact_where_two_terms_are_not():
    """CRX(a) on |+>|0>: <X_0> = cos(a/2) and <Z_1> = (1 + cos a)/2, frequencies 1/2 and 1."""
    a = 0.9
    layers = [Layer("h", ((0,),)), Layer("crx", ((0, 1),), "weight", ((0,),))]
    task = VQETask("crx", ["XI", "IZ"], [1.0, 1.0], exact_energy=0.0, hf_state=[0, 0])
    sub = Subcircuit((), 2, layers, torch.tensor([a], dtype=torch.float64))
    executor = X.NoiselessExecutor(sub, task, dtype=F64)
    exact = -math.sin(a / 2) / 2 - math.sin(a) / 2
    assert G.Backprop().gradient(executor, X.parameters_of(sub)).values.item() == pytest.approx(
        exact, abs=1e-12
    )
    four = G.ParameterShift().gradient(executor, X.parameters_of(sub))
    assert four.values.item() == pytest.approx(exact, abs=1e-12)
    assert four.n_executions == 1 + 4
    two = sum(c * executor(torch.tensor([[a + s]], dtype=torch.float64), None).item() for s, c in G.TWO_TERM)
    assert abs(two - exact) > 1e-2


def test_spsa_averages_to_the_true_gradient_at_its_variance(digits4):
    """N draws average to the gradient, with squared error (P - 1) |g|^2 / N on average.

    Component i of one draw is g_i + sum_{j != i} D_i D_j g_j + O(c^2) (D uniform in
    {-1, +1}^P): unbiased, of variance |g|^2 - g_i^2. A wrong scale, sign or pairing of
    the perturbations moves the average off by a multiple of |g|, far beyond that.
    """
    sub = largest("u3cu3", 4, 2)
    executor = X.NoiselessExecutor(sub, digits4, dtype=F64)
    theta, batch = X.parameters_of(sub), digits4.samples("train", 4)
    true = G.Backprop().gradient(executor, theta, batch).values
    n_draws, n_params = 4096, len(theta)
    averaged = G.SPSA(n_draws=n_draws, seed=0).gradient(executor, theta, batch).values
    expected = (n_params - 1) * true.square().sum() / n_draws
    # The squared error sums ~P terms of similar size (relative spread ~ sqrt(2 / P) = 0.2),
    # so a factor 3 either way is far in the tails; the draws are seeded besides.
    assert 1 / 3 < (averaged - true).square().sum() / expected < 3
    assert torch.nn.functional.cosine_similarity(averaged, true, dim=0) > 0.95
    single = G.SPSA(seed=0).gradient(executor, theta, batch).values
    assert torch.equal(G.SPSA(seed=0).gradient(executor, theta, batch).values, single)  # seeded


def test_execution_counts(digits4):
    sub = largest("u3cu3", 4, 1)  # 4 u3 (3 two-term angles), 4 cu3 (1 four-term + 2 two-term)
    executor = X.NoiselessExecutor(sub, digits4)
    theta, batch = X.parameters_of(sub), digits4.samples("train", 8)
    shift_terms = 4 * 3 * 2 + 4 * (4 + 2 + 2)
    assert G.ParameterShift().gradient(executor, theta, batch).n_executions == 8 * (1 + shift_terms)
    assert G.FiniteDifference().gradient(executor, theta, batch).n_executions == 8 * 2 * 24
    assert G.SPSA().gradient(executor, theta, batch).n_executions == 8 * 2
    assert G.SPSA().gradient(executor, theta, batch, with_loss=True).n_executions == 8 * 3
    assert G.Backprop().gradient(executor, theta, batch).n_executions == 8


def test_gradient_pruning_skips_parameters_at_no_cost(digits4):
    sub = largest("zzry", 4, 2)
    executor = X.NoiselessExecutor(sub, digits4)
    theta, batch = X.parameters_of(sub), digits4.samples("train", 4)
    qoc = G.ProbabilisticGradientPruning(
        G.ParameterShift(), accumulation_window=1, pruning_window=2, ratio=0.5
    )
    full = qoc.gradient(executor, theta, batch)  # accumulation step: every angle
    assert full.n_executions == 4 * (1 + 2 * 16)
    pruned = qoc.gradient(executor, theta, batch)  # pruning step: half the angles
    assert pruned.n_executions == 4 * (1 + 2 * 8)
    assert int((pruned.values != 0).sum()) == 8
    kept = pruned.values != 0
    assert torch.allclose(pruned.values[kept], full.values[kept])
    qoc_again = G.ProbabilisticGradientPruning(G.ParameterShift(), 1, 2, 0.5)
    qoc_again.gradient(executor, theta, batch)
    assert torch.equal(qoc_again.gradient(executor, theta, batch).values, pruned.values)  # seeded


def test_noisy_executor_matches_the_simulator_without_noise_and_shifts_stay_exact_with_it(digits4):
    sub = largest("u3cu3", 4, 1)
    device = get_device("fake_quito")
    theta, batch = X.parameters_of(sub), digits4.samples("train", 2)
    rows = torch.stack([theta, theta + 0.3])
    ideal = X.NoisyExecutor(sub, digits4, device, noiseless=True).outputs(rows, batch)
    assert torch.allclose(ideal, X.NoiselessExecutor(sub, digits4, dtype=F64).outputs(rows, batch), atol=1e-9)
    noisy = X.NoisyExecutor(sub, digits4, device)
    # Gate noise does not depend on the angles, so the shift rules stay exact under noise.
    shifted = G.ParameterShift().gradient(noisy, theta, batch)
    differences = G.FiniteDifference().gradient(noisy, theta, batch)
    assert torch.allclose(shifted.values, differences.values, atol=1e-6)
    assert shifted.n_executions == 2 * (1 + 4 * 3 * 2 + 4 * (4 + 2 + 2))


def small_train(task, n: int):
    """The task with only the first `n` training samples: a few fine-tuning steps per epoch."""
    x, y = task.splits["train"]
    return dataclasses.replace(task, splits={**task.splits, "train": (x[:n], y[:n])})


def test_finetune_with_each_engine_lowers_the_loss(digits4):
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=1, seed=1)
    genes, task = sc.largest(), small_train(digits4, 96)
    settings = FinetuneConfig(epochs=4, batch_size=32, lr=0.05)
    for engine in ("backprop", "parameter_shift"):
        tuned, history = finetune(sc, genes, task, settings, engine=engine, progress=False)
        assert (
            task.evaluate(tuned.subcircuit(genes), "train")["loss"]
            < task.evaluate(sc.subcircuit(genes), "train")["loss"]
        )
        assert history[-1]["total_executions"] == sum(row["executions"] for row in history)
    assert tuned.weights is not sc.weights


def test_every_engine_takes_the_same_loop_warmup_schedule_and_weight_decay(digits4):
    """Finite differences follow backprop's trajectory step for step: same optimizer, warm-up, cosine, decay.

    The old engine path ran plain Adam (no warm-up, schedule or weight decay), so it drifted apart.
    """
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=1, seed=1)
    genes, task = sc.largest(), small_train(digits4, 64)
    settings = FinetuneConfig(epochs=3, batch_size=16, lr=0.05, weight_decay=0.05, warmup_epochs=1)
    exact = lambda sub: X.NoiselessExecutor(sub, task, dtype=F64)  # noqa: E731
    runs = {
        engine: finetune(sc, genes, task, settings, 0, engine, exact, progress=False)[0]
        for engine in ("backprop", "finite_difference")
    }
    a, b = (X.parameters_of(t.subcircuit(genes)) for t in runs.values())
    assert torch.allclose(a, b, atol=1e-5)
    plain = settings.model_copy(update={"weight_decay": 0.0, "warmup_epochs": 0})
    other = X.parameters_of(
        finetune(sc, genes, task, plain, 0, "backprop", exact, progress=False)[0].subcircuit(genes)
    )
    assert (other - a).abs().max() > 1e-3  # the settings matter, so the check above could fail


def test_noise_aware_finetuning_runs_through_the_noisy_executor(digits4):
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=1, seed=1)
    task = small_train(digits4, 12)
    executors = []

    def noisy(sub):
        executors.append(X.NoisyExecutor(sub, task, get_device("fake_quito")))
        return executors[-1]

    settings = FinetuneConfig(epochs=1, batch_size=4, lr=0.05)
    _, history = finetune(sc, sc.largest(), task, settings, 0, G.SPSA(seed=1), noisy, progress=False)
    assert history[-1]["executions"] == 3 * 4 * 3  # 3 steps of 3 losses on 4 samples
    assert executors[0].n_executions == history[-1]["total_executions"]


def test_noisy_executor_without_noise_equals_the_task_on_lih():
    """The executor measures every basis in qnas's qubit order (LiH's bases are not symmetric)."""
    task = get_task("lih")
    sc = SuperCircuit(load_space("u3cu3"), task.n_wires, max_blocks=1, seed=2)
    sub = sc.subcircuit(sc.largest())
    executor = X.NoisyExecutor(sub, task, get_device("fake_cambridge"), noiseless=True)
    energy = executor.outputs(X.parameters_of(sub)[None], None)[0, 0, 0].item()
    assert energy == pytest.approx(task.evaluate(sub)["energy"], abs=1e-9)


def test_unknown_engine_names_the_allowed_ones():
    with pytest.raises(ValueError, match="parameter_shift"):
        G.get_engine("adjoint")
