"""Deploy through qiskit-ibm-runtime's local testing mode: the code path a real device takes."""

import json
import logging
import os
import secrets
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pandas as pd
import pytest
from qiskit import QuantumCircuit

from qnas.cli import main
from qnas.deploy import deploy, summary_text


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny finished search on fake_quito (digits4)."""
    out = tmp_path_factory.mktemp("deploy") / "run"
    argv = ["search", "--config", "tests/tiny_search.yaml", "--out", str(out), "--workers", "0", "--quiet"]
    assert main(argv) == 0
    return out


def _folder(run_dir: Path, trial: int, shots: int = 4000) -> Path:
    """The deploy folder of trial `trial` on fake_quito: named by the candidate's stable id (and other shots)."""
    df = pd.read_csv(run_dir / "candidates.csv")
    named = "" if shots == 4000 else f"-shots{shots}"
    return run_dir / "deploy" / f"fake_quito-{df.loc[df['trial'] == trial, 'id'].item()}{named}"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_full_test_set_on_the_run_device_matches_the_prediction(run_dir):
    summary = deploy(run_dir, "best", "fake_quito", shots=4000, batch_size=64, progress=False)
    best = json.loads((run_dir / "best.json").read_text())
    # The prediction is the search's own noisy test score of the candidate, on its layout.
    assert summary["predicted"]["accuracy"] == pytest.approx(best["test"]["noisy"]["accuracy"])
    assert summary["layout"] == best["layout"] and summary["n_samples"] == 216 and summary["n_jobs"] == 4
    assert abs(summary["difference"]) <= max(0.03, 3 * summary["shot_noise_se"])
    folder = run_dir / "deploy" / "fake_quito-best"
    assert json.loads((folder / "summary.json").read_text()) == summary
    done = [r for r in _lines(folder / "jobs.jsonl") if r["status"] == "done"]
    assert [r["batch"] for r in done] == [0, 1, 2, 3]
    assert sum(len(r["counts"][0]) for r in done) == 216
    assert all(sum(c.values()) == 4000 for r in done for c in r["counts"][0])


def test_another_device_takes_the_same_path(run_dir):
    summary = deploy(run_dir, "best", "fake_brisbane", shots=4000, batch_size=32, progress=False, limit=64)
    assert summary["backend"] == "fake_brisbane" and summary["n_samples"] == 64
    # A layout searched on fake_quito means nothing on fake_brisbane: qiskit chooses one.
    assert summary["layout"] == []
    assert abs(summary["difference"]) <= max(0.03, 3 * summary["shot_noise_se"])


def test_a_deploy_with_dynamical_decoupling_runs_and_predicts_the_padded_circuits(run_dir, capsys):
    settings = dict(shots=4000, batch_size=64, progress=False, limit=64)
    plain = deploy(run_dir, 1, "fake_quito", **settings)
    padded = deploy(run_dir, 1, "fake_quito", decoupling=True, **settings)
    assert padded["dynamical_decoupling"] and "dynamical_decoupling" not in plain
    assert (_folder(run_dir, 1).with_name(_folder(run_dir, 1).name + "-dd") / "summary.json").exists()
    # The prediction scores the padded circuits (another loss), and the device agrees with it.
    assert padded["predicted"]["loss"] != pytest.approx(plain["predicted"]["loss"], abs=1e-9)
    assert abs(padded["measured"]["loss"] - padded["predicted"]["loss"]) <= max(
        0.03, 4 * padded["shot_noise_se"]
    )
    assert "X-X dynamical decoupling" in summary_text(padded)
    assert (
        main(["deploy", str(run_dir), "--device", "fake_rochester", "--dd", "--limit", "8", "--quiet"]) == 2
    )


class _Interrupt(Exception):
    pass


