"""Quantum-Train: a circuit's probabilities generate a CNN's weights (qnas.tasks.quantum_train)."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch

from qnas.config import Config
from qnas.evaluate import build_supercircuit
from qnas.executors import NoiselessExecutor, parameters_of
from qnas.gradients import get_engine
from qnas.pipeline import check_config
from qnas.tasks import task_from_config
from qnas.tasks.quantum_train import mps_mapping, n_weights, target_network
from qnas.train import train

SMALL = {
    "device": "fake_guadalupe",  # 16 qubits: transpiles and simulates far faster than a 156-qubit Heron
    "task": {"name": "qt_digits10", "mapping_hidden": [4]},
    "space": {"name": "ry_cnot", "max_blocks": 2},
}


@pytest.fixture(scope="module")
def built():
    config = Config.model_validate(SMALL)
    task = task_from_config(config)
    return config, task, build_supercircuit(config, task)


def test_the_generator_has_ceil_log2_m_qubits_and_a_head_after_the_angles(built):
    _, task, sc = built
    assert task.n_target == n_weights(target_network("cnn")) == 1898
    assert task.n_wires == 11  # 2^11 = 2048 >= 1898 > 1024
    # mapping 12 -> 4 -> 1, then one gain per generated tensor (6 in the CNN)
    assert task.n_head_params == (12 * 4 + 4) + (4 + 1) + 6
    sub = sc.subcircuit(sc.fixed_blocks(2))
    assert len(sc.weights) == sc.head[-1] + 1 and len(sc.head) == task.n_head_params
    assert sub.parameter_indices()[-task.n_head_params :] == list(sc.head)
    assert sub.n_params == 2 * 11 + task.n_head_params
    # The circuit itself has only trainable angles: nothing is encoded.
    assert task.n_inputs == 0 and task.encoder == []
    assert sub.to_qiskit().num_qubits == 11


def test_angles_and_mapping_train_together(built):
    config, task, sc = built
    sc = build_supercircuit(config, task)
    genes = sc.fixed_blocks(2)
    batch = task.samples("train", 64)
    loss = task.loss(sc.subcircuit(genes), batch)
    loss.backward()
    grad = sc.weights.grad
    angles = [i for i in sc.subcircuit(genes).parameter_indices() if i not in sc.head]
    assert grad[angles].abs().max() > 0 and grad[list(sc.head)].abs().max() > 0
    before = task.evaluate(sc.subcircuit(genes), "valid")
    settings = config.finetune.model_copy(update={"epochs": 4, "lr": 0.03})
    train(sc, task, settings, lambda: genes, seed=0, progress=False)
    after = task.evaluate(sc.subcircuit(genes), "valid")
    assert after["loss"] < before["loss"] - 0.1, (before, after)


def test_backprop_through_the_executor_is_the_tasks_own_gradient(built):
    _, task, sc = built
    sub = sc.subcircuit(sc.fixed_blocks(1))
    batch = task.samples("train", 16)
    result = get_engine("backprop").gradient(
        NoiselessExecutor(sub, task, torch.complex128), parameters_of(sub), batch
    )
    weights = sc.weights.detach().clone().requires_grad_(True)
    loss = task.loss(dataclasses.replace(sub, weights=weights), batch)
    (expected,) = torch.autograd.grad(loss, weights)
    assert torch.allclose(result.values, expected[sub.parameter_indices()].double(), atol=1e-6)
    assert result.values[-task.n_head_params :].abs().max() > 0  # the head is trained through it


def test_the_shift_rule_with_the_heads_chain_rule_is_backprops_gradient(built):
    """parameter_shift on a task with a head: angles by shifts, the mapping model by backprop at the unshifted outputs."""
    _, task, sc = built
    sub = sc.subcircuit(sc.fixed_blocks(1))
    batch = task.samples("train", 16)
    executor = NoiselessExecutor(sub, task, torch.complex128)
    theta = parameters_of(sub)
    shifted = get_engine("parameter_shift").gradient(executor, theta, batch, with_loss=True)
    exact = get_engine("backprop").gradient(executor, theta, batch, with_loss=True)
    assert torch.allclose(shifted.values, exact.values, atol=1e-8)
    assert shifted.loss == pytest.approx(exact.loss, abs=1e-10)
    n_angles = len(theta) - task.n_head_params
    assert shifted.values[:n_angles].abs().max() > 0 and shifted.values[n_angles:].abs().max() > 0
    assert shifted.n_executions == 1 + 2 * n_angles  # the head costs no circuit


def test_an_engine_without_the_heads_chain_rule_is_refused_before_training():
    config = Config.model_validate({**SMALL, "finetune": {"engine": "spsa"}})
    with pytest.raises(ValueError, match="set it to backprop or parameter_shift"):
        check_config(config)
    shift = {**SMALL, "finetune": {"engine": "parameter_shift"}, "search": {"valid_samples": 270}}
    check_config(Config.model_validate(shift))


def test_quantum_train_keys_belong_to_a_quantum_train_task():
    with pytest.raises(ValueError, match="belongs to a Quantum-Train task"):
        task_from_config(Config.model_validate({"task": {"name": "digits4", "shots": 100}}))


def test_the_mps_mapping_is_a_tensor_train_of_the_index_and_trains():
    """task.mapping: mps (Liu et al., arXiv 2409.06992): w_i = a(i) + b(i) tanh(q_i), a and b tensor trains."""
    config = Config.model_validate(
        {**SMALL, "task": {"name": "qt_digits10", "mapping": "mps", "mapping_bond": 2}}
    )
    task = task_from_config(config)
    # cores (2, 1, 2), ten of (2, 2, 2), the probability's (2, 2, 1); one gain per tensor
    assert task.n_head_params == 4 + 10 * 8 + 4 + 6
    head = torch.randn(task.n_head_params - 6, dtype=torch.float64)
    inputs = torch.cat([task.bits[:5], torch.randn(5, 1, dtype=torch.float64)], dim=1)
    got = mps_mapping(head, inputs, task.cores)
    for i in range(5):  # the chain contracted by hand, one matrix per input
        v, start = torch.ones(1, 1, dtype=torch.float64), 0
        for k, (d, a, b) in enumerate(task.cores):
            core = head[start : start + d * a * b].view(d, a, b)
            start += d * a * b
            m = core[int(inputs[i, k] > 0)] if k < 11 else core[0] + torch.tanh(inputs[i, k]) * core[1]
            v = v @ m
        assert got[i].item() == pytest.approx(v.item(), rel=1e-12)
    sc = build_supercircuit(config, task)
    genes = sc.fixed_blocks(2)
    settings = config.finetune.model_copy(update={"epochs": 3, "lr": 0.03})
    before = task.evaluate(sc.subcircuit(genes), "valid")
    train(sc, task, settings, lambda: genes, 0, progress=False)
    assert task.evaluate(sc.subcircuit(genes), "valid")["loss"] < before["loss"]


def test_each_mapping_size_belongs_to_its_mapping_model():
    for task, match in [
        ({"mapping": "mps", "mapping_hidden": [4]}, r"mapping_hidden \(\[4\]\) sizes the MLP mapping"),
        ({"mapping_bond": 4}, r"mapping_bond \(4\) sizes the mps mapping"),
    ]:
        with pytest.raises(ValueError, match=match):
            task_from_config(Config.model_validate({"task": {"name": "qt_digits10", **task}}))
    with pytest.raises(ValueError, match="belongs to a Quantum-Train task"):
        task_from_config(Config.model_validate({"task": {"name": "digits4", "mapping": "mps"}}))


def test_each_output_units_generated_weights_are_standardized_and_start_at_chance(built):
    """Weight standardization per output unit (each conv filter, each row of a linear layer), as Qiao
    et al. define it; standardized per tensor, the CNN started far from chance (loss 5.8 for ln 10)."""
    config, task, _ = built
    sc = build_supercircuit(config, task)  # fresh: the gains at their initial 1
    sub = sc.subcircuit(sc.fixed_blocks(1))
    bound = task.bind(sub)
    probs = bound.outputs_from_state(bound.state(sub, task.features(None).double()))[0]
    weights = bound.generated_weights(probs.detach())
    for name, w in weights.items():
        spread = task.init_spread[name]  # the gains start at 1
        rows = w.reshape(w.shape[0], -1) if w.dim() > 1 else w[None]
        assert torch.allclose(rows.mean(1), torch.zeros(len(rows), dtype=w.dtype), atol=1e-9), name
        assert torch.allclose(rows.std(1), torch.full((len(rows),), spread, dtype=w.dtype), rtol=1e-6), name
    assert abs(task.evaluate(sub, "valid")["loss"] - math.log(10)) < 0.1
    whole = dataclasses.replace(task, standardize="tensor").bind(sub).generated_weights(probs.detach())
    rows = whole["8.weight"].reshape(10, -1)
    assert not torch.allclose(rows.std(1), rows.std(1).mean())  # per tensor: the units' spreads differ


def test_label_smoothing_regularizes_the_training_loss_and_not_the_metrics(built):
    _, task, sc = built
    sub = sc.subcircuit(sc.fixed_blocks(1))
    smoothed = dataclasses.replace(task, label_smoothing=0.1)
    batch = task.samples("train", 64)
    assert smoothed.loss(sub, batch).item() != pytest.approx(task.loss(sub, batch).item(), abs=1e-6)
    assert smoothed.evaluate(sub, "valid") == task.evaluate(sub, "valid")
    for value, match in [
        ({"standardize": "filter"}, "standardize"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ]:
        with pytest.raises(ValueError, match=match):
            Config.model_validate({"task": {"name": "qt_digits10", **value}})
    with pytest.raises(ValueError, match=r"task.label_smoothing belongs to a Quantum-Train task"):
        task_from_config(Config.model_validate({"task": {"name": "digits4", "label_smoothing": 0.1}}))


def test_a_subclass_of_the_task_binds_as_itself(built):
    """bind() kept the base class, so a subclass's own generated_weights was lost once bound."""
    _, task, sc = built

    class Uniform(type(task)):
        def generated_weights(self, probs):
            return super().generated_weights(torch.full_like(probs, 2.0**-self.n_wires))

    init = {f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.init}
    bound = Uniform(**init).bind(sc.subcircuit(sc.fixed_blocks(2)))
    assert isinstance(bound, Uniform)
    probs = torch.rand(2**task.n_wires, dtype=torch.float64)
    uniform = bound.generated_weights(torch.full_like(probs, 2.0**-task.n_wires))
    assert all(torch.equal(uniform[k], v) for k, v in bound.generated_weights(probs).items())


