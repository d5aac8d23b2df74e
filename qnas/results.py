"""The run directory and its tables.

A run directory is self-describing: the resolved config, the SuperCircuit checkpoint,
the Optuna study (a journal file unless another storage was given), the candidates
table (Parquet and CSV), the Pareto front, the per-generation history and the exports.
Re-running the same command on it resumes; a different config is refused rather than
mixed in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qnas.config import Config, dump_config, objective_direction, parse_yaml
from qnas.evolution.pareto import pareto_front


class RunDir:
    """Paths and tables of one run."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.yaml")
    checkpoint = property(lambda self: self.path / "supercircuit.pt")
    journal = property(lambda self: self.path / "study.journal")
    study_name_file = property(lambda self: self.path / "study_name")
    candidates_parquet = property(lambda self: self.path / "candidates.parquet")
    candidates_csv = property(lambda self: self.path / "candidates.csv")
    pareto_csv = property(lambda self: self.path / "pareto.csv")
    history_csv = property(lambda self: self.path / "history.csv")
    best_json = property(lambda self: self.path / "best.json")
    exports = property(lambda self: self.path / "exports")

    def prepare(self, config: Config) -> None:
        """Create the directory, write the config and the study's name; refuse a directory holding another config."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(
                f"{self.path} is a file, not a run directory; give --out a directory, new or a run's"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(
                f"cannot create the run directory {self.path} ({err.strerror}); give --out a place you can write"
            ) from None
        if self.config_file.exists():
            # Read through today's Config, so keys added since the run began take their defaults.
            saved = self.load_config().model_dump()
            if saved != config.model_dump():
                changed = _changed_keys(saved, config.model_dump())
                raise ValueError(
                    f"{self.path} holds a run with another config (differs in {', '.join(changed)}); "
                    "use a new --out directory to start a new run"
                )
        else:
            self.config_file.write_text(dump_config(config))
        # So the run directory says which study of a shared storage is its; a run begun by an
        # earlier qnas keeps its name when a release adds config keys (and so changes the digest).
        if not self.study_name_file.exists():
            self.study_name_file.write_text(self.study_name(config) + "\n")

    def load_config(self) -> Config:
        if not self.config_file.exists():
            raise FileNotFoundError(f"{self.path} is not a qnas run directory (no config.yaml)")
        return Config.model_validate(
            _as_written(parse_yaml(self.config_file.read_text(), str(self.config_file)))
        )

    def storage_url(self, storage: str | None) -> str:
        """The Optuna storage of this run: `storage` when given, else the journal file in the directory."""
        return storage or str(self.journal)

    def study_name(self, config: Config) -> str:
        """Return the name of the run's Optuna study: "qnas-" and 16 hex digits of the config's digest.

        Named by the resolved config, which is everything the scores depend on, not by the
        folder: a moved or copied run finds its own scores, and runs that differ in
        anything (a seed) never read each other's from one shared storage. The name is
        written into the run directory when the run begins and read from there after.
        """
        if self.study_name_file.exists():
            return self.study_name_file.read_text().strip()
        text = json.dumps(config.model_dump(), sort_keys=True)
        return f"qnas-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _as_written(data: Any) -> Any:
    """A saved config as the qnas that wrote it meant it, where a key added since changed a default.

    Quantum-Train standardized the generated weights per tensor until `task.standardize` came
    (2026-12-05, per output unit by default): a run saved before it keeps per tensor, so its
    stored mapping weights generate the network they were trained to.
    """
    # Imported here: the tasks load torch, which reading a run's tables does not need.
    from qnas.tasks import QUANTUM_TRAIN_TASKS

    task = data.get("task") if isinstance(data, dict) else None
    if isinstance(task, dict) and "standardize" not in task and task.get("name") in QUANTUM_TRAIN_TASKS:
        task["standardize"] = "tensor"
    return data


def read_checkpoint(path: Path) -> dict:
    """Return the checkpoint `torch.save` wrote to `path`; a damaged file is a ValueError naming it.

    A checkpoint cut short (a full disk, an interrupted copy) or overwritten otherwise
    makes torch raise anything from UnpicklingError to OSError, none naming the file.
    """
    import torch

    try:
        saved = torch.load(path, weights_only=False)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError) as err:
        first = (str(err).splitlines() or [""])[0][:100]
        raise ValueError(
            f"{path} is damaged and cannot be read ({type(err).__name__}: {first}); delete it to retrain "
            "(run the same command again)"
        ) from None
    if not isinstance(saved, dict):
        raise ValueError(
            f"{path} is not a qnas checkpoint (holds a {type(saved).__name__}); delete it to retrain"
        )
    return saved


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) for the block.

    For what concurrent processes share: a fine-tuning checkpoint folder, a cell of a
    reproduction table. POSIX advisory lock; released when the block ends or the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _changed_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


# The shortest id prefix `--trial` takes: 4 hex digits tell apart thousands of candidates.
ID_PREFIX = 4


def candidate_id(key: str) -> str:
    """Return a candidate's id: 12 hex digits of the digest of its study key (active circuit and layout).

    Trial numbers are Optuna's, given in order of asking, so a resumed run numbers its
    candidates differently; the id is the same in every run that scores the candidate.
    """
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def candidates_table(records: Iterable[dict[str, Any]], objectives: list[str]) -> pd.DataFrame:
    """One row per scored candidate: id, trial number, genome, every objective, costs and timings."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k not in ("values", "traceback")}
        row["id"] = candidate_id(r["key"])
        row["trial"] = r["number"]
        row["failed"] = r.get("values") is None
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for col in ("final_layout", "layout", "arch", "sampler_attrs"):
        if col in df:
            # JSON text: Parquet cannot store a column of empty mappings, nor lists of mixed kinds.
            df[col] = df[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    first = ["id", "trial", "generation", "layout", "arch", *[o for o in objectives if o in df], "failed"]
    order = [c for c in first if c in df] + [c for c in df.columns if c not in first]
    return df[order].sort_values("trial").reset_index(drop=True)


def find_candidate(df: pd.DataFrame, trial: int | str, run: Path) -> pd.Series:
    """Return the row of the candidates table `df` that `trial` names.

    `trial` is a candidate id, its first ID_PREFIX or more characters, or a trial number
    (an int, or a string of digits). A string of digits that is both a trial number and
    an id prefix is refused as ambiguous, as is a prefix of several ids.
    """
    # Tables written before candidates had ids still have every candidate's key.
    ids = df["id"] if "id" in df else df["key"].map(candidate_id)
    text = str(trial).strip().lower()
    by_number = df[df["trial"].astype(str) == text]
    # An int is a trial number only; a string may be an id, its start, or a number.
    by_id = df.iloc[:0] if isinstance(trial, int) else df[ids == text]
    if len(by_id) == 1:
        return by_id.iloc[0]
    by_prefix = (
        df.iloc[:0] if isinstance(trial, int) or len(text) < ID_PREFIX else df[ids.str.startswith(text)]
    )
    if len(by_number) and len(by_prefix):
        raise ValueError(
            f"--trial {trial!r} is both trial number {text} (id {ids[by_number.index[0]]}) and the start of "
            f"id {', '.join(ids[by_prefix.index][:10])}; give the whole id of the one you mean"
        )
    if len(by_number):
        return by_number.iloc[0]
    if len(by_prefix) == 1:
        return by_prefix.iloc[0]
    if len(by_prefix) > 1:
        shown = ", ".join(ids[by_prefix.index][:10])
        raise ValueError(
            f"--trial {trial!r} matches {len(by_prefix)} candidates ({shown}); give more characters of the id"
        )
    raise ValueError(
        f"no candidate {trial!r} in {run}: give an id (or its first {ID_PREFIX}+ characters) from the id "
        f"column of `qnas pareto {run}`, 'best' (the fine-tuned one), or a trial number"
    )


def front_of(df: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    """The Pareto-optimal rows of a candidates table."""
    ok = df[~df["failed"]] if "failed" in df else df
    if ok.empty:
        return ok
    signs = np.array([1.0 if objective_direction(o) == "minimize" else -1.0 for o in objectives])
    values = ok[objectives].to_numpy(dtype=float) * signs
    return ok.iloc[pareto_front(values)].sort_values(
        objectives[0], ascending=objective_direction(objectives[0]) == "minimize"
    )


def write_tables(run: RunDir, df: pd.DataFrame, front: pd.DataFrame, history: list[dict]) -> None:
    """Write the candidates table (Parquet, CSV), the front and the history, each atomically."""
    _atomic(run.candidates_parquet, lambda p: df.to_parquet(p, index=False))
    _atomic(run.candidates_csv, lambda p: df.to_csv(p, index=False))
    _atomic(run.pareto_csv, lambda p: front.to_csv(p, index=False))
    _atomic(run.history_csv, lambda p: pd.DataFrame(history).to_csv(p, index=False))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def plot_front(df: pd.DataFrame, front: pd.DataFrame, objectives: list[str], png: Path, html: Path) -> None:
    """Pareto plot of the first two objectives (or objective against trial): PNG and interactive HTML."""
    # A Figure of its own, not pyplot: the plot must not switch the backend of a user's notebook.
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    from qnas.report import axis_label

    ok = df[~df["failed"]]
    x, y = (objectives[1], objectives[0]) if len(objectives) > 1 else ("trial", objectives[0])
    # Whether the run was noise-aware is not in the table; the scores' names say loss either way.
    xlabel = axis_label(x, True).replace("noisy ", "") if x != "trial" else "trial"
    ylabel = axis_label(y, True).replace("noisy ", "")
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    ax.scatter(ok[x], ok[y], s=12, alpha=0.4, label="candidates")
    ordered = front.sort_values(x)
    ax.plot(ordered[x], ordered[y], "o-", color="C3", label="Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    hover = [c for c in ("id", "trial", "layout", "arch", *objectives) if c in ok]
    hover = list(dict.fromkeys(hover))
    plot = go.Figure()
    for name, part, color in (("candidates", ok, "#9aa5b1"), ("Pareto front", ordered, "#d62728")):
        text = ["<br>".join(f"{c}: {r[c]}" for c in hover) for _, r in part.iterrows()]
        plot.add_trace(
            go.Scatter(
                x=part[x],
                y=part[y],
                mode="markers",
                name=name,
                text=text,
                hoverinfo="text",
                marker={"color": color},
            )
        )
    plot.update_layout(xaxis_title=xlabel, yaxis_title=ylabel)
    plot.write_html(html, include_plotlyjs=True)