def test_an_interrupted_deploy_resubmits_nothing_that_finished(run_dir):
    def stop_after_first(record):
        raise _Interrupt(record["job_id"])

    settings = dict(shots=1000, batch_size=16, progress=False, limit=64)
    with pytest.raises(_Interrupt) as first:
        deploy(run_dir, 3, "fake_quito", on_batch=stop_after_first, **settings)
    jobs = _folder(run_dir, 3, shots=1000) / "jobs.jsonl"
    assert [(r["batch"], r["status"]) for r in _lines(jobs)] == [(0, "submitted"), (0, "done")]
    summary = deploy(run_dir, 3, "fake_quito", **settings)
    records = _lines(jobs)
    for batch in range(4):
        assert [r["status"] for r in records if r["batch"] == batch] == ["submitted", "done"]
    assert summary["job_ids"][0] == str(first.value)
    assert deploy(run_dir, 3, "fake_quito", **settings) == summary
    # The candidate's id, or a prefix of it, names the same deploy: nothing is submitted again.
    assert deploy(run_dir, _folder(run_dir, 3).name.split("-")[-1][:6], "fake_quito", **settings) == summary
    assert len(_lines(jobs)) == len(records)
    with pytest.raises(ValueError, match="differs in batch_size"):
        deploy(run_dir, 3, "fake_quito", **{**settings, "batch_size": 32})


def test_a_deploy_with_other_shots_goes_to_a_folder_of_its_own(run_dir):
    """A folder held one shot count: comparing shot counts stopped with "differs in shots"."""
    settings = dict(batch_size=64, progress=False, limit=32)
    default = deploy(run_dir, 4, "fake_quito", shots=4000, **settings)
    fewer = deploy(run_dir, 4, "fake_quito", shots=400, **settings)
    folder = _folder(run_dir, 4)
    assert fewer["jobs"] == str(folder.with_name(folder.name + "-shots400") / "jobs.jsonl")
    assert default["jobs"] == str(folder / "jobs.jsonl")
    assert json.loads((folder / "summary.json").read_text()) == default
    counts = [r["counts"] for r in _lines(Path(fewer["jobs"])) if r["status"] == "done"]
    assert all(sum(c.values()) == 400 for batch in counts for c in batch[0])
    # Both resume where they are, nothing submitted again.
    assert deploy(run_dir, 4, "fake_quito", shots=400, **settings) == fewer
    assert deploy(run_dir, 4, "fake_quito", shots=4000, **settings) == default
    # A deploy made before folders carried their shots (in the unnamed folder) resumes there.
    folder.rename(folder.with_name(folder.name + "-moved"))  # the 4000-shot deploy out of the way
    named = Path(fewer["jobs"]).parent
    named.rename(folder)
    again = deploy(run_dir, 4, "fake_quito", shots=400, **settings)
    assert again["jobs"] == str(folder / "jobs.jsonl") and not named.exists()
    assert again["measured"] == fewer["measured"] and again["job_ids"] == fewer["job_ids"]


def test_a_local_deploy_measures_the_same_counts_when_repeated(run_dir, tmp_path):
    # Shots are drawn by Aer, seeded from the run's config: a deploy repeated from scratch
    # (its folder moved away) measures exactly what the first one did.
    settings = dict(shots=500, batch_size=16, progress=False, limit=32)
    first = deploy(run_dir, 2, "fake_quito", **settings)
    folder = _folder(run_dir, 2, shots=500)
    first_counts = [r["counts"] for r in _lines(folder / "jobs.jsonl") if r["status"] == "done"]
    folder.rename(tmp_path / "first")
    again = deploy(run_dir, 2, "fake_quito", **settings)
    assert again["measured"] == first["measured"]
    assert [r["counts"] for r in _lines(folder / "jobs.jsonl") if r["status"] == "done"] == first_counts
    assert first_counts[0] != first_counts[1]


def test_a_planted_token_appears_nowhere(run_dir, monkeypatch, capsys, caplog):
    token = "qnas-test-token-" + secrets.token_hex(16)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        deploy(run_dir, "best", "ibm_brisbane", progress=False)
    assert time.monotonic() - started < 30
    text = "".join(traceback.format_exception(err.value))
    out, errs = capsys.readouterr()
    for seen in (text, repr(err.value), out, errs, caplog.text):
        assert token not in seen
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert not (run_dir / "deploy" / "ibm_brisbane-best").exists()


