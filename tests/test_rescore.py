"""`qnas rescore RUN --device D`: the run's front and finalists scored again on another device."""

import json
from pathlib import Path

import pytest

import qnas
from qnas.cli import main

TINY = Path(__file__).parent / "tiny_search.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> qnas.Run:
    return qnas.search(
        TINY, out=tmp_path_factory.mktemp("rescore") / "run", progress=False, search__iterations=2
    )


def test_rescoring_on_the_same_device_reproduces_every_score(run):
    from qnas.rescore import rescore

    summary = rescore(run.path, "fake_quito", progress=False)
    assert summary["front"] and summary["finalists"]
    for row in summary["front"] + summary["finalists"]:
        assert row["after"] == pytest.approx(row["before"], abs=1e-9), row
    assert summary["best_now"] == summary["best_before"] == run.best["trial"]
    if summary["finalists_kendall_tau"] is not None:
        assert summary["finalists_kendall_tau"] == pytest.approx(1.0)


def test_rescoring_on_a_sibling_device_moves_the_scores_and_says_so(run, capsys):
    assert main(["rescore", str(run.path), "--device", "fake_manila", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (
        "fake_quito -> fake_manila" in out
        and "Kendall's tau" in out
        and "best finalist on fake_manila" in out
    )
    saved = json.loads((run.path / "rescore" / "fake_manila.json").read_text())
    assert any(abs(r["after"] - r["before"]) > 1e-6 for r in saved["front"])  # another device, other noise
    assert {r["layout_on_target"] for r in saved["front"]} == {"same"}  # 5 qubits each: layouts fit


def test_rescoring_on_a_device_too_small_is_one_line(run, capsys):
    from qnas.devices import fake_backend_classes

    if "fake_armonk" not in fake_backend_classes():
        pytest.skip("no 1-qubit fake backend in this qiskit-ibm-runtime")
    assert main(["rescore", str(run.path), "--device", "fake_armonk"]) == 2
    assert "needs 4 qubits; fake_armonk has 1" in capsys.readouterr().err
