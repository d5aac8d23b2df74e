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
from optuna.trial import TrialState

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


def test_a_copied_run_resumes_without_new_evaluations(tiny_run, copied_run):
    before = _n_trials(_journal(copied_run / "study.journal"))
    assert _search(copied_run) == 0
    assert _n_trials(_journal(copied_run / "study.journal")) == before
    # The run directory says which study is its, and both copies name the same one.
    name = (copied_run / "study_name").read_text().strip()
    assert list(before) == [name] and (tiny_run / "study_name").read_text().strip() == name


def test_a_run_begun_before_new_config_keys_resumes_its_own_study(copied_run):
    # A run written by a qnas without the noisy-simulation keys: its config.yaml lacks them.
    import yaml

    data = yaml.safe_load((copied_run / "config.yaml").read_text())
    for key in ("noise_method", "exact_max_qubits", "trajectories", "memory_budget_gb"):
        del data["search"][key]
    (copied_run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    before = _n_trials(_journal(copied_run / "study.journal"))
    assert _search(copied_run) == 0
    assert _n_trials(_journal(copied_run / "study.journal")) == before


def test_runs_with_other_seeds_in_one_storage_get_other_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    runs = [tmp_path / f"seed{seed}" / "run" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        assert _search(run, "--storage", url, "--set", f"seed={seed}") == 0
    names = [(run / "study_name").read_text().strip() for run in runs]
    assert names[0] != names[1]
    assert sorted(_n_trials(optuna.storages.RDBStorage(url))) == sorted(names)


def test_two_live_runs_of_one_study_keep_each_others_trials(tmp_path):
    # Runs of one config share a study; the second starts while the first's trials run.
    from qnas.evolution.genome import Genome, GenomeSpace
    from qnas.evolution.study import CandidateStudy, open_storage

    space = GenomeSpace(2, 5, ((1, 2), (1, 2, 3)))

    def run() -> CandidateStudy:  # a storage of its own, as another process has
        storage = open_storage(tmp_path / "shared.journal")
        return CandidateStudy(storage, "qnas-shared", ["loss"], ["minimize"], space, key_of=str)

    def scored(items):
        for key, genome in items:
            yield key, {"loss": float(sum(genome.layout) + sum(genome.arch))}

    first, second = [Genome((0, 1), (1, 1)), Genome((2, 3), (2, 3))], [Genome((4, 0), (1, 2))]
    values = {}

    def first_evaluates(items):
        values["second"] = run().score(second, 0, scored)
        yield from scored(items)

    values["first"] = run().score(first, 0, first_evaluates)
    assert values["first"].ravel().tolist() == [3.0, 10.0] and values["second"].ravel().tolist() == [7.0]
    again = run()
    assert {k: r["values"] for k, r in again.records.items()} == {
        str(g): [float(sum(g.layout) + sum(g.arch))] for g in first + second
    }
    for trial in again.study.get_trials(states=(TrialState.COMPLETE,)):
        assert Genome.from_params(trial.params) == Genome(
            tuple(trial.user_attrs["layout"]), tuple(trial.user_attrs["arch"])
        )


def test_study_name_is_a_digest_of_the_config():
    from qnas.config import load_config
    from qnas.results import RunDir

    name = RunDir("a/run").study_name(load_config(CONFIG))
    assert name.startswith("qnas-") and len(name) == len("qnas-") + 16
    assert RunDir("b/other").study_name(load_config(CONFIG)) == name
    assert RunDir("a/run").study_name(load_config(CONFIG, ["seed=1"])) != name


def test_candidates_are_found_by_id_prefix_or_trial_number(tiny_run):
    from qnas.pipeline import load_candidate
    from qnas.results import RunDir, candidate_id

    table = pd.read_csv(tiny_run / "candidates.csv", dtype={"id": str})
    assert table.columns[0] == "id"
    assert list(table["id"]) == [candidate_id(k) for k in table["key"]]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in table["id"])
    assert set(pd.read_csv(tiny_run / "pareto.csv", dtype={"id": str})["id"]) <= set(table["id"])
    run = RunDir(tiny_run)
    for _, row in table.iterrows():
        expected = (tuple(json.loads(row["layout"])), tuple(json.loads(row["arch"])))
        for trial in (row["id"], row["id"][:4], row["id"].upper(), int(row["trial"])):
            genome = load_candidate(run, trial)[3]
            assert (genome.layout, genome.arch) == expected, trial
    assert (
        main(["export", str(tiny_run), "--trial", table["id"][0][:6], "--format", "qasm2", "--sample", "1"])
        == 0
    )


def test_an_ambiguous_id_prefix_lists_the_matches():
    from qnas.results import candidate_id, candidates_table, find_candidate

    # Keys of real genomes until two ids share their first 4 hex digits.
    seen: dict[str, str] = {}
    for n in range(100_000):
        key = f"L[0, 1, 2, 3]A[{n % 5}, {n // 5 % 5}, {n // 25}]"
        prefix = candidate_id(key)[:4]
        if prefix in seen:
            break
        seen[prefix] = key
    records = [
        {"number": i, "key": k, "values": [1.0], "layout": [0, 1, 2, 3], "arch": [1]}
        for i, k in enumerate([seen[prefix], key])
    ]
    table = candidates_table(records, ["loss"])
    with pytest.raises(ValueError, match=f"'{prefix}' matches 2 candidates") as err:
        find_candidate(table, prefix, Path("RUN"))
    assert all(i in str(err.value) for i in table["id"])
    assert find_candidate(table, table["id"][1], Path("RUN"))["key"] == key


def test_digits_that_are_a_trial_number_and_an_id_start_are_refused():
    from qnas.results import candidate_id, candidates_table, find_candidate

    # A key whose id starts with 4 digits (not 0), and a trial numbered by those digits.
    digits, key = next(
        (i[:4], k)
        for n in range(10_000)
        if (i := candidate_id(k := f"L[0, 1]A[{n}]"))[:4].isdigit() and i[0] != "0"
    )
    records = [
        {"number": int(digits), "key": "L[1, 0]A[1]", "values": [1.0]},
        {"number": int(digits) + 1, "key": key, "values": [2.0]},
    ]
    table = candidates_table(records, ["loss"])
    with pytest.raises(ValueError, match=f"is both trial number {int(digits)} .* and the start of id"):
        find_candidate(table, digits, Path("RUN"))
    assert find_candidate(table, int(digits), Path("RUN"))["key"] == "L[1, 0]A[1]"
    assert find_candidate(table, candidate_id(key), Path("RUN"))["key"] == key


@pytest.mark.parametrize("trial", ["abc", "zzzzzz", "ffffffffffff", "999"])
def test_an_unknown_trial_is_one_line_naming_how_to_find_ids(tiny_run, trial, capsys):
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--trial", trial]) == 2
    err = _one_error_line(capsys)
    assert repr(trial) in err and f"qnas pareto {tiny_run}" in err


def test_noise_aware_finetuning_needs_a_gradient_engine(tmp_path, capsys):
    from qnas.config import load_config

    out = tmp_path / "run"
    assert _search(out, "--set", "finetune.noise_aware=true") == 2
    err = _one_error_line(capsys)
    assert "finetune.engine" in err and "parameter_shift, spsa, finite_difference" in err
    assert not out.exists()
    for engine in ("parameter_shift", "spsa", "finite_difference"):
        load_config(None, ["finetune.noise_aware=true", f"finetune.engine={engine}"])


# B. Bad input is one line and exit 2, and changes nothing on disk


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("seed: 0\ntrain:\n  epochs: [1, 2\n  lr: 0.1\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert str(config) in err and "line 4" in err
    assert not out.exists()


def test_a_yaml_syntax_error_in_an_override_names_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--set", "search.arch=[4, 4"]) == 2
    err = _one_error_line(capsys)
    assert "'search.arch=[4, 4'" in err and "YAML" in err
    assert not out.exists()


def _unwritable_parents(tmp_path: Path) -> list[Path]:
    plain = tmp_path / "plain-file"
    plain.write_text("not a directory")
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    parents = [plain]
    # root writes through chmod; /sys refuses new entries even to root
    if not os.access(readonly, os.W_OK):
        parents.append(readonly)
    if Path("/sys/kernel").is_dir():
        parents.append(Path("/sys"))
    return parents


def test_an_out_that_is_a_file_or_cannot_be_made_is_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("someone's file")
    for out in [taken, *(parent / "run" for parent in _unwritable_parents(tmp_path))]:
        assert main(["train", "--out", str(out), *TINY[:2]]) == 2, out
        err = _one_error_line(capsys)
        assert str(out) in err and "--out" in err, err
    assert taken.read_text() == "someone's file"
    assert not (tmp_path / "readonly" / "run").exists()


def test_export_out_a_directory_is_one_line(tiny_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--out", str(tmp_path)]) == 2
    err = _one_error_line(capsys)
    assert str(tmp_path) in err and "directory" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["random", "truncated"])
@pytest.mark.parametrize("name", ["supercircuit.pt", "best.pt"])
def test_a_damaged_checkpoint_is_one_line_naming_it(copied_run, damage, name, capsys):
    path = copied_run / name
    data = path.read_bytes()
    damaged = np.random.default_rng(0).bytes(len(data)) if damage == "random" else data[: len(data) // 2]
    path.write_bytes(damaged)
    capsys.readouterr()
    commands = [["export", str(copied_run), "--trial", "best"]]
    if name == "supercircuit.pt":
        commands.append(["train", "--out", str(copied_run), *TINY[:2], *TINY[5:]])
    for argv in commands:
        assert main(argv) == 2, argv
        err = _one_error_line(capsys)
        assert str(path) in err and "delete it" in err, err
    assert path.read_bytes() == damaged


def test_an_npz_without_labels_names_the_file_and_the_missing_keys(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    np.savez(folder / "mnist.npz", x_train=images, x_test=images, y_test=np.zeros(4, dtype=np.uint8))
    monkeypatch.setenv("QNAS_DATA", str(tmp_path))
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--set", "task.name=mnist4"]) == 2
    err = _one_error_line(capsys)
    assert str(folder / "mnist.npz") in err and "y_train" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "override, where",
    [
        ("train.epochs=true", "train.epochs"),
        ("train.lr=false", "train.lr"),
        ("seed=true", "seed"),
        ("task.max_train=true", "task.max_train"),
        ("search.arch=[4, true]", "search.arch"),
    ],
)
def test_a_boolean_is_not_a_number(tmp_path, capsys, override, where):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--set", override]) == 2
    err = _one_error_line(capsys)
    assert err.startswith(f"qnas: error: {where}: ") and "boolean" in err
    assert not out.exists()


def test_numbers_as_yaml_reads_them_still_load():
    from qnas.config import load_config

    # YAML 1.1 reads 1e-2 (no dot) as a string; it is still a number to the config.
    config = load_config(None, ["train.lr=1e-2", "train.weight_decay=0", "finetune.lr=0.5", "seed=3"])
    assert (config.train.lr, config.train.weight_decay, config.finetune.lr, config.seed) == (0.01, 0, 0.5, 3)
    assert load_config(None, ["search.noise_aware=false"]).search.noise_aware is False
    root = Path(__file__).parents[1] / "configs"
    shipped = sorted(root.rglob("*.yaml"))
    assert shipped
    for path in shipped:
        load_config(path)


def test_too_many_valid_samples_says_which_value_works(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--set", "search.valid_samples=100000"]) == 2
    err = _one_error_line(capsys)
    assert "set search.valid_samples <= " in err
    limit = int(err.rsplit("<= ", 1)[1].split()[0].rstrip(";,."))
    assert main(["train", "--out", str(out), "--set", f"search.valid_samples={limit + 1}"]) == 2
    capsys.readouterr()
    from qnas.config import load_config
    from qnas.pipeline import check_config

    check_config(load_config(None, [f"search.valid_samples={limit}"]))


def test_a_run_made_before_new_task_settings_finds_its_fine_tuning(tmp_path):
    """Each task setting added to the config changed every fine-tuning checkpoint's name, so a run
    resumed across the upgrade fine-tuned its finalists again; it now finds the older names."""
    from qnas.config import Config
    from qnas.evaluate import build_supercircuit
    from qnas.pipeline import _finetune_checkpoint
    from qnas.tasks import task_from_config

    def old_name(config, sub, dropped):
        # As the qnas of the day named it: the task settings it knew (encoder left out at None).
        task_settings = {k: v for k, v in config.task.model_dump().items() if k not in dropped}
        del task_settings["encoder"]
        key = sub.digest(task_settings, config.finetune.model_dump(), config.seed)[:16]
        return tmp_path / f"finetune-{key}.pt"

    session12 = {"standardize", "label_smoothing"}
    session9 = session12 | {"mapping", "mapping_bond"}
    config = Config.model_validate({"task": {"name": "digits4"}, "space": {"max_blocks": 1}})
    task = task_from_config(config)
    sc = build_supercircuit(config, task)
    sub = sc.subcircuit(sc.fixed_blocks(1))
    newest = _finetune_checkpoint(tmp_path, config, task, sub, [])
    for dropped in (session12, session9):
        old = old_name(config, sub, dropped)
        assert old != newest
        old.touch()
        assert _finetune_checkpoint(tmp_path, config, task, sub, []) == old
        old.unlink()
    # Quantum-Train standardized per tensor then: only a run that asks for that shares the old name.
    for standardize, shared in ((None, False), ("tensor", True)):
        qt = Config.model_validate(
            {
                "task": {"name": "qt_digits10", "mapping_hidden": [4], "standardize": standardize},
                "device": "fake_guadalupe",
                "space": {"name": "ry_cnot", "max_blocks": 1},
            }
        )
        qt_task = task_from_config(qt)
        qt_sc = build_supercircuit(qt, qt_task)
        qt_sub = qt_sc.subcircuit(qt_sc.fixed_blocks(1))
        old = old_name(qt, qt_sub, session12)  # the day's name had no standardize key
        old.touch()
        assert (_finetune_checkpoint(tmp_path, qt, qt_task, qt_sub, []) == old) is shared
        old.unlink()


def test_a_quantum_train_run_saved_before_standardize_keeps_per_tensor(tmp_path):
    """A Quantum-Train run saved before task.standardize read as per unit, the new default, so its
    stored mapping weights generated another network than the one they were trained to."""
    import yaml

    from qnas.config import Config, dump_config
    from qnas.results import RunDir

    for name, expected in (("qt_digits10", "tensor"), ("digits4", None)):
        run = RunDir(tmp_path / name)
        run.path.mkdir()
        config = Config.model_validate({"task": {"name": name}})
        data = yaml.safe_load(dump_config(config))
        del data["task"]["standardize"], data["task"]["label_smoothing"]
        run.config_file.write_text(yaml.safe_dump(data, sort_keys=False))
        assert run.load_config().task.standardize == expected
        if expected:
            # Resumed with today's defaults, it is refused, naming the difference, not mixed.
            with pytest.raises(ValueError, match=r"differs in task.standardize"):
                run.prepare(config)
        else:
            run.prepare(config)
