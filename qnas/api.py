"""The Python API: run a search, open a run, and work with its candidates.

    import qnas
    run = qnas.search("configs/quickstart.yaml", train={"epochs": 5}, search__iterations=2)
    run.pareto_front                    # pandas, genomes and layouts as lists
    run.circuit("best")                 # a qiskit QuantumCircuit, inputs free
    run.export("best", "qasm3", "best.qasm3")
    run.deploy("fake_quito", shots=4000, limit=100)

The CLI calls the same functions. A run is a directory (see `qnas.results.RunDir`);
`load_run` opens one that a CLI or an earlier session wrote.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from qiskit import QuantumCircuit

from qnas.config import Config, load_config, validate_config
from qnas.mitigation import ZNE_SCALES
from qnas.results import RunDir

_LIST_COLUMNS = ("layout", "arch", "final_layout")


def make_config(config: Config | dict | str | Path | None = None, **overrides: Any) -> Config:
    """Return a Config from a Config, a dict of sections, a YAML path or None (the defaults), with overrides.

    An override is a section given as a dict (`train={"epochs": 5}`, merged into the
    section), a top-level key (`seed=1`, `device="fake_lima"`), or one key of a section
    with `__` for the dot (`search__population=8`).
    """
    if isinstance(config, Config):
        data = config.model_dump()
    elif isinstance(config, dict):
        data = copy.deepcopy(config)
    else:
        data = load_config(config).model_dump() if config is not None else {}
    for key, value in overrides.items():
        path = key.split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {key}: {part} is not a section")
        last = path[-1]
        if isinstance(value, dict) and isinstance(node.get(last, {}), dict):
            node[last] = {**node.get(last, {}), **value}
        else:
            node[last] = value
    return validate_config(data)


def search(
    config: Config | dict | str | Path | None = None,
    out: str | Path | None = None,
    workers: int = 0,
    ray_address: str | None = None,
    storage: str | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Run:
    """Train, search, fine-tune and export; return the run. Resumes a run already in `out`.

    `out=None` makes a temporary run directory (its path is `run.path`). `workers=0`
    scores candidates in this process, which suits a notebook and a small search; give
    `workers=N` for N Ray workers (a local Ray instance, or the cluster at `ray_address`).
    `overrides` as in `make_config`.
    """
    from qnas.pipeline import run_search

    resolved = make_config(config, **overrides)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="qnas-run-"))
    run_search(resolved, RunDir(path), workers, ray_address, storage, progress)
    return Run(path)


def load_run(path: str | Path) -> Run:
    """Open the run directory `path`, written by `qnas search` or `qnas.search`."""
    run = Run(path)
    run.config  # noqa: B018 (fail now, naming the folder, if it is not a run)
    return run


class Run:
    """A run directory: its config, candidates, Pareto front, chosen circuit and what to do with them.

    A candidate is named by its id (the `id` column; its first 4+ characters do), "best"
    (the fine-tuned circuit the run chose, the default), or a trial number (Optuna's).
    """

    def __init__(self, path: str | Path) -> None:
        self.dir = RunDir(path)

    @property
    def path(self) -> Path:
        return self.dir.path

    def __repr__(self) -> str:
        return f"qnas.Run({str(self.path)!r})"

    @cached_property
    def config(self) -> Config:
        return self.dir.load_config()

    @property
    def candidates(self) -> pd.DataFrame:
        """Every scored candidate: id, trial, layout and arch (lists), objectives, costs, timings."""
        if not self.dir.candidates_parquet.exists():
            raise FileNotFoundError(f"{self.path} has no candidates table yet; run the search first")
        return _with_lists(pd.read_parquet(self.dir.candidates_parquet))

    @property
    def pareto_front(self) -> pd.DataFrame:
        """The candidates no other beats on every objective (inherited weights, as searched)."""
        from qnas.results import front_of

        return front_of(self.candidates, self.config.search.objectives)

    @property
    def history(self) -> pd.DataFrame:
        """Hypervolume and best first objective per generation."""
        return pd.read_csv(self.dir.history_csv)

    @property
    def best(self) -> dict[str, Any]:
        """The chosen circuit: id, layout, arch, fine-tuned finalists, noiseless and noisy test scores."""
        if not self.dir.best_json.exists():
            raise FileNotFoundError(f"{self.path} has no chosen circuit yet (best.json); finish the search")
        return json.loads(self.dir.best_json.read_text())

    def circuit(
        self,
        id: str | int = "best",
        sample: int | None = None,
        split: str | None = None,
        transpiled: bool = False,
        device: str | None = None,
    ) -> QuantumCircuit:
        """The candidate as a QuantumCircuit, its weights bound, encoder included.

        Inputs stay free Parameters (`x[i]` reads feature i), or are bound to sample
        `sample` of `split` (default: the task's final split). With `transpiled`, the
        circuit is routed on `device` (default the run's; on the run's device, on the
        candidate's layout).
        """
        from qnas.devices import get_device
        from qnas.pipeline import load_candidate
        from qnas.transpiled import transpile_on_device

        config, task, sc, genome = load_candidate(self.dir, id)
        circuit = sc.subcircuit(genome.arch).to_qiskit(
            bound=True, encoder=task.encoder, n_inputs=task.n_inputs
        )
        if sample is not None:
            circuit = circuit.assign_parameters(_sample_values(task, circuit, split, sample))
        if transpiled:
            target = get_device(device or config.device)
            layout = (genome.layout or None) if target.name == config.device else None
            circuit = transpile_on_device(
                circuit, target, layout, config.search.optimization_level, config.seed
            )
        return circuit

    def draw(self, id: str | int = "best", output: str = "mpl", **kwargs: Any) -> Any:
        """qiskit's drawing of `circuit(id)` (a matplotlib Figure for "mpl", text for "text")."""
        circuit_args = {k: kwargs.pop(k) for k in ("sample", "split", "transpiled", "device") if k in kwargs}
        return self.circuit(id, **circuit_args).draw(output=output, **kwargs)

    def export(
        self,
        id: str | int = "best",
        fmt: str = "qasm3",
        path: str | Path | None = None,
        transpiled: bool = False,
        device: str | None = None,
        sample: int | None = None,
        measure: bool = False,
    ) -> str | Path:
        """The candidate as OpenQASM (returned, or written to `path`), with a header saying what it is.

        See `qnas.export.export_circuit`: QASM 2 has no inputs, so for a task with inputs it
        needs `sample` (bound) and refuses without.
        """
        from qnas.devices import get_device
        from qnas.export import export_circuit
        from qnas.pipeline import load_candidate

        config, task, sc, genome = load_candidate(self.dir, id)
        target = get_device(device or config.device) if transpiled else None
        layout = (genome.layout or None) if target is not None and target.name == config.device else None
        return export_circuit(
            sc.subcircuit(genome.arch),
            task,
            fmt,
            Path(path) if path is not None else None,
            target,
            layout,
            config.search.optimization_level,
            config.seed,
            sample=sample,
            measure=measure,
            about=_about(self, config, id, target, layout),
        )

    def deploy(
        self,
        device: str | None = None,
        id: str | int = "best",
        shots: int = 4000,
        batch_size: int = 64,
        limit: int | None = None,
        progress: bool = True,
        mitigation: str = "none",
        decoupling: bool | None = None,
        zne_scales: Sequence[float] = ZNE_SCALES,
        twirls: int = 0,
    ) -> dict[str, Any]:
        """Run the candidate's test set on `device` (default the run's) through IBM Runtime; resumable.

        fake_* devices run in the runtime's local testing mode. Returns the deploy summary:
        measured metrics beside the noisy simulation's prediction, and with `mitigation`
        (`readout`, `zne`, `readout+zne`) the mitigated ones beside the raw. `decoupling`
        True pads idle windows with X-X pulses (None: as the run scored). `zne_scales`: the
        noise scales ZNE folds to and extrapolates from. `twirls` > 0: Pauli-twirl the
        two-qubit gates, that many random copies of each circuit sharing its shots.
        """
        from qnas.deploy import deploy

        return deploy(
            self.path,
            id,
            device or self.config.device,
            shots,
            batch_size,
            progress,
            limit,
            mitigation=mitigation,
            decoupling=decoupling,
            zne_scales=zne_scales,
            twirls=twirls,
        )


def _with_lists(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its JSON-string list columns (as Parquet stores them) read back as lists."""
    df = df.copy()
    for col in _LIST_COLUMNS:
        if col in df:
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return df


def _sample_values(task, circuit: QuantumCircuit, split: str | None, sample: int) -> dict:
    """The input Parameters of `circuit` bound to sample `sample` of `split`."""
    from qnas.evaluate import input_values

    split = split or task.final_split
    n = task.n_samples(split)
    if n is None:
        raise ValueError(f"task {task.name} has no samples to bind; leave sample unset")
    if not 0 <= sample < n:
        raise ValueError(f"sample {sample} is out of range: {split} has samples 0..{n - 1}")
    x = task.features(task.samples(split))[sample : sample + 1]
    values = input_values(circuit, x)[0]
    return dict(zip(circuit.parameters, values, strict=True))


def _about(run: Run, config: Config, id: str | int, device, layout) -> dict[str, Any]:
    """What an export's header says about where the circuit came from."""
    about: dict[str, Any] = {"run": str(run.path), "candidate": str(id), "run_device": config.device}
    if str(id) == "best" and run.dir.best_json.exists():
        about["candidate"] = f"best (id {run.best.get('id', '?')})"
    if device is not None:
        about["device"] = device.name
        about["layout"] = list(layout) if layout else "qiskit's choice"
    return about
