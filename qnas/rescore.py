"""Re-scoring a finished run on another device or another day's calibration, without searching again.

Calibrations drift daily, and a circuit found for one device is often moved to a sibling.
`rescore` scores the run's Pareto front (inherited weights, on the search's validation
samples) and its fine-tuned finalists (on the whole validation split) on the new device,
each on its own layout where that layout fits the new device and on qiskit's layout where
it does not, and says how the ranking moved: Kendall's tau between the old and the new
first objective, and which finalist is best now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qnas.config import objective_direction
from qnas.devices import get_device
from qnas.evaluate import CandidateEvaluator
from qnas.evolution.genome import Genome
from qnas.results import RunDir, front_of


def rescore(
    run_dir: Path | str, device: str, progress: bool = True, finetuned: Path | str | None = None
) -> dict[str, Any]:
    """Score the run's front and finalists on `device`; write RUN/rescore/<device>.json and return it.

    The finalists' fine-tuned weights are read from `finetuned` (default: the run
    directory, where `qnas search` keeps them); a finalist whose checkpoint is not there
    is fine-tuned again.
    """
    from qnas.pipeline import _finetuned, load_supercircuit, score_genome
    from qnas.transpiled import validate_layout

    run = RunDir(run_dir)
    config = run.load_config()
    if not run.best_json.exists():
        raise FileNotFoundError(f"{run.path} has no finished search (best.json); finish qnas search first")
    target = get_device(device)
    task, sc = load_supercircuit(config, run)
    if task.n_wires > target.n_qubits:
        raise ValueError(f"task {task.name} needs {task.n_wires} qubits; {target.name} has {target.n_qubits}")
    moved = config.model_copy(deep=True)
    moved.device = device
    first = config.search.objectives[0]
    sign = 1.0 if objective_direction(first) == "minimize" else -1.0

    def on_target(layout: list[int]) -> tuple[Genome, str]:
        try:
            return Genome(validate_layout(layout, task.n_wires, target), ()), "same"
        except ValueError:
            return Genome((), ()), "qiskit's"

    table = pd.read_parquet(run.candidates_parquet)
    front = front_of(table, config.search.objectives)
    samples = task.samples("valid", config.search.valid_samples)
    evaluator = CandidateEvaluator(moved.model_dump(), sc.weights.detach().clone(), samples, task=task)
    front_rows = []
    for _, row in front.iterrows():
        placed, how = on_target(json.loads(row["layout"]))
        genome = Genome(placed.layout, tuple(json.loads(row["arch"])))
        scores = evaluator.evaluate(genome)
        front_rows.append(
            {
                "id": row["id"],
                "layout": json.loads(row["layout"]),
                "layout_on_target": how,
                "before": float(row[first]),
                "after": float(scores[first]),
                "n_2q_after": scores.get("n_2q"),
            }
        )
    best = json.loads(run.best_json.read_text())
    finalists = []
    for f in best["finalists"]:
        genome = Genome(tuple(f["layout"]), tuple(f["arch"]))
        tuned = _finetuned(config, Path(finetuned) if finetuned else run.path, task, sc, genome, progress)
        placed, how = on_target(f["layout"])
        after = score_genome(
            moved, task, tuned, Genome(placed.layout, genome.arch), "valid", config.search.noise_aware
        )
        finalists.append(
            {
                "trial": f["trial"],
                "blocks": f["arch"][-1],
                "layout": f["layout"],
                "layout_on_target": how,
                "before": float(f["valid_after_finetune"][first]),
                "after": float(after[first]),
                "chosen_before": f["trial"] == best["trial"],
            }
        )
    now = min(finalists, key=lambda r: sign * r["after"])
    summary = {
        "run": str(run.path),
        "from_device": config.device,
        "to_device": device,
        "objective": first,
        "direction": objective_direction(first),
        "front": front_rows,
        "front_kendall_tau": _tau([r["before"] for r in front_rows], [r["after"] for r in front_rows]),
        "finalists": finalists,
        "finalists_kendall_tau": _tau([r["before"] for r in finalists], [r["after"] for r in finalists]),
        "best_before": best["trial"],
        "best_now": now["trial"],
    }
    out = run.path / "rescore" / f"{Path(device).name.replace('.json', '')}.json"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out)
    summary["path"] = str(out)
    return summary


def _tau(before: list[float], after: list[float]) -> float | None:
    """Kendall's tau-b of two rankings (None for fewer than 2 points or a constant one)."""
    from scipy.stats import kendalltau

    if len(before) < 2 or np.ptp(before) == 0 or np.ptp(after) == 0:
        return None
    return float(kendalltau(before, after).statistic)


def summary_text(summary: dict[str, Any]) -> str:
    """The re-score for a person: both rankings side by side, tau, and the best point now."""
    first = summary["objective"]
    lines = [f"{summary['run']}: {first} on {summary['from_device']} -> {summary['to_device']}"]
    for part in ("front", "finalists"):
        rows = summary[part]
        tau = summary[f"{part}_kendall_tau"]
        lines.append(
            f"{part} ({len(rows)}): Kendall's tau {tau:+.2f}" if tau is not None else f"{part} ({len(rows)})"
        )
        for r in rows:
            name = r.get("id") or f"trial {r['trial']} ({r['blocks']} blocks)"
            flag = "  <- chosen by the search" if r.get("chosen_before") else ""
            lines.append(
                f"  {name:24s} layout {r['layout']} ({r['layout_on_target']} on target): "
                f"{r['before']:.4f} -> {r['after']:.4f}{flag}"
            )
    verdict = "unchanged" if summary["best_now"] == summary["best_before"] else "changed"
    lines.append(
        f"best finalist on {summary['to_device']}: trial {summary['best_now']} ({verdict}; was trial "
        f"{summary['best_before']}); written to {summary['path']}"
    )
    return "\n".join(lines)
