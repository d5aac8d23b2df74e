"""End-to-end searches through the CLI, as a user runs them: small, real parts throughout."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from qnas.cli import main
from qnas.evolution.pareto import hypervolume

CONFIG = Path(__file__).with_name("tiny_search.yaml")
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _search_cmd(out, *extra):
    return [
        sys.executable,
        "-m",
        "qnas.cli",
        "search",
        "--config",
        str(CONFIG),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def _complete_keys(out):
    df = pd.read_csv(out / "candidates.csv")
    return df.loc[~df["failed"]].set_index("key")[["loss", "n_2q"]].sort_index()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    assert main(["search", "--config", str(CONFIG), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    return out


def test_search_writes_a_self_describing_run_dir(uninterrupted, capsys):
    for name in (
        "config.yaml",
        "supercircuit.pt",
        "study.journal",
        "candidates.parquet",
        "candidates.csv",
        "pareto.csv",
        "history.csv",
        "pareto.png",
        "pareto.html",
        "best.json",
        "exports/best.qasm3",
    ):
        assert (uninterrupted / name).exists(), name
    history = pd.read_csv(uninterrupted / "history.csv")
    assert list(history["generation"]) == [0, 1, 2]
    # Each generation's hypervolume is that of every candidate scored so far, against the
    # reference fixed after generation 0 (hypervolume itself: grid counts in test_pareto).
    candidates = pd.read_csv(uninterrupted / "candidates.csv")
    done = candidates.loc[~candidates["failed"]]
    first = done.loc[done["generation"] == 0, ["loss", "n_2q"]].to_numpy()
    span = np.ptp(first, axis=0)
    reference = first.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0)
    for generation, reported in zip(history["generation"], history["hypervolume"], strict=True):
        found = done.loc[done["generation"] <= generation, ["loss", "n_2q"]].to_numpy()
        assert reported == pytest.approx(hypervolume(found, reference), rel=1e-9), generation
    assert history["hypervolume"].iloc[-1] > 0
    assert main(["pareto", str(uninterrupted), "--format", "csv"]) == 0
    front = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert {"trial", "loss", "n_2q"} <= set(front.columns) and len(front) >= 1


def test_running_again_resumes_and_repeats_nothing(uninterrupted):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(uninterrupted / "study.journal"))
    )
    name = optuna.get_all_study_names(storage)[0]
    before = len(optuna.load_study(study_name=name, storage=storage).trials)
    assert (
        main(["search", "--config", str(CONFIG), "--out", str(uninterrupted), "--workers", "0", "--quiet"])
        == 0
    )
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == before


def test_sigkill_then_resume_loses_and_repeats_nothing(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _search_cmd(out, "--workers", "0"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        if (out / "candidates.csv").exists() and len(pd.read_csv(out / "candidates.csv")) >= 8:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = set(pd.read_csv(out / "candidates.csv")["key"])
    subprocess.run(_search_cmd(out, "--workers", "0"), env=ENV, check=True, capture_output=True)
    resumed = _complete_keys(out)
    assert done_before <= set(resumed.index)  # nothing lost
    assert resumed.index.is_unique  # nothing scored twice
    pd.testing.assert_frame_equal(
        resumed, _complete_keys(uninterrupted)
    )  # the same search as without the kill
    assert (
        pd.read_csv(out / "pareto.csv")["key"].tolist()
        == pd.read_csv(uninterrupted / "pareto.csv")["key"].tolist()
    )


def test_two_searches_share_one_storage(uninterrupted, tmp_path):
    # A journal file shared by two processes: Optuna's storage for several processes on one machine.
    storage = str(tmp_path / "shared.journal")
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        subprocess.Popen(
            _search_cmd(r, "--workers", "0", "--storage", storage),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for r in runs
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    shared = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    # Equal configs give equal scores, so the two runs share one study, named in each run.
    names = optuna.get_all_study_names(shared)
    assert names == [(r / "study_name").read_text().strip() for r in runs[:1]]
    assert (runs[1] / "study_name").read_text() == (runs[0] / "study_name").read_text()
    for r in runs:
        pd.testing.assert_frame_equal(_complete_keys(r), _complete_keys(uninterrupted))


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.objectives=[loss, fidelity]", "unknown objective(s) ['fidelity']"),
        ("search.population=7", "parents (2) + mutants (3) + crossovers (1) must equal population (7)"),
        ("search.layout=[0, 1, 2, 9]", "qubits [9] are not on fake_quito"),
        ("device=fake_quitoo", "fake_quito"),
        ("space.name=u3cu4", "unknown space 'u3cu4'"),
        ("search.objectives=[energy]", "objective 'energy' is not a metric of task digits4"),
        ("search.arch=[5, 4, 4, 4, 2]", "width of block 0 layer 0 = 5 not allowed; allowed: [1, 2, 3, 4]"),
        ("task.name=mnist9", "unknown task 'mnist9'"),
    ],
)
def test_bad_config_is_rejected_before_training(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    code = main(
        ["search", "--config", str(CONFIG), "--out", str(out), "--workers", "0", "--quiet", "--set", override]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "supercircuit.pt").exists()


@pytest.mark.cluster
def test_search_on_a_two_node_cluster_through_ray_address(uninterrupted, tmp_path, two_node_cluster):
    address, env = two_node_cluster
    out = tmp_path / "cluster"
    done = subprocess.run(
        _search_cmd(out, "--workers", "2", "--ray-address", address),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(_complete_keys(out), _complete_keys(uninterrupted))


def test_runs_sharing_a_supercircuit_share_its_finetuning(uninterrupted, tmp_path):
    # The same SuperCircuit searched on two devices: fine-tuning is noiseless, so a
    # finalist circuit the second run has in common with the first is not trained again.
    from qnas.config import load_config
    from qnas.pipeline import run_search
    from qnas.results import RunDir
    from qnas.space import load_space
    from qnas.supercircuit import SuperCircuit

    shared = tmp_path / "finetuned"
    runs = []
    for device in ("fake_quito", "fake_lima"):
        run = RunDir(tmp_path / device)
        run.path.mkdir()
        shutil.copy(uninterrupted / "supercircuit.pt", run.checkpoint)
        config = load_config(CONFIG, [f"device={device}"])
        runs.append(run_search(config, run, workers=0, progress=False, finetune_dir=shared).best)
        if device == "fake_quito":
            first = {p.name: p.stat().st_mtime_ns for p in shared.glob("*.pt")}
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=2)
    archs = [{sc.canonical(f["arch"]) for f in best["finalists"]} for best in runs]
    assert archs[0] & archs[1], "the two runs have no finalist in common; the test shows nothing"
    files = {p.name: p.stat().st_mtime_ns for p in shared.glob("*.pt")}
    assert len(files) == len(archs[0] | archs[1])
    assert all(files[name] == mtime for name, mtime in first.items())


def test_concurrent_runs_sharing_a_finetune_folder_train_each_circuit_once(uninterrupted, tmp_path):
    # Two processes fine-tune the same finalists into one folder at the same time: each
    # common circuit is trained by one of them while the other waits, then loads it.
    shared = tmp_path / "finetuned"
    code = (
        "import sys, shutil; from pathlib import Path;"
        "from qnas.config import load_config; from qnas.pipeline import run_search; from qnas.results import RunDir;"
        "run = RunDir(sys.argv[2]); run.path.mkdir(); shutil.copy(sys.argv[3], run.checkpoint);"
        "config = load_config(sys.argv[4], [f'device={sys.argv[1]}', 'finetune.epochs=40']);"
        "run_search(config, run, workers=0, progress=False, finetune_dir=Path(sys.argv[5]))"
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                device,
                str(tmp_path / device),
                str(uninterrupted / "supercircuit.pt"),
                str(CONFIG),
                str(shared),
            ],
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        for device in ("fake_quito", "fake_lima")
    ]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert list(shared.glob("*.pt")) and not list(shared.glob("*.tmp"))
