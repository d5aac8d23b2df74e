import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from qiskit import qasm3
from qiskit.quantum_info import Statevector

from qnas.cli import main
from qnas.sim import run


def test_devices_lists_calibration_figures(capsys):
    assert main(["devices", "fake_quito", "fake_brisbane"]) == 0
    out = capsys.readouterr().out
    assert "fake_brisbane" in out and "127" in out and "median_readout_error" in out


def test_a_snapshot_is_a_device(tmp_path, capsys):
    path = tmp_path / "lima.json"
    assert main(["snapshot", "fake_lima", str(path)]) == 0
    assert main(["devices", str(path)]) == 0
    assert "cx id rz sx x" in capsys.readouterr().out


def test_export_reimports_to_the_same_state(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["search", "--config", "tests/tiny_search.yaml", "--out", str(out), "--workers", "0", "--quiet"])
        == 0
    )
    capsys.readouterr()
    trial = int(json.loads((out / "best.json").read_text())["trial"])
    qasm_file = tmp_path / "c.qasm3"
    assert (
        main(["export", str(out), "--trial", str(trial), "--format", "qasm3", "--out", str(qasm_file)]) == 0
    )
    circuit = qasm3.loads(qasm_file.read_text())
    # Bind one sample's features and compare with the torch simulation of the same subcircuit.
    from qnas.pipeline import load_supercircuit
    from qnas.results import RunDir

    run_dir = RunDir(out)
    task, sc = load_supercircuit(run_dir.load_config(), run_dir)
    arch = json.loads(
        __import__("pandas").read_csv(out / "candidates.csv").set_index("trial").loc[trial, "arch"]
    )
    x = task.samples("test", 1)[0]
    sub = sc.subcircuit(arch)
    psi = run(
        [*task.encoder, *sub.layers],
        4,
        weights=sc.weights.detach(),
        inputs=x.double(),
        dtype=torch.complex128,
    )
    values = {p: float(x[0, int(p.name.strip("_").split("_")[-1])]) for p in circuit.parameters}
    theirs = Statevector(circuit.assign_parameters(values)).reverse_qargs().data
    assert abs(np.vdot(psi[0].numpy(), theirs)) ** 2 > 1 - 1e-6
    assert (
        main(["export", str(out), "--trial", "best", "--format", "qasm2", "--transpiled", "--sample", "0"])
        == 0
    )
    assert "OPENQASM 2.0" in capsys.readouterr().out
    # Without a sample, QASM 2 would drop the encoder: refused, naming QASM 3.
    assert main(["export", str(out), "--format", "qasm2"]) == 2
    assert "export OpenQASM 3" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["pareto", "/nonexistent/run"], ["export", "/nonexistent/run"]])
def test_missing_run_dir_is_one_line(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("qnas: error: /nonexistent/run is not a qnas run directory")


def test_prune_exports_a_smaller_circuit(tmp_path, capsys):
    out = tmp_path / "run"
    overrides = [
        "--set",
        "space.max_blocks=1",
        "--set",
        "search.arch=[4, 4, 1]",
        "--set",
        "search.layout=default",
    ]
    budget = ["--set", "search.population=1", "--set", "search.parents=1", "--set", "search.mutants=0"]
    budget += ["--set", "search.crossovers=0", "--set", "search.iterations=1"]
    assert (
        main(
            [
                "search",
                "--config",
                "tests/tiny_search.yaml",
                "--out",
                str(out),
                "--workers",
                "0",
                "--quiet",
                *overrides,
                *budget,
            ]
        )
        == 0
    )
    assert main(["prune", str(out), "--ratio", "0.5", "--granularity", "gate", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "pruned" in printed
    pruned = qasm3.loads((out / "exports" / "pruned-best.qasm3").read_text())
    full = qasm3.loads((out / "exports" / "best.qasm3").read_text())
    assert pruned.size() < full.size()


def test_a_listing_piped_into_head_ends_quietly():
    # Before: BrokenPipeError's traceback when the reader stops after a few lines.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        f"{sys.executable} -m qnas.cli tasks | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