def test_shots_are_seeded_and_cost_some_accuracy(built):
    config, task, sc = built
    genes = sc.fixed_blocks(2)
    trained = build_supercircuit(config, task)
    train(
        trained,
        task,
        config.finetune.model_copy(update={"epochs": 3, "lr": 0.03}),
        lambda: genes,
        0,
        progress=False,
    )
    sub = trained.subcircuit(genes)
    few = dataclasses.replace(task, shots=64)
    exact = task.evaluate(sub, "test")
    first, again = few.evaluate(sub, "test"), few.evaluate(sub, "test")
    assert first == again  # the draw is seeded
    # 64 shots over 2048 outcomes: most probabilities read 0, the generated weights are others.
    assert first["loss"] != exact["loss"]
    many = dataclasses.replace(task, shots=20 * 2**task.n_wires).evaluate(sub, "test")
    assert abs(many["loss"] - exact["loss"]) < abs(first["loss"] - exact["loss"])


def test_a_search_exports_weights_that_a_plain_torch_model_loads(tmp_path):
    """End to end through the CLI; the saved state dict reproduces the reported test accuracy."""
    run = tmp_path / "qt"
    sets = [
        "device=fake_guadalupe",
        "task.mapping_hidden=[4]",
        "space.name=ry_cnot",
        "space.max_blocks=2",
        "train.epochs=2",
        "search.noise_aware=false",
        "search.population=4",
        "search.parents=2",
        "search.mutants=1",
        "search.crossovers=1",
        "search.iterations=1",
        "search.objectives=[loss,n_params]",
        "finetune.epochs=10",
        "finetune.finalists=1",
    ]
    cmd = [
        sys.executable,
        "-m",
        "qnas.cli",
        "search",
        "--config",
        "configs/qt_digits10.yaml",
        "--out",
        str(run),
    ]
    cmd += ["--workers", "0", "--quiet", *[a for s in sets for a in ("--set", s)]]
    subprocess.run(cmd, check=True, cwd=_root())
    best = json.loads((run / "best.json").read_text())
    saved = torch.load(run / "exports" / "generated_weights.pt")
    assert best["exports"]["generated_weights"] == str(run / "exports" / "generated_weights.pt")
    net = target_network(saved["target"])
    net.load_state_dict(saved["state_dict"])
    task = task_from_config(Config.model_validate(SMALL))
    x, y = task.samples("test")
    with torch.no_grad():
        logits = net(x)
    accuracy = (logits.argmax(1) == y).double().mean().item()
    # float32 weights against the float64 the report used: at most one sample's argmax may differ.
    assert abs(accuracy - best["test"]["noiseless"]["accuracy"]) <= 1 / len(y) + 1e-12
    # The very network the task generates from the chosen circuit, logit for logit.
    from qnas.pipeline import load_candidate
    from qnas.results import RunDir

    _, task, sc, genome = load_candidate(RunDir(run), "best")
    test = task.samples("test")
    sub = sc.subcircuit(genome.arch)
    bound = task.bind(sub)
    probs = task.outputs_from_state(task.state(sub, task.features(None).double(), torch.complex128))[0]
    expected = bound._logits(probs, x).detach()
    assert torch.allclose(logits.double(), expected, atol=1e-4)
    assert logits.std(0).max() > 0  # not a constant network
    assert 0 < saved["n_trained"] == best["search_scores"]["n_params"] < saved["n_target_weights"]

    # A deploy measures one circuit per basis for all the test samples: its sampling error counts
    # the samples, not the circuits (the deploy itself is tested in test_deploy.py).
    from qnas.deploy import _measured_summary

    summary = _measured_summary(bound, {"Z" * task.n_wires: probs.detach().numpy()[None]}, test, 2000, 0, 540)
    p = summary["measured"]["accuracy"]
    assert summary["sampling_se"] == pytest.approx((p * (1 - p) / 540) ** 0.5)


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def test_refitting_the_mapping_to_distorted_probabilities_lowers_their_loss(built):
    """The device's probabilities differ from the simulator's; a mapping fitted to them reads them better."""
    _, task, sc = built
    sub = sc.subcircuit(sc.fixed_blocks(2))
    exact = task.outputs_from_state(task.state(sub, task.features(None).double(), torch.complex128))[
        0
    ].detach()
    train_split = task.samples("train")

    def loss(head: torch.Tensor, probs: torch.Tensor) -> float:
        weights = sc.weights.detach().clone()
        weights[list(sub.head)] = head
        return task.bind(dataclasses.replace(sub, weights=weights)).metrics_from_outputs(
            probs[None], train_split
        )["loss"]

    def with_head(head: torch.Tensor):
        weights = sc.weights.detach().clone()
        weights[list(sub.head)] = head
        return dataclasses.replace(sub, weights=weights)

    initial = sc.weights.detach()[list(sub.head)]
    # The mapping alone, fitted to the circuit's exact probabilities (no circuit runs: cheap).
    fitted = task.refit_head(sub, exact, epochs=3, lr=0.03)
    assert loss(fitted, exact) < loss(initial, exact) - 0.01
    # A depolarized, readout-flipped distribution: half-way to uniform, then the bits reversed.
    distorted = (0.5 * exact + 0.5 / len(exact)).flip(0)
    refitted = task.refit_head(with_head(fitted), distorted, epochs=3, lr=0.03)
    assert loss(refitted, distorted) < loss(fitted, distorted) - 0.01
    assert len(refitted) == task.n_head_params  # the angles are not touched


