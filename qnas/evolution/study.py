"""The Optuna study that records every candidate: ask, evaluate elsewhere, tell.

Every scored candidate is a trial whose params are its genome and whose values are its
objectives; its other figures are user attributes. The study is also the search's
memory: candidates with the same key (same active circuit, same layout) are scored once,
and a resumed search finds every finished evaluation here and repeats none.
"""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from qnas.evolution.genome import Genome, GenomeSpace
from qnas.evolution.pareto import nsga2_select

optuna.logging.set_verbosity(optuna.logging.WARNING)

# (key, genome) pairs -> (key, result) pairs as they finish; result has "error" on failure
EvaluateFn = Callable[[list[tuple[str, Genome]]], Iterator[tuple[str, dict[str, Any]]]]


def open_storage(url_or_path: str | Path) -> optuna.storages.BaseStorage | str:
    """An Optuna storage: a database URL as is, anything else a journal file path."""
    text = str(url_or_path)
    if "://" in text:
        return _rdb_storage(text)
    Path(text).parent.mkdir(parents=True, exist_ok=True)
    lock = optuna.storages.journal.JournalFileOpenLock(text)
    # Under the writers' lock, so a record another process is appending is never taken for a torn one.
    lock.acquire()
    try:
        cut = cut_partial_record(Path(text))
    finally:
        lock.release()
    if cut is not None:
        print(
            f"qnas: {text} ended in a partial record ({cut[0]} bytes, from an interrupted "
            f"write); cut it, the {cut[1]} complete records before it are kept",
            file=sys.stderr,
        )
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(text, lock_obj=lock))


def cut_partial_record(journal: Path) -> tuple[int, int] | None:
    """Return (bytes cut, complete records kept) after cutting a torn last record off `journal`; None if whole.

    A crash while appending leaves the last record without its newline. Optuna skips it on
    reading but appends the next record after it, which joins the two into one line no
    reader can parse, so the journal would be unreadable from then on.
    """
    if not journal.exists():
        return None
    data = journal.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    end = data.rfind(b"\n") + 1
    with journal.open("rb+") as f:
        f.truncate(end)
        os.fsync(f.fileno())
    return len(data) - end, data.count(b"\n", 0, end)


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An RDB storage; retried because two processes creating one new database race on its schema."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


