"""Anytime curves: the best fine-tuned noisy validation score against candidates scored, per strategy.

    python scripts/anytime.py --config configs/reproduce/digits4_u3cu3.yaml --device fake_quito \
        --seeds 0 1 2 --strategies evolution random nsga2 tpe screened --out runs/anytime

Each (strategy, seed) cell runs the config's search with that strategy on the seed's
trained SuperCircuit (found in --supercircuits, e.g. the main table's, or trained here).
At each checkpoint of fully scored candidates (in the order they were scored), the best
one so far by the search's first objective is fine-tuned alone (`--finetune-epochs`) and
scored noisy on the validation samples: what a user stopping the search there would get.
`screened` is the evolution with `search.screen` (CNR and two-qubit gates keep the best
half of each generation's new candidates) and twice the generations, so that it gives as
many candidates the full score. A cell is one JSON line, written when it finishes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qnas.config import load_config, objective_direction  # noqa: E402
from qnas.evolution.genome import Genome  # noqa: E402
from qnas.pipeline import _finetuned, load_supercircuit, run_search, score_genome  # noqa: E402
from qnas.results import RunDir  # noqa: E402


def strategy_overrides(name: str, iterations: int, population: int) -> list[str]:
    if name == "screened":
        screen = f"{{objectives: [clifford_noise_resilience, n_2q], keep: {population // 2}}}"
        return [f"search.screen={screen}", f"search.iterations={2 * iterations}"]
    return [f"search.strategy={name}"]


def run_cell(args: argparse.Namespace, strategy: str, seed: int) -> dict:
    base = load_config(args.config, [f"device={args.device}", f"seed={seed}"])
    overrides = [
        f"device={args.device}",
        f"seed={seed}",
        *strategy_overrides(strategy, base.search.iterations, base.search.population),
        "finetune.epochs=0",  # the search's own finish is not what is measured here
        "finetune.finalists=1",
    ]
    config = load_config(args.config, overrides)
    cell = RunDir(args.out / "cells" / f"{args.device}-{strategy}-s{seed}")
    trained = args.supercircuits / f"s{seed}" / "supercircuit.pt" if args.supercircuits else None
    if trained is not None and trained.exists() and not cell.checkpoint.exists():
        cell.path.mkdir(parents=True, exist_ok=True)
        shutil.copy(trained, cell.checkpoint)
    start = time.perf_counter()
    outcome = run_search(config, cell, workers=0, progress=False)
    seconds = time.perf_counter() - start
    df = outcome.candidates
    first = config.search.objectives[0]
    scored = df[~df["failed"]].sort_values("trial")
    sign = 1.0 if objective_direction(first) == "minimize" else -1.0
    tuning = config.model_copy(deep=True)
    tuning.finetune.epochs = args.finetune_epochs
    task, sc = load_supercircuit(config, cell)
    curve = []
    # The checkpoints reached, and the end of the search (all it scored).
    for k in [*(c for c in args.checkpoints if c < len(scored)), len(scored)]:
        best = scored.iloc[:k].iloc[int(np.argmin(sign * scored[first].to_numpy()[:k]))]
        genome = Genome(tuple(json.loads(best["layout"])), tuple(json.loads(best["arch"])))
        tuned = _finetuned(tuning, args.out / "finetuned", task, sc, genome, progress=False)
        valid = score_genome(tuning, task, tuned, genome, "valid", True)
        # The search's own (inherited-weight) score under its own name: a VQE's first objective and
        # its metric are both "energy", and the fine-tuned validation energy must not be overwritten.
        point = {
            "scored": k,
            "id": best["id"],
            task.metric: valid[task.metric],
            f"search_{first}": float(best[first]),
        }
        if "above_exact" in valid:  # a VQE: the energy's error above the exact ground energy
            point["above_exact"] = valid["above_exact"]
        curve.append(point)
    return {
        "strategy": strategy,
        "seed": seed,
        "device": args.device,
        "metric": task.metric,
        "curve": curve,
        "screened_out": int((df["screened_out"] == True).sum()) if "screened_out" in df else 0,  # noqa: E712
        "seconds_search": seconds,
        "seconds_screen": float(df.filter(like="seconds_clifford").sum().sum()),
    }


def report(rows: list[dict], checkpoints: list[int]) -> str:
    metric = rows[0]["metric"]
    # Accuracy in %; a VQE's energy as its error above the exact ground energy, in mHa.
    key, scale, unit = (
        ("above_exact", 1000, "mHa") if "above_exact" in rows[0]["curve"][0] else (metric, 100, "%")
    )
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [
        f"| strategy | {' | '.join(f'{k} scored' for k in checkpoints)} | at the end | search s |",
        "|---|" + "---|" * (len(checkpoints) + 2),
    ]
    for s in strategies:
        these = [r for r in rows if r["strategy"] == s]
        cells = []
        for k in checkpoints:
            values = [scale * p[key] for r in these for p in r["curve"] if p["scored"] == k]
            cells.append(
                f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f}, n={len(values)})"
                if values
                else "-"
            )
        end = [r["curve"][-1] for r in these]
        values = [scale * p[key] for p in end]
        cells.append(
            f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f}; "
            f"{min(p['scored'] for p in end)}-{max(p['scored'] for p in end)} scored)"
        )
        lines.append(f"| {s} | {' | '.join(cells)} | {np.mean([r['seconds_search'] for r in these]):.0f} |")
    lines.append("")
    what = f"{metric} in %" if unit == "%" else f"energy's error above the exact ground energy in {unit}"
    lines.append(
        f"mean (min-max over seeds) of the noisy validation {what} of the best candidate so far, fine-tuned alone"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/reproduce/digits4_u3cu3.yaml")
    parser.add_argument("--device", default="fake_quito")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--strategies", nargs="+", default=["evolution", "random", "nsga2", "tpe", "screened"]
    )
    parser.add_argument("--finetune-epochs", type=int, default=60)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[20, 50, 100, 150, 200])
    parser.add_argument("--supercircuits", type=Path, help="folder of trained SuperCircuits s0, s1, ...")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "anytime")
    parser.add_argument("--report", action="store_true", help="only print the table of the cells built")
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="rebuild the curves of finished cells (their searches resume at once)",
    )
    args = parser.parse_args()
    cells = args.out / "anytime.jsonl"
    rows = [json.loads(line) for line in cells.read_text().splitlines()] if cells.exists() else []
    if args.recompute:
        rows = [r for r in rows if r["device"] != args.device or r["seed"] not in args.seeds]
        cells.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if not args.report:
        for seed in args.seeds:
            for strategy in args.strategies:
                if any(
                    r["strategy"] == strategy and r["seed"] == seed and r["device"] == args.device
                    for r in rows
                ):
                    continue
                row = run_cell(args, strategy, seed)
                rows.append(row)
                cells.parent.mkdir(parents=True, exist_ok=True)
                with cells.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{strategy} s{seed}: {row['curve']}", flush=True)
    built = [r for r in rows if r["device"] == args.device]
    if not built:
        sys.exit(f"no finished cells on {args.device} in {cells}")
    print(report(built, args.checkpoints))


if __name__ == "__main__":
    main()
