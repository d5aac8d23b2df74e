"""A run survives damaged files and bad input: one line and exit 2, or a repaired resume.

Real parts throughout: tiny searches through the CLI, real Optuna storages, real files.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from qnas.cli import main

CONFIG = Path(__file__).with_name("tiny_search.yaml")
# Two candidates, one generation, no fine-tuning: a whole search in seconds.
TINY = [
    "--config",
    str(CONFIG),
    "--workers",
    "0",
    "--quiet",
    *("--set", "train.epochs=1"),
    *("--set", "search.population=2"),
    *("--set", "search.parents=2"),
    *("--set", "search.mutants=0"),
    *("--set", "search.crossovers=0"),
    *("--set", "search.iterations=1"),
    *("--set", "finetune.epochs=0"),
    *("--set", "search.valid_samples=20"),
]


def _search(out: Path, *extra: str) -> int:
    return main(["search", "--out", str(out), *TINY, *extra])


def _journal(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _n_trials(storage) -> dict[str, int]:
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert _search(out) == 0
    return out


@pytest.fixture
def copied_run(tiny_run, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(tiny_run, out)
    return out


# A. Storage and resume


def test_a_truncated_journal_is_cut_and_the_search_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert _search(out) == 0
    journal = out / "study.journal"
    data = journal.read_bytes()
    last_line_start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut_at = (last_line_start + len(data)) // 2  # mid-line, as a crash while writing leaves it
    journal.write_bytes(data[:cut_at])
    before = pd.read_csv(out / "candidates.csv")
    capsys.readouterr()
    assert _search(out) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "study.journal ended in a partial record" in err
    assert f"{cut_at - last_line_start} bytes" in err
    kept = data[:cut_at].count(b"\n")
    assert f"the {kept} complete records before it are kept" in err
    for line in journal.read_bytes().splitlines():
        json.loads(line)
    (name,) = optuna.get_all_study_names(_journal(journal))
    study = optuna.load_study(study_name=name, storage=_journal(journal))
    # Only the evaluation whose last record was cut is told again.
    assert len(study.trials) <= len(before) + 1
    after = pd.read_csv(out / "candidates.csv")
    assert sorted(after["key"]) == sorted(before["key"])
    # A second resume finds everything and adds no trial.
    assert _search(out) == 0
    assert "partial record" not in capsys.readouterr().err
    assert len(optuna.load_study(study_name=name, storage=_journal(journal)).trials) == len(study.trials)
