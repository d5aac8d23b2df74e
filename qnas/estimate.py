"""A VQE candidate's energy through IBM Runtime's Estimator, its resilience options doing the mitigation.

`qnas deploy --primitive sampler` (qnas.deploy) samples every measurement basis and
assembles the energy, mitigating in qnas (M3, folding). This is the other path, the one
IBM recommends for expectation values: the placed ansatz and the Hamiltonian, laid out
on the physical qubits that hold each logical qubit after routing, go to the client-side
Estimator of qiskit-ibm-runtime (>= 0.50, built on the Executor primitive), and the
runtime mitigates: `--mitigation readout` is TREX (twirled readout error extinction),
`zne` zero-noise extrapolation by gate folding, `readout+zne` both (resilience level 2),
each with the runtime's own defaults. Fake backends run in the runtime's local mode, as
they would on the device. The job is recorded in the deploy's job log when submitted and
when done, so an interrupted deploy picks up a live job by id and never submits twice.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qnas import mitigation as mitigation_module
from qnas.deploy import DEFAULT_SHOTS, JobLog, _check_plan, _predicted, _slug, deploy_folder, placed, plan_of
from qnas.devices import get_device
from qnas.evolution.genome import Genome
from qnas.pipeline import candidate_label, load_candidate
from qnas.results import RunDir
from qnas.transpiled import TranspiledCandidate, schedule


def observable_on_device(
    paulis: list[str], coeffs: list[float], candidate: TranspiledCandidate, n_qubits: int
):
    """The Hamiltonian (qnas labels, qubit 0 first) as a SparsePauliOp on the device: logical qubit i on final_layout[i]."""
    from qiskit.quantum_info import SparsePauliOp

    terms = []
    for label, coeff in zip(paulis, coeffs, strict=True):
        support = [(p, candidate.final_layout[q]) for q, p in enumerate(label) if p != "I"]
        terms.append(("".join(p for p, _ in support), [q for _, q in support], coeff))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n_qubits).simplify()


def resilience_options(mitigation: str, zne_scales: Sequence[float] | None = None) -> dict[str, Any]:
    """The Estimator options of a `--mitigation` choice: level 0 plus the runtime's TREX and/or ZNE.

    `zne_scales` become the runtime's ZNE noise factors (None: its defaults); through two
    of them only a line fits, so the extrapolator is then linear.
    """
    mitigation_module.check_method(mitigation)
    resilience: dict[str, Any] = {
        "measure_mitigation": "readout" in mitigation,
        "zne_mitigation": "zne" in mitigation,
    }
    if zne_scales is not None and "zne" in mitigation:
        factors = mitigation_module.check_scales(zne_scales)
        resilience["zne"] = {"noise_factors": list(factors)}
        if len(factors) == 2:
            resilience["zne"]["extrapolator"] = "linear"
    return {
        "resilience_level": 0,
        "resilience": resilience,
        # TREX twirls the readout by itself; gates stay as scored unless ZNE folds them.
        "twirling": {"enable_gates": False},
    }


def estimate(
    run_dir: Path | str,
    trial: int | str,
    device: str,
    shots: int = DEFAULT_SHOTS,
    mitigation: str = "none",
    zne_scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Return the deploy summary of a VQE candidate's energy measured by the runtime's Estimator.

    `zne_scales`: the runtime's ZNE noise factors (None: the runtime's own).
    """
    from qiskit_ibm_runtime.executor_estimator import Estimator
    from qiskit_ibm_runtime.ibm_backend import IBMBackend

    if shots < 1:
        raise ValueError(f"shots ({shots}) must be >= 1")
    options = resilience_options(mitigation, zne_scales)  # bad scales fail before anything runs
    run = RunDir(run_dir)
    config, task, sc, genome = load_candidate(run, trial)
    if task.kind != "vqe":
        raise ValueError(
            f"--primitive estimator measures a Hamiltonian's energy; task {task.name} is a {task.kind}: "
            "use --primitive sampler"
        )
    target = get_device(device)
    missing = {"rz", "sx"} - set(target.backend.operation_names)
    if missing:
        # The client-side Estimator appends its own basis changes and twirls in rz and sx
        # (qiskit-ibm-runtime 0.51): on an older basis local mode fails with "unknown instruction".
        raise ValueError(
            f"the runtime's Estimator measures with rz and sx gates, which {device} lacks "
            f"(its basis: {' '.join(target.basis_gates)}); use --primitive sampler"
        )
    layout = genome.layout if device == config.device else ()
    sub = sc.subcircuit(genome.arch)
    seed = config.seed
    candidate = placed(config, task, sub, target, layout)
    observable = observable_on_device(task.paulis, task.coeffs, candidate, target.n_qubits)
    # The circuit as the noisy score simulates it: scheduled, so idle qubits wait as they will.
    circuit = candidate.device_circuit
    if candidate.scheduled:
        circuit = schedule(circuit, target, candidate.active_qubits, candidate.decoupled)
    label = candidate_label(sc, genome, trial)
    plan = {
        **plan_of(label, device, task, genome, layout, shots, seed),
        "primitive": "estimator",
        "mitigation": mitigation,
        "circuit_sha256": sub.digest(task.name),
    }
    scales = options["resilience"].get("zne", {}).get("noise_factors")
    if scales:
        plan["zne_scales"] = scales
    suffix = f"-scales{'-'.join(map(str, scales))}" if scales else ""
    folder = deploy_folder(
        run.path / "deploy" / f"{_slug(device)}-{label}-estimator-{mitigation}{suffix}", shots
    )
    _check_plan(folder, plan)
    jobs = JobLog(folder / "jobs.jsonl")
    live = isinstance(target.backend, IBMBackend)
    record = jobs.latest().get(0, {})
    if record.get("status") != "done":
        if live and record.get("status") == "submitted":
            job = target.backend.service.job(record["job_id"])
        else:
            options["default_shots"] = shots
            if not live:
                # Never 0: the local service reads a seed of 0 as unset (qiskit-ibm-runtime 0.51).
                options["simulator"] = {"seed_simulator": int(seed) or 1}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # local mode: "options ignored" notes
                job = Estimator(mode=target.backend, options=options).run([(circuit, observable)])
            jobs.append({"batch": 0, "status": "submitted", "job_id": job.job_id()})
        try:
            result = job.result()[0]
        except Exception as exc:
            jobs.append({"batch": 0, "status": "failed", "job_id": job.job_id(), "error": type(exc).__name__})
            raise RuntimeError(
                f"estimator job {job.job_id()} failed ({type(exc).__name__}); run the deploy again to resubmit it"
            ) from exc
        data = result.data
        record = jobs.append(
            {
                "batch": 0,
                "status": "done",
                "job_id": job.job_id(),
                "energy": float(np.asarray(data.evs)),
                "std": float(np.asarray(data.stds)),
                **(
                    {"energy_noise_factors": np.asarray(data.evs_noise_factors).tolist()}
                    if "evs_noise_factors" in data
                    else {}
                ),
            }
        )
    predicted = _predicted(config, sc, Genome(layout, genome.arch), device, None)
    energy = record["energy"]
    summary = {
        **plan,
        "backend": str(target.backend.name),
        "kind": task.kind,
        "metric": "energy",
        "measured": {"energy": energy, "above_exact": energy - task.exact_energy},
        "shot_noise_se": record["std"],
        "predicted": {k: predicted[k] for k in task.metric_names},
        "exact_energy": task.exact_energy,
        "difference": energy - predicted["energy"],
        "n_jobs": 1,
        "job_ids": [record["job_id"]],
        "jobs": str(jobs.path),
        "n_terms": len(observable),
        **(
            {"energy_noise_factors": record["energy_noise_factors"]}
            if "energy_noise_factors" in record
            else {}
        ),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    """The estimator deploy as a few lines: measured beside predicted and exact."""
    return "\n".join(
        [
            f"trial {summary['trial']} on {summary['backend']}: Estimator, {summary['shots']} shots, "
            f"{summary['n_terms']} Pauli terms, mitigation {summary['mitigation']} (the runtime's)",
            f"measured energy:  {summary['measured']['energy']:.4f} ± {summary['shot_noise_se']:.4f} Ha",
            f"predicted energy: {summary['predicted']['energy']:.4f} Ha (noisy simulation); "
            f"difference {summary['difference']:+.4f}",
            f"exact ground energy: {summary['exact_energy']:.4f} Ha; measured is "
            f"{1000 * summary['measured']['above_exact']:.1f} mHa above it",
            f"jobs: {summary['jobs']}",
        ]
    )
