"""Running a chosen candidate on a device through qiskit-ibm-runtime, resumably.

A deploy measures the candidate with the runtime's Sampler (the client-side one since
qiskit-ibm-runtime 0.50 deprecated SamplerV2), exactly as the noisy score
simulates it: the ansatz transpiled once (scheduled when the run scores idle noise),
each of the task's measurement bases appended after routing; a job per batch of test
samples, holding one PUB per basis (the circuit with a 2-D array of per-sample input
values; a VQE has one job, one PUB per basis). Fake backends run in the runtime's
local testing mode (on qiskit-aer with the backend's noise), so tests take the same path
as a real device. Every job is recorded in RUN/deploy/<device>-<id or best>/jobs.jsonl as it
is submitted and again when its counts arrive; running the same deploy again skips the
finished batches and picks up pending jobs of a live backend by their job id. The
summary sets the measured metric beside the one the noisy simulation predicted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from tqdm.auto import tqdm

from qnas import mitigation as mitigation_module
from qnas.config import Config
from qnas.devices import Device, get_device
from qnas.evaluate import CandidateEvaluator, input_values
from qnas.evolution.genome import Genome
from qnas.pipeline import candidate_label, load_candidate
from qnas.results import RunDir
from qnas.supercircuit import SuperCircuit
from qnas.tasks import Task
from qnas.tasks.base import Samples
from qnas.transpiled import MEASURED, TranspiledCandidate, transpile_candidate

# Shots per circuit unless told otherwise; a deploy with other shots is named by them.
DEFAULT_SHOTS = 4000
# Multinomial resamples of the measured counts behind the shot-noise standard errors.
_BOOTSTRAP = 400
_MITIGATED_BOOTSTRAP = 50


def deploy(
    run_dir: Path | str,
    trial: int | str,
    device: str,
    shots: int = DEFAULT_SHOTS,
    batch_size: int = 64,
    progress: bool = True,
    limit: int | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
    mitigation: str = "none",
    decoupling: bool | None = None,
    zne_scales: Sequence[float] = mitigation_module.ZNE_SCALES,
    twirls: int = 0,
) -> dict[str, Any]:
    """Return the deploy summary: the measured metric beside the noisy simulation's prediction.

    `mitigation` (qnas.mitigation) adds jobs to the same log: `readout` the M3
    calibration circuits, `zne` the test circuits again with their gates folded to each
    noise scale of `zne_scales` above 1 (default 3 alone; a scale between odd ones folds
    that share of the two-qubit gates one by one, mitigation.fold); `readout+zne` both. The
    summary then holds the metrics of every mitigation the measured data allow (raw,
    readout, zne, readout+zne), each with its shot-noise error, the extra shots each cost,
    and the share of the signal each folded scale keeps.

    Classification: accuracy and loss on the test set (its first `limit` samples when
    given), `batch_size` samples per job, `shots` shots per sample. VQE: the energy from
    one job with one PUB per measurement basis, beside the exact ground energy. The
    candidate keeps the run's layout on the run's device; on another device that layout
    means nothing, so qiskit chooses one. `on_batch` is called with each batch's record
    once it is saved. `decoupling` True runs (and predicts) the circuits with X-X dynamical
    decoupling pulses in their idle windows, False without, None as the run scored them.
    `twirls` > 0 Pauli-twirls every two-qubit gate (folded ones too): that many random
    copies of each circuit share its shots (`deployed_circuits`), so the device's gate noise
    acts as a Pauli channel, the kind zero-noise extrapolation scales predictably.
    The summary is also written to RUN/deploy/<device>-<id or best>/summary.json.
    """
    if shots < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise ValueError(f"shots ({shots}), batch_size ({batch_size}) and limit ({limit}) must be >= 1")
    if twirls < 0 or (twirls and shots % twirls):
        raise ValueError(
            f"the twirls (--twirl {twirls}) must be 0 (off) or a positive divisor of --shots ({shots}): "
            "each random copy of a circuit gets shots / twirls of them"
        )
    mitigation_module.check_method(mitigation)
    zne_scales = mitigation_module.check_scales(zne_scales)
    run = RunDir(run_dir)
    config, task, sc, genome = load_candidate(run, trial)
    if decoupling is not None:
        config.search.dynamical_decoupling = decoupling  # placed() refuses it without idle noise
    # Resolved before anything is written: a live name without an account fails here, at once.
    target = get_device(device)
    layout = genome.layout if device == config.device else ()
    sub = sc.subcircuit(genome.arch)
    task = task.bind(sub)  # a task with a classical head reads the candidate's own
    search, seed = config.search, config.seed
    live = _is_live(target)
    # Local mode ignores the runtime's twirling option: the copies are made here, seeded.
    local_twirls = 0 if live else twirls
    copies = max(local_twirls, 1)  # circuits per basis, sharing its shots
    candidate, circuits = deployed_circuits(config, task, sub, target, layout, local_twirls, seed)
    _check_local_relaxation(target, candidate)
    bases = task.measurement_bases()
    samples = task.samples(task.final_split, limit)
    x = task.features(samples)
    # One job per batch of samples, one PUB per basis (per twirled copy): the circuit with a
    # 2-D array, one row of input values per sample (a circuit without inputs: none).
    batches = [
        _Batch(
            [
                (
                    c,
                    input_values(c, x[start : start + batch_size]) if c.num_parameters else None,
                    shots // copies,
                )
                for c in circuits
            ],
            None if samples is None else [start, min(start + batch_size, len(x))],
        )
        for start in range(0, len(x), batch_size)
    ]
    # Samples scored, and circuits run per basis: one per sample for a classifier, one for
    # all of them when the task encodes no data (Quantum-Train's generator).
    n_samples = task.n_samples(task.final_split)
    if n_samples is not None and limit is not None:
        n_samples = min(n_samples, limit)
    n_circuits = len(x)
    n_measured = len(batches)
    scales = zne_scales if "zne" in mitigation else (1,)
    # Every circuit of a deploy holds the same two-qubit gates (the bases differ in 1-qubit
    # rotations only), so one circuit tells the scales the folds realize.
    realized = {s: mitigation_module.realized_scale(circuits[0], s) for s in scales}
    if len(set(realized.values())) < len(scales):
        raise ValueError(
            f"ZNE noise scales {list(scales)} fold this circuit's gates to scales "
            f"{list(realized.values())}, some the same; choose scales further apart"
        )
    for scale in scales[1:]:
        # The same PUBs, each circuit folded: the parameter rows stay what they were.
        folded = {id(c): mitigation_module.fold(c, scale, target, seed) for c in circuits}
        batches += [
            _Batch([(folded[id(pub[0])], *pub[1:]) for pub in b.pubs], b.samples, scale)
            for b in batches[:n_measured]
        ]
    if "readout" in mitigation:
        physical = list(candidate.final_layout)
        batches.append(
            _Batch([(c,) for c in mitigation_module.calibration_circuits(target, physical)], None, 0)
        )
    # Named by the candidate's id, so an id prefix, the id and a trial number share one deploy.
    label = candidate_label(sc, genome, trial)
    plan = {
        **plan_of(label, device, task, genome, layout, shots, seed),
        "batch_size": batch_size,
        "n_samples": n_samples,
        "idle_noise": search.idle_noise,
        "circuit_sha256": sub.digest(task.name),
    }
    if mitigation != "none":
        plan["mitigation"] = mitigation
    # Named only when not the default, so the deploys made before the option resume as they were.
    other_scales = "zne" in mitigation and scales != mitigation_module.ZNE_SCALES
    if other_scales:
        plan["zne_scales"] = list(scales)
    if search.dynamical_decoupling:
        plan["dynamical_decoupling"] = True
    if twirls:
        plan["twirls"] = twirls
    suffix = (
        ("" if mitigation == "none" else f"-{mitigation}")
        + ("-scales" + "-".join(map(str, scales)) if other_scales else "")
        + ("-dd" if search.dynamical_decoupling else "")
        + (f"-twirl{twirls}" if twirls else "")
    )
    folder = deploy_folder(run.path / "deploy" / f"{_slug(device)}-{label}{suffix}", shots)
    _check_plan(folder, plan)
    jobs = JobLog(folder / "jobs.jsonl")
    counts = _run_batches(target, jobs, batches, shots, seed, progress, on_batch, twirls)
    if local_twirls:
        # Each circuit's random copies, counted together: the circuit's counts.
        counts = [c if b.scale == 0 else merged(c, copies) for c, b in zip(counts, batches, strict=True)]

    def probabilities_at(scale: float) -> dict[str, np.ndarray]:
        these = [c for c, b in zip(counts, batches, strict=True) if b.scale == scale]
        return {
            basis: np.concatenate([_probabilities(batch[i], task.n_wires) for batch in these])
            for i, basis in enumerate(bases)
        }

    probs_by_basis = probabilities_at(1)
    result = _measured_summary(task, probs_by_basis, samples, shots, seed, n_samples)
    if mitigation != "none":
        matrices = None
        if "readout" in mitigation:
            (cal_counts,) = [c for c, b in zip(counts, batches, strict=True) if b.scale == 0]
            matrices = mitigation_module.readout_matrices([pub[0] for pub in cal_counts], task.n_wires)
        by_scale = {realized[scale]: probabilities_at(scale) for scale in scales}
        result["mitigated"] = _mitigated_summary(task, by_scale, matrices, samples, shots, seed)
        test_shots = shots * len(bases) * n_circuits
        # Beside the plan's shots per circuit: what each mitigation cost in all.
        result["mitigation_shots"] = {
            "raw": test_shots,
            "readout_calibration": 0 if matrices is None else shots * len(batches[-1].pubs),
            "zne_folded": test_shots * (len(scales) - 1),
        }
        if "zne" in mitigation:
            result["zne_scales"] = list(scales)
            if list(realized.values()) != list(scales):
                result["zne_scales_realized"] = list(realized.values())
            uniform = {b: np.full((1, 2**task.n_wires), 2.0**-task.n_wires) for b in bases}
            kept = mitigation_module.signal_kept(
                {s: task.outputs_from_probabilities(by_scale[realized[s]]) for s in scales},
                task.outputs_from_probabilities(uniform),
                {s: _shot_variance(task, by_scale[realized[s]], shots, seed) for s in scales},
            )
            result["zne_signal_kept"] = {str(s): kept[s] for s in scales[1:]}

    predicted = _predicted(config, sc, Genome(layout, genome.arch), device, samples)
    result["predicted"] = {k: predicted[k] for k in task.metric_names}
    if "readout" in mitigation:
        # Where a perfect readout mitigation lands: the same simulation without readout error.
        free = _predicted(config, sc, Genome(layout, genome.arch), device, samples, readout=False)
        result["predicted_readout_free"] = {k: free[k] for k in task.metric_names}
    summary = {
        **plan,
        "backend": str(target.backend.name),
        "kind": task.kind,
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "n_circuits": n_circuits,
        **result,
        "difference": result["measured"][task.metric] - result["predicted"][task.metric],
        "n_2q": predicted["n_2q"],
        "depth": predicted["depth"],
        "n_jobs": len(batches),
        "job_ids": [r["job_id"] for _, r in sorted(jobs.done().items())],
        "jobs": str(jobs.path),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def placed(config: Config, task: Task, sub, target: Device, layout: tuple[int, ...]) -> TranspiledCandidate:
    """The candidate transpiled on `target` as the search scored it (its layout, or qiskit's where empty)."""
    search = config.search
    return transpile_candidate(
        sub.to_qiskit(bound=True, encoder=task.encoder, n_inputs=task.n_inputs),
        target,
        layout or None,
        search.optimization_level,
        config.seed,
        search.idle_noise,
        search.dynamical_decoupling,
    )


def deployed_circuits(
    config: Config,
    task: Task,
    sub,
    target: Device,
    layout: tuple[int, ...],
    twirls: int = 0,
    seed: int = 0,
) -> tuple[TranspiledCandidate, list[QuantumCircuit]]:
    """The placed candidate and the circuits a deploy runs: one per measurement basis, measured on the device.

    The very circuits the noisy score simulates: one placed ansatz, each basis appended after
    routing. With `twirls`, each basis's circuit is `twirls` consecutive Pauli-twirled copies
    (`twirl`, seeded by `seed` and the basis), scheduled as the untwirled circuit.
    """
    candidate = placed(config, task, sub, target, layout)
    circuits = []
    for b, measured in enumerate(task.measurement_circuits(candidate, target).values()):
        if not twirls:
            circuits.append(measured.measured_device_circuit(target))
            continue
        drawn = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        for copy in twirl(measured.device_circuit, twirls, target, drawn):
            circuits.append(
                dataclasses.replace(measured, device_circuit=copy).measured_device_circuit(target)
            )
    return candidate, circuits


def _check_local_relaxation(target: Device, candidate: TranspiledCandidate) -> None:
    """Refuse, before any job, a local deploy the runtime's simulator would fail on every job.

    In local mode qiskit-ibm-runtime relaxes the idle delays with the calibration's raw T1
    and T2 and raises on a qubit whose T2 exceeds 2 T1 (unphysical; some calibrations, e.g.
    fake_torino's, hold such qubits). qnas's scorer caps T2 at 2 T1, as qiskit-aer's
    device model does for gate errors.
    """
    props = target.backend.target.qubit_properties
    if _is_live(target) or not candidate.scheduled or props is None:
        return
    bad = [
        q
        for q in candidate.active_qubits
        if props[q].t1 is not None and props[q].t2 is not None and props[q].t2 > 2 * props[q].t1
    ]
    if bad:
        values = ", ".join(
            f"qubit {q}: T1 {props[q].t1 * 1e6:.1f} us, T2 {props[q].t2 * 1e6:.1f} us" for q in bad
        )
        raise ValueError(
            f"{target.name}'s calibration has T2 > 2 T1 on this circuit's qubits ({values}); qiskit-ibm-runtime's "
            "local simulator refuses to relax idle time with it. Deploy a run scored with search.idle_noise false "
            "(no delays), choose another layout, or deploy on a live device"
        )


def _is_live(device: Device) -> bool:
    """True for a device of IBM Quantum's service; False for fake and snapshot backends (local mode)."""
    from qiskit_ibm_runtime.ibm_backend import IBMBackend

    return isinstance(device.backend, IBMBackend)


def twirl(circuit: QuantumCircuit, twirls: int, device: Device, seed: int) -> list[QuantumCircuit]:
    """`twirls` Pauli-twirled copies of a routed, unscheduled device circuit, seeded.

    Around every two-qubit gate a random Pauli pair that leaves the gate's action
    unchanged (qiskit's pauli_twirl_2q_gates); averaged over the copies the gate's noise
    becomes a Pauli channel (Wallman and Emerson, PRA 94, 052325, 2016). The Paulis are
    merged into the neighbouring single-qubit gates, as the runtime does, so a copy has
    no more pulses than it must and is scheduled like the circuit it copies.
    """
    from qiskit.circuit import pauli_twirl_2q_gates
    from qiskit.transpiler import PassManager
    from qiskit.transpiler.passes import Optimize1qGatesDecomposition

    merge = PassManager([Optimize1qGatesDecomposition(target=device.backend.target)])
    return [
        merge.run(copy)
        for copy in pauli_twirl_2q_gates(circuit, seed=seed, num_twirls=twirls, target=device.backend.target)
    ]


def merged(counts: list[list[dict[str, int]]], twirls: int) -> list[list[dict[str, int]]]:
    """The counts of each PUB's `twirls` consecutive copies summed, row by row."""
    return [
        [dict(sum(map(Counter, row), Counter())) for row in zip(*counts[start : start + twirls], strict=True)]
        for start in range(0, len(counts), twirls)
    ]


def deploy_folder(unnamed: Path, shots: int) -> Path:
    """The folder of a deploy with `shots` shots: `unnamed` for the default, `unnamed-shotsN` otherwise.

    A folder holds one shot count (its counts are its shots), so comparing shot counts
    needs a folder each. A deploy made before folders carried their shots resumes where
    it is: the unnamed folder, when its plan records these shots.
    """
    if shots == DEFAULT_SHOTS:
        return unnamed
    plan = unnamed / "deploy.json"
    if plan.exists() and json.loads(plan.read_text()).get("shots") == shots:
        return unnamed
    return unnamed.with_name(f"{unnamed.name}-shots{shots}")


def plan_of(
    label: str, device: str, task: Task, genome: Genome, layout: tuple[int, ...], shots: int, seed: int
) -> dict[str, Any]:
    """What every deploy's plan records of the candidate and the run (its folder refuses other settings)."""
    return {
        "trial": label,
        "device": device,
        "task": task.name,
        "arch": list(genome.arch),
        "layout": list(layout),
        "shots": shots,
        "seed": seed,
    }


def _slug(device: str) -> str:
    """A directory-safe name for a device: a snapshot file's stem, else the name itself."""
    name = Path(device).stem if device.endswith(".json") else device
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _check_plan(folder: Path, plan: dict[str, Any]) -> None:
    """Write the deploy's plan, or refuse a folder holding the jobs of another one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deploy.json"
    if path.exists():
        saved = json.loads(path.read_text())
        changed = sorted(k for k in set(saved) | set(plan) if saved.get(k) != plan.get(k))
        if changed:
            raise ValueError(
                f"{folder} holds a deploy with other settings (differs in {', '.join(changed)}); "
                "repeat it with the same settings to resume, or move the folder away to start anew"
            )
        return
    path.write_text(json.dumps(plan, indent=2))


@dataclass(frozen=True)
class _Batch:
    """The PUBs of one job, the test samples (start, stop) they hold, if any, and their noise scale.

    Scale 1 is the circuit as scored, a scale > 1 its folded copy (zero-noise
    extrapolation), 0 the readout calibration circuits.
    """

    pubs: list[tuple]
    samples: list[int] | None = None
    scale: float = 1

    @property
    def about(self) -> dict[str, Any]:
        out = {} if self.samples is None else {"samples": self.samples}
        return out if self.scale == 1 else {**out, "scale": self.scale}


class JobLog:
    """The append-only record of a deploy's jobs: one JSON line per event, the latest per batch wins.

    A batch's line says "submitted" (with the job id) as soon as the job exists, and
    "done" (with the counts) or "failed" once it ends; lines are flushed to disk at once,
    so a killed deploy loses nothing that had arrived.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        """Every complete line, in order (a line cut short by a kill is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def latest(self) -> dict[int, dict[str, Any]]:
        """Return {batch: its latest record}."""
        return {r["batch"]: r for r in self.records()}

    def done(self) -> dict[int, dict[str, Any]]:
        """Return {batch: its "done" record} for the finished batches."""
        return {b: r for b, r in self.latest().items() if r["status"] == "done"}

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "time": datetime.now(timezone.utc).isoformat()}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record


def _run_batches(
    device: Device,
    jobs: JobLog,
    batches: list[_Batch],
    shots: int,
    seed: int,
    progress: bool,
    on_batch: Callable[[dict[str, Any]], None] | None,
    twirls: int = 0,
) -> list[list[list[dict[str, int]]]]:
    """Return the counts of every batch (per PUB, per parameter row), running only the unfinished ones.

    A live backend gets every missing job submitted at once (they queue on the device
    side) and its pending jobs retrieved by id; a local one runs one job at a time,
    since local jobs finish in this process and do not outlive it.
    """
    live = _is_live(device)
    Sampler = _sampler_class(live)
    latest = jobs.latest()
    todo = [b for b in range(len(batches)) if latest.get(b, {}).get("status") != "done"]
    bar = tqdm(
        total=len(batches), initial=len(batches) - len(todo), desc="deploy", unit="job", disable=not progress
    )
    sampler = Sampler(mode=device.backend)
    if live:
        # The circuits as scored unless `twirls` asks for the runtime's randomized copies
        # (local mode ignores the option, with a warning: deploy() makes the copies there).
        sampler.options.twirling.enable_gates = bool(twirls)
        sampler.options.twirling.enable_measure = False
        if twirls:
            sampler.options.twirling.num_randomizations = twirls
            sampler.options.twirling.shots_per_randomization = shots // twirls
    in_flight: list[tuple[int, Any]] = []
    for b in todo:
        if live and latest.get(b, {}).get("status") == "submitted":
            in_flight.append((b, device.backend.service.job(latest[b]["job_id"])))
    resumed = {b for b, _ in in_flight}
    queue = [b for b in todo if b not in resumed]
    window = len(batches) if live else 1
    while queue or in_flight:
        while queue and len(in_flight) < window:
            b = queue.pop(0)
            if not live:
                # Local mode draws the shots with Aer: seeded per batch, a re-run measures the
                # same counts. Never 0: qiskit-ibm-runtime's local service reads a seed of 0
                # as unset (`if seed_simulator := ...`, 0.51).
                drawn = np.random.SeedSequence([seed, b]).generate_state(1)[0]
                sampler.options.simulator.seed_simulator = int(drawn) or 1
            job = sampler.run(batches[b].pubs, shots=shots)
            jobs.append({"batch": b, "status": "submitted", "job_id": job.job_id(), **batches[b].about})
            in_flight.append((b, job))
        b, job = in_flight.pop(0)
        try:
            result = job.result()
        except Exception as exc:
            jobs.append({"batch": b, "status": "failed", "job_id": job.job_id(), "error": type(exc).__name__})
            raise RuntimeError(
                f"job {job.job_id()} (batch {b}) failed ({type(exc).__name__}); run the deploy again to resubmit it"
            ) from exc
        record = jobs.append(
            {
                "batch": b,
                "status": "done",
                "job_id": job.job_id(),
                **batches[b].about,
                "counts": [_pub_counts(r) for r in result],
            }
        )
        bar.update(1)
        if on_batch is not None:
            on_batch(record)
    bar.close()
    done = jobs.done()
    return [done[b]["counts"] for b in range(len(batches))]


def _sampler_class(live: bool) -> type:
    """Return the runtime's Sampler for a live device, or for the local testing mode.

    A live device gets what qiskit-ibm-runtime recommends since 0.50 deprecated SamplerV2:
    the client-side Sampler on the Executor primitive (same PUBs, same results). Local
    mode keeps SamplerV2 while it exists: its simulation keeps each qubit's asymmetric
    readout error, the client-side Sampler's averages it (measured on fake_quito, 100,000
    shots of |11111>: P(0|1) of qubit 2 is 0.198 with SamplerV2, 0.112 with the new
    Sampler, 0.197 in the calibration), and a local deploy is there to check the noisy
    score, which reads the calibration as it is.
    """
    import warnings

    from qiskit_ibm_runtime import SamplerV2

    try:
        from qiskit_ibm_runtime.executor_sampler import Sampler
    except ImportError:  # qiskit-ibm-runtime < 0.50
        return SamplerV2
    if live:
        return Sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)

        class LocalSampler(SamplerV2):
            """SamplerV2 for the local testing mode, without its deprecation warning (see above)."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    super().__init__(*args, **kwargs)

    return LocalSampler