def test_a_head_refit_before_scoring_separates_inherited_losses_and_leaves_final_scores_alone(built):
    """search.head_refit_epochs: each candidate scored through a mapping fitted to its own probabilities."""
    from qnas.evaluate import CandidateEvaluator, evaluator_payload
    from qnas.evolution.genome import Genome
    from qnas.pipeline import score_genome

    config, task, sc = built
    config = config.model_copy(deep=True)
    config.search.noise_aware = False
    config.search.valid_samples = 64
    shared = CandidateEvaluator(**evaluator_payload(config, sc, task))
    refit = config.model_copy(deep=True)
    refit.search.head_refit_epochs = 2
    own = CandidateEvaluator(**evaluator_payload(refit, sc, task))
    for blocks in (1, 2):
        genome = Genome((), tuple(sc.fixed_blocks(blocks)))
        before, after = shared.evaluate(genome), own.evaluate(genome)
        # The seeded shared mapping generates a network at chance; fitted, it learns something.
        assert after["loss"] < before["loss"] - 0.1, (blocks, before["loss"], after["loss"])
        # Scoring given weights (fine-tuned finalists, test scores) re-fits nothing.
        given = score_genome(refit, task, sc, genome, "valid", False)
        assert given["loss"] == score_genome(config, task, sc, genome, "valid", False)["loss"]
    # The SuperCircuit's shared weights are not touched by a candidate's fit.
    assert torch.equal(sc.weights, build_supercircuit(config, task).weights)