class CandidateStudy:
    """An Optuna study of candidates, with a cache of finished evaluations by key."""

    def __init__(
        self,
        storage: optuna.storages.BaseStorage | str,
        study_name: str,
        objectives: list[str],
        directions: list[str],
        space: GenomeSpace,
        key_of: Callable[[Genome], str],
    ) -> None:
        self.study = optuna.create_study(
            storage=storage, study_name=study_name, directions=directions, load_if_exists=True
        )
        if [d.name.lower() for d in self.study.directions] != directions:
            raise ValueError(
                f"study {study_name} exists with other objectives; use a new run directory or study name"
            )
        if self.study.metric_names is None:
            # So optuna-dashboard and `study.trials_dataframe()` name the objectives.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(list(objectives))
        self.objectives = objectives
        self.signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
        self.space = space
        self.key_of = key_of
        self.distributions = {
            **{f"layout_{i}": IntDistribution(0, space.n_physical - 1) for i in range(space.n_layout_genes)},
            **{f"arch_{i}": IntDistribution(min(c), max(c)) for i, c in enumerate(space.arch_choices)},
        }
        self.records: dict[str, dict[str, Any]] = {}
        self._extra: dict[str, dict[str, Any]] = {}
        self.run_id = uuid.uuid4().hex
        self._load()

    def _load(self) -> None:
        """Cache finished trials; close trials a killed run left running."""
        for trial in self.study.get_trials(deepcopy=False):
            key = trial.user_attrs.get("key")
            if trial.state == TrialState.COMPLETE or (
                trial.state == TrialState.FAIL and "error" in trial.user_attrs
            ):
                self.records[key] = dict(trial.user_attrs, values=trial.values, number=trial.number)
            elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
                # Left by an interrupted run of this study, or still running in a live run of the
                # same config (which then records its result as a new trial, see _tell).
                self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    def score(
        self,
        genomes: list[Genome],
        generation: int,
        evaluate: EvaluateFn,
        screen: Screening | None = None,
        extra: dict[Genome, dict[str, Any]] | None = None,
    ) -> np.ndarray:
        """Objective values (n, m) of `genomes`, minimised (maximised ones negated); inf where failed.

        With a `screen`, the generation's new candidates are first ranked by its cheap
        objectives, and only its best `keep` get the full evaluation; the others are
        recorded as screened out, with their cheap objectives. `extra` holds more user
        attributes of some genomes' trials (a sampler's bookkeeping).
        """
        pending: dict[str, tuple[Genome, optuna.trial.Trial]] = {}
        for genome in genomes:
            key = self.key_of(genome)
            if key in self.records or key in pending:
                continue
            more = (extra or {}).get(genome, {})
            if more:
                self._extra[key] = more
            attrs = {"key": key, "generation": generation, "run_id": self.run_id, **more}
            pending[key] = (genome, self._new_trial(genome, TrialState.RUNNING, attrs))
        screened: dict[str, dict[str, Any]] = {}
        if screen is not None and len(pending) > screen.keep:
            screened = self._screen(pending, generation, screen)
        for key, result in evaluate(
            [(k, g) for k, (g, _) in pending.items() if k not in screened or screened[k]]
        ):
            genome, trial = pending[key]
            self._tell(trial, genome, key, generation, {**screened.get(key, {}), **result})
        return np.array([self._values(self.records[self.key_of(g)]) for g in genomes]).reshape(
            len(genomes), -1
        )

    def _screen(
        self, pending: dict[str, tuple[Genome, optuna.trial.Trial]], generation: int, screen: Screening
    ) -> dict[str, dict[str, Any]]:
        """Return key -> cheap objectives of the candidates kept; tell the others as screened out (empty dict)."""
        results = dict(screen.evaluate([(k, g) for k, (g, _) in pending.items()]))
        keys = list(pending)
        values = np.array(
            [
                [np.inf] * len(screen.objectives)
                if "error" in results[k]
                else [
                    sign * float(results[k][o])
                    for o, sign in zip(screen.objectives, screen.signs, strict=True)
                ]
                for k in keys
            ]
        ).reshape(len(keys), -1)
        kept = {keys[i] for i in nsga2_select(values, screen.keep)}
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            genome, trial = pending[key]
            result = results[key]
            if "error" in result:
                self._tell(trial, genome, key, generation, result)
                out[key] = {}
            elif key in kept:
                out[key] = {**result, "screened_out": False}
            else:
                reason = f"screened out: not among the best {screen.keep} of generation {generation} by {screen.objectives}"
                self._tell(trial, genome, key, generation, {**result, "screened_out": True, "error": reason})
                out[key] = {}
        return out

    def _tell(
        self, trial: optuna.trial.Trial, genome: Genome, key: str, generation: int, result: dict[str, Any]
    ) -> None:
        # The extra attributes go into the live record too, as a resumed run reads them back.
        attrs = {k: _plain(v) for k, v in {**self._extra.pop(key, {}), **result}.items()}
        attrs.update(key=key, generation=generation, layout=list(genome.layout), arch=list(genome.arch))
        values = None
        if "error" not in result:
            values = [float(result[o]) for o in self.objectives]
            if not all(math.isfinite(v) for v in values):
                attrs["error"] = f"non-finite objectives {values}"
                values = None
        state = TrialState.FAIL if values is None else TrialState.COMPLETE
        try:
            for name, value in attrs.items():
                trial.set_user_attr(name, value)
            self.study.tell(trial, values, state)
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another run of this study started meanwhile and closed the trial as a killed run's.
            trial = self._new_trial(genome, state, dict(attrs, run_id=self.run_id), values)
        self.records[key] = dict(attrs, values=values, number=trial.number)

    def _new_trial(
        self,
        genome: Genome,
        state: TrialState,
        attrs: dict[str, Any],
        values: list[float] | None = None,
    ) -> optuna.trial.Trial:
        """Return a new trial of `genome` in `state`, written to the storage in one operation.

        Not enqueue_trial then ask: in a study that two runs share, ask may pop the trial the
        other run has just enqueued, and the trial's params would be another genome's.
        """
        params = genome.params()
        template = optuna.trial.create_trial(
            state=state,
            values=values,
            params=params,
            distributions={name: self.distributions[name] for name in params},
            user_attrs=attrs,
        )
        trial_id = self.study._storage.create_new_trial(self.study._study_id, template_trial=template)
        return optuna.trial.Trial(self.study, trial_id)

    def _values(self, record: dict[str, Any]) -> np.ndarray:
        if record.get("values") is None:
            return np.full(len(self.objectives), np.inf)
        return self.signs * np.asarray(record["values"], dtype=float)

    def completed(self) -> Iterable[dict[str, Any]]:
        """Records of every finished evaluation, failures included."""
        return self.records.values()


@dataclass(frozen=True)
class Screening:
    """The cheap objectives a generation's new candidates are ranked by, and how many go on."""

    objectives: list[str]
    signs: list[float]  # 1 to minimise, -1 to maximise
    keep: int
    evaluate: EvaluateFn


def _plain(value: Any) -> Any:
    """A JSON-storable version of a result value (Optuna stores user attributes as JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
