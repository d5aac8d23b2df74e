"""The encoder as a gene: the SuperCircuit trains with it sampled, candidates differ by it, exports carry it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from qiskit import qasm3

import qnas
from qnas.cli import main
from qnas.config import load_config
from qnas.pipeline import check_config
from qnas.tasks import task_from_config

CONFIG = Path(__file__).with_name("tiny_search.yaml")


def test_the_features_are_principal_components_and_each_encoder_reads_its_first():
    config = load_config(CONFIG, ["search.encoders=[ry, 4x4_ryzxy]"])
    task, sc = check_config(config)
    assert task.encoder == [] and task.n_inputs == 16
    plain = task_from_config(load_config(CONFIG))
    assert not torch.equal(task.samples("train")[0], plain.samples("train")[0])
    assert "principal component" in task.describe_inputs()[0]
    ry = sc.subcircuit(sc.fixed_blocks(1, encoder=0))
    ryzxy = sc.subcircuit(sc.fixed_blocks(1, encoder=1))
    assert ry.to_qiskit(n_inputs=task.n_inputs).num_parameters == 4
    assert ryzxy.to_qiskit(n_inputs=task.n_inputs).num_parameters == 16
    assert ry.n_params == ryzxy.n_params  # the encoders have no weights of their own
    assert len(sc.gene_choices) == len(sc.space.gene_choices(4, sc.max_blocks)) + 1
    with pytest.raises(ValueError, match="encoder gene = 2 not allowed"):
        sc.validate([*sc.largest()[:-2], 2, 1])


def test_a_search_over_encoders_scores_both_and_exports_the_chosen_one(tmp_path):
    run_ = qnas.search(CONFIG, out=tmp_path / "run", progress=False, search__encoders=["ry", "ryrz"])
    df = run_.candidates
    encoders = {int(a[-2]) for a in df["arch"]}
    assert encoders == {0, 1}
    best = run_.best
    chosen = best["arch"][-2]
    circuit = qasm3.loads(run_.export("best", "qasm3"))
    assert circuit.num_parameters == (4 if chosen == 0 else 8)
    assert run_.circuit("best").num_parameters == circuit.num_parameters
    assert np.isfinite(best["test"]["noisy"]["accuracy"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.encoders=[ry, rx9]", "unknown encoder 'rx9'"),
        ("task.encoder=ry", "task.encoder ('ry') and search.encoders"),
        ("task.name=h2", "only a classifier has an encoder"),
    ],
)
def test_bad_encoder_genes_are_rejected_before_training(tmp_path, capsys, override, message):
    extra = [] if override.startswith("search.encoders") else ["--set", "search.encoders=[ry, ryrz]"]
    code = main(
        [
            "search",
            "--config",
            str(CONFIG),
            "--out",
            str(tmp_path / "r"),
            "--quiet",
            "--set",
            override,
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
