"""Readout mitigation (M3) and zero-noise extrapolation, alone and through a deploy in local mode."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.quantum_info import Statevector

from qnas import mitigation
from qnas.cli import main
from qnas.deploy import deploy, summary_text
from qnas.devices import get_device
from qnas.transpiled import MEASURED, transpile_candidate


def test_m3_undoes_a_known_readout_channel():
    rng = np.random.default_rng(0)
    true = rng.dirichlet(np.ones(8), size=5)  # 5 distributions over 3 qubits
    flips = [np.array([[0.97, 0.06], [0.03, 0.94]]), np.array([[0.9, 0.1], [0.1, 0.9]]), np.eye(2)]
    channel = np.kron(flips[2], np.kron(flips[1], flips[0]))  # qubit 0 is the last factor (bit 0)
    shots = 200_000
    measured = np.stack([rng.multinomial(shots, channel @ p) / shots for p in true])
    fixed = mitigation.mitigate_readout(measured, shots, flips)
    assert np.abs(fixed - true).max() < 0.01 < np.abs(measured - true).max()


def test_readout_matrices_read_each_qubits_flips_off_the_balanced_patterns():
    patterns = mitigation.calibration_patterns(3)
    flip = [0.1, 0.0, 0.25]  # P(measure 1 - b | prepare b), the same for 0 and 1
    counts = []
    for pattern in patterns:
        row: dict[str, int] = {}
        for outcome in range(8):
            p = 1.0
            for q in range(3):
                bit = (outcome >> q) & 1
                p *= 1 - flip[q] if bit == pattern[q] else flip[q]
            row[format(outcome, "03b")] = round(1000 * p)
        counts.append(row)
    matrices = mitigation.readout_matrices(counts, 3)
    for q in range(3):
        assert matrices[q] == pytest.approx(
            np.array([[1 - flip[q], flip[q]], [flip[q], 1 - flip[q]]]), abs=2e-3
        )


@pytest.mark.parametrize("name", ["fake_quito", "fake_rochester", "fake_fez"])
def test_calibration_circuits_are_in_each_devices_basis_gates(name):
    device = get_device(name)
    circuits = mitigation.calibration_circuits(device, [2, 0, 1])
    assert len(circuits) == len(mitigation.calibration_patterns(3))
    allowed = set(device.basis_gates) | {"measure", "barrier"}
    for qc in circuits:
        assert set(qc.count_ops()) <= allowed
        assert qc.count_ops()["measure"] == 3


def test_richardson_extrapolation_is_exact_for_a_line():
    at = {1: np.array([0.8, 0.1]), 3: np.array([0.6, 0.3])}
    assert mitigation.extrapolate(at) == pytest.approx([0.9, 0.0])


def test_richardson_through_three_scales_is_exact_for_a_parabola():
    # f(s) = 0.9 - 0.1 s + 0.01 s^2, per entry: a line through 1 and 3 misses f(0), a parabola does not.
    def f(s: float) -> np.ndarray:
        return np.array([0.9 - 0.1 * s + 0.01 * s**2, 0.2 + 0.05 * s - 0.005 * s**2])

    at = {s: f(s) for s in (1, 3, 5)}
    assert mitigation.extrapolate(at) == pytest.approx(f(0))
    assert mitigation.extrapolate({1: at[1], 3: at[3]}) != pytest.approx(f(0))


def test_the_signal_a_folded_circuit_keeps_is_its_spread_across_samples_or_its_distance_from_mixed():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(50, 4))
    # Many samples: a global depolarizing factor f keeps f of the spread; a shift keeps all of it.
    kept = mitigation.signal_kept({1: first, 3: 0.25 * first, 5: first + 7.0}, np.zeros(4))
    assert kept == pytest.approx({1: 1.0, 3: 0.25, 5: 1.0})
    # One row (an energy): its distance from the fully mixed state's value.
    kept = mitigation.signal_kept({1: np.array([[-1.0]]), 3: np.array([[-0.4]])}, np.array([0.2]))
    assert kept[3] == pytest.approx(0.6 / 1.2)
    # Shot noise spreads the rows as well: taken out, outputs at the fully mixed state keep nothing.
    noise = rng.normal(scale=0.1, size=(50, 4))
    kept = mitigation.signal_kept({1: first, 3: noise}, np.zeros(4), {1: 0.0, 3: 0.01 * 1.5})
    assert kept[3] == 0.0
    assert mitigation.signal_kept({1: first, 3: noise}, np.zeros(4))[3] > 0.05


@pytest.mark.parametrize("scales", [[1], [3, 5], [1, 0.5], [1, 3, 3], [0, 1, 3], [-1, 1], [1, 1.0]])
def test_bad_zne_scales_are_refused_naming_them(scales):
    with pytest.raises(ValueError, match=re.escape(str(scales))):
        mitigation.check_scales(scales)


def test_a_folded_circuit_does_what_it_did_with_three_times_the_gates():
    device = get_device("fake_quito")
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.4, 2)
    qc.cx(1, 2)
    candidate = transpile_candidate(qc, device, [0, 1, 2], optimization_level=1)
    measured = candidate.measured_device_circuit(device)
    folded = mitigation.fold(measured, 3, device)
    counts = measured.count_ops()

    def two_qubit(ops) -> int:
        return sum(n for name, n in ops.items() if name in ("cx", "ecr", "cz"))

    assert two_qubit(folded.count_ops()) == 3 * two_qubit(counts) > 0
    assert folded.count_ops()["measure"] == counts["measure"]

    def ideal(circuit: QuantumCircuit) -> np.ndarray:
        body = circuit.remove_final_measurements(inplace=False)
        body.remove_final_measurements()
        kept = QuantumCircuit(*body.qregs)
        for inst in body.data:
            if inst.operation.name not in ("barrier", "delay"):
                kept.append(inst)
        return Statevector(kept).probabilities()

    assert ideal(folded) == pytest.approx(ideal(measured), abs=1e-9)
    assert isinstance(folded.cregs[0], ClassicalRegister) and folded.cregs[0].name == MEASURED
    # Between odd scales the last gates fold too (the old fold refused any even scale):
    # scale 2 adds as many two-qubit gates as the circuit holds, 1.5 half of them.
    n = two_qubit(counts)
    for scale, realized in ((2, 2), (1.5, 1 + 2 * round(n / 4) / n), (5, 5)):
        partly = mitigation.fold(measured, scale, device)
        assert two_qubit(partly.count_ops()) == round(realized * n)
        assert mitigation.realized_scale(measured, scale) == pytest.approx(realized)
        assert ideal(partly) == pytest.approx(ideal(measured), abs=1e-9)
    assert mitigation.check_scales([1, 2.0, 1.5]) == (1, 1.5, 2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mitigated") / "run"
    argv = ["search", "--config", "tests/tiny_search.yaml", "--out", str(out), "--workers", "0", "--quiet"]
    assert main(argv) == 0
    return out


class _Interrupt(Exception):
    pass


def test_a_mitigated_deploy_interrupted_resubmits_nothing_and_gives_the_same_summary(run_dir, tmp_path):
    settings = dict(shots=1000, batch_size=16, progress=False, limit=32, mitigation="readout+zne")
    seen: list[str] = []

    def stop_after_two(record):
        seen.append(record["job_id"])
        if len(seen) == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        deploy(run_dir, "best", "fake_quito", on_batch=stop_after_two, **settings)
    summary = deploy(run_dir, "best", "fake_quito", **settings)
    folder = run_dir / "deploy" / "fake_quito-best-readout+zne-shots1000"
    records = [json.loads(line) for line in (folder / "jobs.jsonl").read_text().splitlines()]
    # 2 test batches, their 2 folded copies, 1 calibration job: each submitted once, done once.
    assert sorted({r["batch"] for r in records}) == [0, 1, 2, 3, 4]
    for batch in range(5):
        assert [r["status"] for r in records if r["batch"] == batch] == ["submitted", "done"]
    assert set(summary["mitigated"]) == {"readout", "zne", "readout+zne"}
    assert summary["mitigation_shots"] == {"raw": 32000, "readout_calibration": 8000, "zne_folded": 32000}
    for scores in summary["mitigated"].values():
        assert 0 <= scores["accuracy"] <= 1 and scores["shot_noise_se"] > 0
    # ZNE's extrapolation amplifies shot noise; M3 barely does.
    assert summary["mitigated"]["zne"]["shot_noise_se"] > summary["shot_noise_se"]
    # Moved away and run from scratch: the same counts, so the same summary (under new job ids).
    folder.rename(tmp_path / "first")
    again = deploy(run_dir, "best", "fake_quito", **settings)
    assert {**again, "job_ids": None} == {**summary, "job_ids": None}


def test_the_cli_prints_raw_and_mitigated_side_by_side(run_dir, capsys):
    argv = ["deploy", str(run_dir), "--device", "fake_quito", "--shots", "500", "--limit", "16", "--quiet"]
    assert main([*argv, "--mitigation", "readout"]) == 0
    out = capsys.readouterr().out
    assert "raw" in out and "readout" in out and "extra shots" in out
    # The headline names the shots per circuit (it printed the mitigated shot counts' dict).
    assert "job(s), 500 shots per sample, 16 test samples" in out
    # So does the run's report, which reads the same summary (it printed the dict too).
    assert main(["report", str(run_dir)]) == 0
    report = (run_dir / "report.html").read_text()
    assert "deployed (fake_quito, 500 shots)" in report and "readout_calibration" not in report
    # The loss beside the accuracy: a mitigation can bring the outputs nearer the noiseless ones
    # (a lower loss) while an argmax turns the wrong way (docs/results.md).
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("mitigated accuracy")) + 1
    mitigated = lines[start : start + 2]
    assert [line.split()[0] for line in mitigated] == ["raw", "readout"]
    assert all("loss 0." in line or "loss 1." in line for line in mitigated)
    with pytest.raises(SystemExit) as bad:
        main([*argv, "--mitigation", "twirl"])
    assert bad.value.code == 2 and "invalid choice: 'twirl'" in capsys.readouterr().err


def test_a_readout_mitigated_deploy_predicts_where_it_aims_and_a_readout_free_run_predicts_the_raw(
    run_dir, tmp_path, capsys
):
    """M3 aims at the noisy simulation without readout error; the raw counts always carry it."""
    settings = dict(shots=2000, batch_size=64, progress=False, limit=32)
    summary = deploy(run_dir, "best", "fake_quito", mitigation="readout", **settings)
    free, with_error = summary["predicted_readout_free"], summary["predicted"]
    assert free["loss"] != pytest.approx(with_error["loss"], abs=1e-4)  # the readout error is left out
    # A run searched without readout error (search.readout_noise: false) is still deployed on a
    # device that has it: its raw prediction keeps the error (it used to leave it out).
    other = tmp_path / "readout_free"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("deploy"))
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["search"]["readout_noise"] = False
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    again = deploy(other, "best", "fake_quito", mitigation="readout", **settings)
    assert again["predicted"] == pytest.approx(with_error)
    assert again["predicted_readout_free"] == pytest.approx(free)
    # The summary warns only when the readout error helps the circuit (then M3 lowers the metric).
    helps = "readout mitigation is expected to lower the accuracy"
    for shift, warned in ((-0.1, True), (+0.1, False)):
        moved = {**summary, "predicted_readout_free": {**free, "accuracy": with_error["accuracy"] + shift}}
        assert (helps in summary_text(moved)) == warned
    argv = ["deploy", str(run_dir), "--device", "fake_quito", "--shots", "2000", "--limit", "32", "--quiet"]
    assert main([*argv, "--mitigation", "readout"]) == 0
    assert "without readout error (where readout mitigation aims)" in capsys.readouterr().out


def test_zne_from_three_noise_scales_runs_two_folded_copies_in_a_deploy_of_its_own(run_dir, capsys):
    settings = dict(shots=500, batch_size=64, progress=False, limit=16, mitigation="zne")
    default = deploy(run_dir, "best", "fake_quito", **settings)
    three = deploy(run_dir, "best", "fake_quito", zne_scales=(1, 3, 5), **settings)
    assert default["zne_scales"] == [1, 3] and three["zne_scales"] == [1, 3, 5]
    assert set(three["zne_signal_kept"]) == {"3", "5"}
    assert all(0 < v < 1.5 for v in three["zne_signal_kept"].values())
    assert (
        three["mitigation_shots"]["zne_folded"]
        == 2 * default["mitigation_shots"]["zne_folded"]
        == 2 * 16 * 500
    )
    folder = Path(three["jobs"]).parent
    assert folder.name == "fake_quito-best-zne-scales1-3-5-shots500"
    records = [json.loads(line) for line in (folder / "jobs.jsonl").read_text().splitlines()]
    assert sorted({r["batch"] for r in records}) == [0, 1, 2]  # scale 1, 3 and 5: one job each
    # The default keeps the folder (and plan) deploys made before the option had, so they resume.
    assert Path(default["jobs"]).parent.name == "fake_quito-best-zne-shots500"
    # Same raw counts (same seeds).
    assert three["measured"] == default["measured"]
    # A scale between odd ones: one folded copy with twice the two-qubit gates, its own folder.
    two = deploy(run_dir, "best", "fake_quito", zne_scales=(1, 2), **settings)
    assert two["zne_scales"] == [1, 2] and set(two["zne_signal_kept"]) == {"2"}
    assert Path(two["jobs"]).parent.name == "fake_quito-best-zne-scales1-2-shots500"
    assert two["measured"] == default["measured"] and two["mitigated"]["zne"] != default["mitigated"]["zne"]
    argv = ["deploy", str(run_dir), "--device", "fake_quito", "--shots", "500", "--limit", "16", "--quiet"]
    assert main([*argv, "--mitigation", "zne", "--zne-scales", "1", "3", "5"]) == 0
    out = capsys.readouterr().out
    assert "ZNE from noise scales 1, 3, 5" in out and "of the signal at scale 1" in out
    assert main([*argv, "--mitigation", "zne", "--zne-scales", "1", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "[1.0, 0.5]" in err and "starting at 1" in err and "Traceback" not in err
    # Scales closer than one two-qubit gate fold to the same circuit: refused before any job.
    assert main([*argv, "--mitigation", "zne", "--zne-scales", "1", "1.01"]) == 2
    err = capsys.readouterr().err
    assert "[1, 1.01]" in err and "further apart" in err and "Traceback" not in err


def test_a_mitigated_deploy_killed_resumes_without_resubmitting_a_finished_job(run_dir, tmp_path):
    argv = [sys.executable, "-m", "qnas.cli", "deploy", str(run_dir), "--device", "fake_quito", "--quiet"]
    argv += ["--shots", "300", "--limit", "32", "--batch-size", "8", "--mitigation", "readout+zne"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    jobs = run_dir / "deploy" / "fake_quito-best-readout+zne-shots300" / "jobs.jsonl"
    if jobs.parent.exists():
        jobs.parent.rename(tmp_path / "earlier")

    def lines() -> list[dict]:
        return [json.loads(line) for line in jobs.read_text().splitlines()] if jobs.exists() else []

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and sum(r["status"] == "done" for r in lines()) < 3:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {r["batch"]: r["job_id"] for r in lines() if r["status"] == "done"}
    assert 3 <= len(done_before) < 9  # 4 test batches, their 4 folded copies, 1 calibration job
    subprocess.run(argv, env=env, check=True, capture_output=True)
    records = lines()
    for batch in range(9):
        assert [r["status"] for r in records if r["batch"] == batch].count("done") == 1
        if batch in done_before:  # finished before the kill: never submitted again
            assert [r["job_id"] for r in records if r["batch"] == batch and r["status"] == "submitted"] == [
                done_before[batch]
            ]
    resumed = json.loads((jobs.parent / "summary.json").read_text())
    jobs.parent.rename(tmp_path / "killed")
    subprocess.run(argv, env=env, check=True, capture_output=True)
    fresh = json.loads((jobs.parent / "summary.json").read_text())
    assert {**resumed, "job_ids": None, "jobs": None} == {**fresh, "job_ids": None, "jobs": None}