def test_a_head_refit_on_a_task_without_a_head_is_refused():
    config = Config.model_validate({"task": {"name": "digits4"}, "search": {"head_refit_epochs": 3}})
    with pytest.raises(ValueError, match=r"head_refit_epochs \(3\).*digits4 has none"):
        check_config(config)


def test_noise_aware_finetuning_trains_the_generator_and_its_mapping_on_the_devices_probabilities(tmp_path):
    """finetune.noise_aware with parameter_shift: the angles by shifts of the noisy circuit, the mapping by backprop."""
    from qnas.evolution.genome import Genome
    from qnas.pipeline import _finetuned, score_genome

    config = Config.model_validate(
        {
            **SMALL,
            "space": {"name": "ry_cnot", "max_blocks": 1},
            "finetune": {
                "noise_aware": True,
                "engine": "parameter_shift",
                "epochs": 2,
                "batch_size": 32,
                "lr": 0.03,
                "weight_decay": 0.0,
            },
            "search": {"valid_samples": 270, "noise_method": "trajectories", "trajectories": 8},
        }
    )
    task = task_from_config(config)
    sc = build_supercircuit(config, task)
    genome = Genome((), tuple(sc.fixed_blocks(1)))
    tuned = _finetuned(config, tmp_path, task, sc, genome, progress=False)
    sub, after = sc.subcircuit(genome.arch), tuned.subcircuit(genome.arch)
    angles = [i for i in sub.parameter_indices() if i not in sc.head]
    assert not torch.equal(tuned.weights[angles], sc.weights[angles])
    assert not torch.equal(tuned.weights[list(sc.head)], sc.weights[list(sc.head)])
    # Scored on the same noisy simulation it trained through, the generated network has learned:
    # from ln 10 (a per-unit standardized network starts at chance) two short epochs through
    # the noise take a few hundredths off the loss (0.06 measured).
    before = score_genome(config, task, sc, genome, "valid", True)
    trained = score_genome(config, task, tuned, genome, "valid", True)
    assert trained["loss"] < before["loss"] - 0.03, (before["loss"], trained["loss"])
    assert after.n_params == sub.n_params