def test_a_live_device_without_an_account_fails_at_once_saying_how_to_save_one(run_dir, tmp_path):
    # A fresh HOME holds no saved account whatever this machine has; no QISKIT_IBM_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QISKIT_IBM")}
    env["HOME"] = str(tmp_path)
    code = (
        "import sys\nfrom qnas.deploy import deploy\n"
        "try:\n    deploy(sys.argv[1], 'best', 'ibm_brisbane', progress=False)\n"
        "except RuntimeError as err:\n    print(err)\n"
    )
    # "At once": before any job folder exists, with no network wait (a wait would hit the timeout);
    # a wall-clock bound would measure the machine's load, not the code.
    done = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)], env=env, capture_output=True, text=True, timeout=120
    )
    assert "no IBM Quantum account" in done.stdout and "save_account" in done.stdout
    assert not (run_dir / "deploy" / "ibm_brisbane-best").exists()


def test_the_deploy_fingerprint_is_the_same_in_every_process(tmp_path):
    # qiskit's OpenQASM 3 text of a parameter expression changes with the process's hash
    # seed; the fingerprint that guards a resumed deploy must not.
    code = (
        "import torch; from qnas.space import load_space;"
        "from qnas.supercircuit import SuperCircuit;"
        "sc = SuperCircuit(load_space('u3cu3'), 4, max_blocks=2, seed=3);"
        "print(sc.subcircuit(sc.largest()).digest('digits4'))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2)
    }
    assert len(prints) == 1 and len(prints.pop().strip()) == 64


def test_twirled_copies_act_as_the_circuit_and_a_twirled_deploy_repeats_its_counts(run_dir, tmp_path, capsys):
    """--twirl N: N Pauli-twirled copies of each circuit share its shots, seeded, counted together."""
    from qiskit.quantum_info import Operator

    from qnas.deploy import twirl
    from qnas.devices import get_device

    device = get_device("fake_quito")
    circuit = QuantumCircuit(2)
    circuit.rz(0.3, 0)
    circuit.sx(0)
    circuit.cx(0, 1)
    circuit.rz(0.7, 1)
    circuit.sx(1)
    copies = twirl(circuit, 4, device, seed=0)
    assert len(copies) == 4 and len({str(c.data) for c in copies}) > 1  # random Pauli pairs
    for copy in copies:
        assert Operator(copy).equiv(Operator(circuit))  # the same gate action, up to global phase
        assert copy.count_ops()["cx"] == 1
        # The Paulis merged into the gates beside them: at most one sx-rz run per side of the CX.
        assert copy.count_ops().get("sx", 0) + copy.count_ops().get("x", 0) <= 4
    assert [str(c.data) for c in twirl(circuit, 4, device, seed=0)] == [str(c.data) for c in copies]

    settings = dict(shots=400, batch_size=16, progress=False, limit=16, twirls=4)
    first = deploy(run_dir, "best", "fake_quito", **settings)
    folder = Path(first["jobs"]).parent
    assert folder.name == "fake_quito-best-twirl4-shots400" and first["twirls"] == 4
    (done,) = [r for r in _lines(folder / "jobs.jsonl") if r["status"] == "done"]
    assert len(done["counts"]) == 4  # one basis, 4 copies, 100 shots each per sample
    assert all(sum(c.values()) == 100 for copy in done["counts"] for c in copy)
    assert abs(first["measured"]["accuracy"] - first["predicted"]["accuracy"]) <= max(
        0.1, 3 * first["shot_noise_se"]
    )
    folder.rename(tmp_path / "first")
    assert deploy(run_dir, "best", "fake_quito", **settings)["measured"] == first["measured"]
    argv = ["deploy", str(run_dir), "--device", "fake_quito", "--shots", "400", "--limit", "16", "--quiet"]
    assert main([*argv, "--twirl", "3"]) == 2
    err = capsys.readouterr().err
    assert "--twirl 3" in err and "divisor of --shots (400)" in err and "Traceback" not in err
    # The estimator path runs no twirled copies: refused, not silently ignored.
    assert main([*argv, "--twirl", "4", "--primitive", "estimator"]) == 2
    assert "--twirl applies to --primitive sampler" in capsys.readouterr().err
