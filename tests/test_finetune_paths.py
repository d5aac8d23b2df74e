"""Fine-tuning paths other than noiseless backprop: noise-aware, QOC gradient pruning, as a run takes them."""

import json

import pytest

from qnas.cli import main
from qnas.config import load_config
from qnas.devices import get_device
from qnas.evolution.genome import Genome
from qnas.pipeline import noisy_executor_of
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks import get_task
from qnas.transpiled import transpile_candidate

TINY = ["search", "--config", "tests/tiny_search.yaml", "--workers", "0", "--quiet"]


def test_noise_aware_finetuning_tunes_the_circuit_the_search_scores():
    """Same optimization level, seed and idle noise as the scorer (it used to take level 2 and seed 0)."""
    overrides = ["search.optimization_level=1", "seed=5", "search.idle_noise=false"]
    config = load_config("tests/tiny_search.yaml", overrides)
    task = get_task("digits4", seed=5)
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=2, seed=5)
    genome = Genome((0, 1, 2, 3), sc.largest())
    sub = sc.subcircuit(genome.arch)
    executor = noisy_executor_of(config, task, genome)(sub)
    (tuned,) = executor.candidates.values()
    scored = transpile_candidate(
        sub.to_qiskit(bound=False, encoder=task.encoder, n_inputs=task.n_inputs),
        get_device("fake_quito"),
        genome.layout,
        optimization_level=1,
        seed=5,
        idle_noise=False,
    )
    assert not tuned.scheduled
    assert [i.operation.name for i in tuned.circuit.data] == [i.operation.name for i in scored.circuit.data]
    assert tuned.final_layout == scored.final_layout


@pytest.mark.parametrize(
    "overrides",
    [
        ["finetune.noise_aware=true", "finetune.engine=spsa"],
        ["finetune.engine=parameter_shift", "finetune.gradient_pruning=0.5"],
    ],
)
def test_a_search_finishes_with_each_finetuning_path(tmp_path, overrides):
    out = tmp_path / "run"
    small = ["search.iterations=1", "train.epochs=1", "finetune.batch_size=128", "finetune.finalists=1"]
    argv = [*TINY, "--out", str(out), *[a for o in small for a in ("--set", o)]]
    assert main([*argv, *[a for o in overrides for a in ("--set", o)]]) == 0
    best = json.loads((out / "best.json").read_text())
    assert 0 <= best["test"]["noisy"]["accuracy"] <= 1


def test_gradient_pruning_needs_an_engine_that_runs_circuits(capsys, tmp_path):
    code = main([*TINY, "--out", str(tmp_path / "run"), "--set", "finetune.gradient_pruning=0.5"])
    assert code == 2
    assert "gradient_pruning needs an engine" in capsys.readouterr().err
