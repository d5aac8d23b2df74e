"""The screening stage and the training-free (Élivágar-style) strategy, through real searches."""

from __future__ import annotations

from pathlib import Path

import pytest

import qnas
from qnas.cli import main

CONFIG = Path(__file__).with_name("tiny_search.yaml")


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    out = tmp_path_factory.mktemp("screened") / "run"
    screen = {"objectives": ["clifford_noise_resilience", "n_2q"], "keep": 2}
    run = qnas.search(CONFIG, out=out, workers=2, progress=False, search__screen=screen)
    return out, run


def test_only_the_best_keep_of_each_generation_get_the_full_score(screened):
    _, run = screened
    df = run.candidates
    assert {"screened_out", "clifford_noise_resilience"} <= set(df.columns)
    out = df[df["screened_out"] == True]  # noqa: E712 (a column of objects: True, False and NaN)
    assert len(out) > 0 and out["failed"].all() and out["loss"].isna().all()
    assert out["clifford_noise_resilience"].between(0, 1).all()
    assert out["error"].str.startswith("screened out").all()
    scored = df[~df["failed"]]
    assert scored["loss"].notna().all()
    # Generation 0 draws 6 new candidates: at most 2 go on.
    assert (scored["generation"] == 0).sum() <= 2
    for generation in df["generation"].unique():
        fresh = df[(df["generation"] == generation) & (df["screened_out"] == False)]  # noqa: E712
        assert len(fresh) <= 2
    # The kept ones rank at least as high on the screen as the best one screened out of their generation.
    g0 = df[df["generation"] == 0]
    best_out = g0[g0["screened_out"] == True]["clifford_noise_resilience"].max()  # noqa: E712
    kept = g0[g0["screened_out"] == False]  # noqa: E712
    assert (kept["clifford_noise_resilience"] >= best_out).any() or (kept["n_2q"] < g0["n_2q"].max()).any()


def test_a_screened_search_resumes_and_repeats_nothing(screened):
    out, run = screened
    again = qnas.search(CONFIG, out=out, workers=0, progress=False, search__screen=run.config.search.screen)
    assert sorted(again.candidates["id"]) == sorted(run.candidates["id"])
    assert (
        again.candidates["screened_out"].fillna(False).tolist()
        == run.candidates["screened_out"].fillna(False).tolist()
    )


def test_the_training_free_strategy_trains_no_supercircuit_and_tunes_its_finalists(tmp_path):
    out = tmp_path / "run"
    run = qnas.search(
        CONFIG,
        out=out,
        workers=0,
        progress=False,
        search__strategy="training_free",
        search__objectives=["elivagar_score", "n_2q"],
    )
    assert not (out / "supercircuit.pt").exists()
    df = run.candidates
    assert df["elivagar_score"].between(0, 1).all()
    assert "loss" not in df or df["loss"].isna().all()
    assert (df["elivagar_score"] <= df["representational_capacity"] + 1e-12).all()
    assert run.best["valid_after_finetune"]["accuracy"] > 0 and run.best["test"]["noisy"]["accuracy"] > 0
    assert run.circuit("best").num_qubits == 4
    # Deploy predicts the task's score of a training-free pick too (it refused its config).
    summary = run.deploy(shots=200, limit=8, progress=False)
    assert 0 <= summary["measured"]["accuracy"] <= 1 and "accuracy" in summary["predicted"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.screen={objectives: [loss], keep: 2}", "each must be a training-free objective"),
        (
            "search.screen={objectives: [n_2q], keep: 9}",
            "search.screen.keep (9) exceeds search.population (6)",
        ),
        (
            "search.strategy=training_free",
            "strategy training_free scores no trained circuit, so it cannot rank",
        ),
    ],
)
def test_bad_screens_are_rejected_before_training(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    code = main(
        ["search", "--config", str(CONFIG), "--out", str(out), "--workers", "0", "--quiet", "--set", override]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_repcap_on_a_vqe_is_rejected_naming_the_classifiers_objectives(tmp_path, capsys):
    code = main(
        [
            "search",
            "--config",
            str(CONFIG),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
            "--set",
            "task.name=h2",
            "--set",
            "search.objectives=[representational_capacity, n_2q]",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "objective 'representational_capacity' is not a metric of task h2" in err
    assert "a classifier also has" in err