def _pub_counts(pub_result) -> list[dict[str, int]]:
    """Return the counts of each parameter row of a Sampler PUB result (bit i = logical qubit i)."""
    bits = getattr(pub_result.data, MEASURED)
    if bits.ndim == 0:
        return [bits.get_counts()]
    return [bits.get_counts(loc=i) for i in range(bits.shape[0])]


def _probabilities(counts: list[dict[str, int]], n_qubits: int) -> np.ndarray:
    """Return (N, 2**n) outcome frequencies from counts keyed by bitstring (qubit 0 rightmost)."""
    probs = np.zeros((len(counts), 2**n_qubits))
    for i, row in enumerate(counts):
        for bitstring, count in row.items():
            probs[i, int(bitstring, 2)] = count
        probs[i] /= probs[i].sum()
    return probs


def _resampled(probs: np.ndarray, shots: int, seed: int, n_draws: int = _BOOTSTRAP) -> np.ndarray:
    """Return (n_draws, N, 2**n) frequencies of fresh multinomial draws of `shots` shots per row."""
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.multinomial(shots, p / p.sum(), size=n_draws) for p in probs], axis=1)
    return draws / shots


def _shot_variance(task: Task, probs_by_basis: dict[str, np.ndarray], shots: int, seed: int) -> float:
    """One output's variance from shot noise alone: over 8 fresh multinomial draws, averaged over outputs."""
    draws = {b: _resampled(p, shots, seed + i, 8) for i, (b, p) in enumerate(probs_by_basis.items())}
    outputs = [task.outputs_from_probabilities({b: d[k] for b, d in draws.items()}) for k in range(8)]
    return float(np.var(np.stack(outputs), axis=0, ddof=1).mean())


def _measured_summary(
    task: Task,
    probs_by_basis: dict[str, np.ndarray],
    samples: Samples,
    shots: int,
    seed: int,
    n_samples: int | None,
) -> dict[str, Any]:
    """Return the measured metrics with the shot-noise standard error of the task's metric.

    Two errors answer two questions. The shot-noise error (the spread of the metric over
    multinomial resamples of every measured distribution) is how far the measurement can
    stray from the device's exact outcome probabilities, so it is the yardstick for
    measured against predicted. The sampling error (where the task has one, e.g. the
    accuracy's sqrt(p(1-p)/n)) is how far a metric on n test samples can stray from its
    value on unseen data.
    """
    measured = task.metrics_from_probabilities(probs_by_basis, samples)
    draws = {b: _resampled(p, shots, seed + i) for i, (b, p) in enumerate(probs_by_basis.items())}
    resampled = [
        task.metrics_from_probabilities({b: d[r] for b, d in draws.items()}, samples)[task.metric]
        for r in range(_BOOTSTRAP)
    ]
    out = {"measured": measured, "shot_noise_se": float(np.std(resampled, ddof=1))}
    sampling = task.sampling_error(measured, n_samples)
    if sampling is not None:
        out["sampling_se"] = sampling
    return out


def _mitigated_summary(
    task: Task,
    by_scale: dict[float, dict[str, np.ndarray]],
    matrices: list[np.ndarray] | None,
    samples: Samples,
    shots: int,
    seed: int,
) -> dict[str, Any]:
    """Return the metrics of every mitigation the measurements allow, each with its shot-noise error.

    The error is the spread over multinomial resamples of every measured distribution
    (test circuits at each scale; the calibration is held fixed), each resample mitigated
    anew: fewer resamples than the raw error's, since M3 runs once per distribution.
    """

    def mitigated(probs: dict[float, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        readout = None
        if matrices is not None:
            readout = {
                scale: {
                    b: mitigation_module.mitigate_readout(p, shots, matrices) for b, p in by_basis.items()
                }
                for scale, by_basis in probs.items()
            }
            out["readout"] = readout[1]
        for name, source in (("zne", probs), ("readout+zne", readout)):
            if source is not None and len(source) > 1:
                out[name] = {
                    b: mitigation_module.extrapolate({scale: source[scale][b] for scale in source})
                    for b in source[1]
                }
        return out

    metrics = {name: task.metrics_from_probabilities(p, samples) for name, p in mitigated(by_scale).items()}
    rng = np.random.default_rng(seed)
    spread: dict[str, list[float]] = {name: [] for name in metrics}
    for _ in range(_MITIGATED_BOOTSTRAP):
        drawn = {
            scale: {
                b: np.stack([rng.multinomial(shots, row / row.sum()) for row in p]) / shots
                for b, p in by_basis.items()
            }
            for scale, by_basis in by_scale.items()
        }
        for name, p in mitigated(drawn).items():
            spread[name].append(task.metrics_from_probabilities(p, samples)[task.metric])
    return {name: {**metrics[name], "shot_noise_se": float(np.std(spread[name], ddof=1))} for name in metrics}


def _predicted(
    config: Config,
    sc: SuperCircuit,
    genome: Genome,
    device: str,
    samples: Samples,
    readout: bool = True,
) -> dict[str, Any]:
    """Return the noisy simulation's scores of `genome` on `device` (exact probabilities) on `samples`.

    `readout=False` leaves the device's readout error out: what readout mitigation aims at.
    """
    predict = config.model_copy(deep=True)
    predict.device = device
    predict.search.noise_aware = True
    predict.search.shots = None
    predict.search.readout_noise = readout
    # Only the task metric is wanted: expressibility and the like are not measured.
    predict.search.objectives = ["loss"]
    predict.search.strategy = "evolution"  # the task's own score, also of a training-free run's pick
    predict.search.screen = None
    return CandidateEvaluator(predict.model_dump(), sc.weights.detach().clone(), samples).evaluate(genome)


def summary_text(summary: dict[str, Any]) -> str:
    """Return the deploy summary as a few lines for a terminal: measured beside predicted."""
    metric = summary["metric"]
    measured, predicted = summary["measured"][metric], summary["predicted"][metric]
    lines = [
        f"trial {summary['trial']} on {summary['backend']}: {summary['n_jobs']} job(s), {summary['shots']} shots"
        + (
            ""
            if not summary["n_samples"]
            else f" per sample, {summary['n_samples']} test samples"
            if summary.get("n_circuits", summary["n_samples"]) == summary["n_samples"]
            else f" per circuit, {summary['n_samples']} test samples from {summary['n_circuits']} circuit(s)"
        )
        + (", X-X dynamical decoupling in idle windows" if summary.get("dynamical_decoupling") else "")
        + (
            f", two-qubit gates Pauli-twirled ({summary['twirls']} random copies of each circuit)"
            if summary.get("twirls")
            else ""
        ),
        f"measured {metric}:  {measured:.4f} ± {summary['shot_noise_se']:.4f} (shot noise)",
        f"predicted {metric}: {predicted:.4f} (noisy simulation); difference {summary['difference']:+.4f}",
    ]
    if "sampling_se" in summary:
        lines.append(
            f"sampling error of the test {metric} over {summary['n_samples']} samples: ± {summary['sampling_se']:.4f}"
        )
    if "mitigated" in summary:
        shots = summary["mitigation_shots"]
        extra = {"readout": shots["readout_calibration"], "zne": shots["zne_folded"]}
        extra["readout+zne"] = extra["readout"] + extra["zne"]
        scales = summary.get("zne_scales")
        folding = f"; ZNE from noise scales {', '.join(map(str, scales))}" if scales else ""
        lines.append(f"mitigated {metric} (shot noise; extra shots beside the raw {shots['raw']}{folding}):")

        # A classifier's loss beside its accuracy: the argmax can turn the wrong way while a
        # mitigation brings the outputs nearer the noiseless ones (docs/results.md).
        def loss(scores: dict[str, float]) -> str:
            return f"  loss {scores['loss']:.4f}" if metric != "loss" and "loss" in scores else ""

        lines.append(
            f"  {'raw':<12} {measured:.4f} ± {summary['shot_noise_se']:.4f}{loss(summary['measured'])}"
        )
        for name, scores in summary["mitigated"].items():
            lines.append(
                f"  {name:<12} {scores[metric]:.4f} ± {scores['shot_noise_se']:.4f}{loss(scores)}"
                f"  (+{extra[name]} shots)"
            )
        free = summary.get("predicted_readout_free")
        if free:
            lines.append(
                f"predicted {metric} without readout error (where readout mitigation aims): {free[metric]:.4f}"
            )
            with_error, without = predicted, free[metric]
            if (without - with_error) * (1 if summary.get("higher_is_better", True) else -1) < 0:
                # Seen on fake_rochester (docs/results.md): the readout error's pull moved a few
                # samples to the right class, and removing it moves them back.
                lines.append(
                    f"  the simulation scores this circuit better with the readout error than without "
                    f"({with_error:.4f} against {without:.4f}): readout mitigation is expected to lower "
                    f"the {metric}; a run searched with search.readout_noise: false chooses for a "
                    "readout-mitigated deploy"
                )
        kept = summary.get("zne_signal_kept")
        if kept:
            shares = ", ".join(f"{100 * v:.0f}% at scale {k}" for k, v in kept.items())
            lines.append(f"ZNE: the folded circuits keep {shares} of the signal at scale 1")
            if min(kept.values()) < 0.1:
                lines.append(
                    "  below 10% the folded outputs are near the fully mixed state's: the extrapolation "
                    "has little to follow (scales closer to 1, e.g. --zne-scales 1 2, or readout mitigation alone)"
                )
    if "exact_energy" in summary["measured"]:
        lines.append(f"exact ground energy: {summary['measured']['exact_energy']:.4f}")
    lines.append(f"jobs: {summary['jobs']}")
    return "\n".join(lines)
