"""Build the comparison tables cell by cell: human baselines, random, noise-unaware, noise-aware.

    python scripts/reproduce.py --table main [--seeds 0 1 2] [--devices ...] [--methods ...]
                                [--workers 0] [--out runs/reproduce] [--finished-only]

A cell is one (table, device, method, seed): a full `qnas search` run directory under
OUT/TABLE/cells/. Its row of figures is appended to docs/cells/TABLE.jsonl, which is
committed: a cell with a row there is not run again, so a table can be built over
several sessions and machines. Deleting a row runs its cell again: from scratch when its
run directory under OUT is gone, else finishing or re-reading that directory. One SuperCircuit per
(task, space, seed) serves every device and every searching method; each human baseline
is trained alone once per seed; fine-tuned circuits are shared between cells through
OUT/TABLE/finetuned/ (fine-tuning is noiseless, so it does not depend on the device). The figures are
the chosen circuit's test-set scores after fine-tuning, noiseless and on the device's
noise model (exact density matrices, readout error included), from the run's best.json,
and "deployed": the same circuit run through `qnas deploy`'s path (SamplerV2 on the fake
backend, the runtime's local mode: Aer with the backend's noise, DEPLOY_SHOTS seeded shots
per sample), so the tables do not rest on the search's own scorer alone.
The table (mean and spread over seeds) and, per device, how the noise-aware search
compares with each other method seed by seed are printed as markdown and written to
OUT/TABLE/TABLE.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from qnas.config import load_config
from qnas.deploy import deploy
from qnas.pipeline import load_candidate, run_search, run_train, score_genome
from qnas.results import RunDir, locked

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "main": (
        "configs/reproduce/digits4_u3cu3.yaml",
        ["fake_quito", "fake_cambridge", "fake_johannesburg", "fake_rochester", "fake_cusco"],
    ),
    "zzry": ("configs/reproduce/digits2_zzry.yaml", ["fake_quito", "fake_rochester"]),
    "vqe": ("configs/reproduce/h2_u3cu3.yaml", ["fake_quito", "fake_rochester"]),
    "vqe_lih": ("configs/reproduce/lih_u3cu3.yaml", ["fake_cambridge", "fake_rochester"]),
}
DEPLOY_SHOTS = 4000
CELLS = ROOT / "docs" / "cells"
ONE_CANDIDATE = [
    "search.population=1",
    "search.parents=1",
    "search.mutants=0",
    "search.crossovers=0",
    "search.iterations=1",
]


def methods(n_blocks_of: dict[int, list[int]], n_wires: int, max_blocks: int) -> dict[str, list[str]]:
    """Each method as config overrides; the baselines fix the architecture and the layout."""
    trivial = list(range(n_wires))
    out = {}
    for blocks, arch in n_blocks_of.items():
        for name, layout in (("default", '"default"'), ("trivial", json.dumps(trivial))):
            out[f"human{blocks}_{name}"] = [
                f"search.arch={json.dumps(arch)}",
                f"search.layout={layout}",
                *ONE_CANDIDATE,
            ]
    out["random"] = ["search.strategy=random"]
    out["noise_unaware"] = ["search.noise_aware=false", 'search.layout="default"']
    out["noise_aware"] = []
    # Chosen for a readout-mitigated deploy: scored without the readout error a perfect
    # readout mitigation removes, so the choice cannot lean on that error.
    out["noise_aware_readout_free"] = ["search.readout_noise=false"]
    # (d) with a finalist at every depth, not 4 spread over them: where the best circuit
    # under noise has a depth the spread skips (2 blocks on fake_cambridge and
    # fake_rochester), the 4-finalist search cannot pick it.
    out["noise_aware_all_depths"] = [f"finetune.finalists={max_blocks}"]
    # Élivágar-style: the same budget of calibration-guided candidates ranked untrained by
    # RepCap x CNR^0.5 (and two-qubit gates), the finalists trained alone.
    out["training_free"] = ["search.strategy=training_free", "search.objectives=[elivagar_score, n_2q]"]
    return out


def run_cell(
    base: Path, out: Path, device: str, method: str, overrides: list[str], seed: int, workers: int
) -> dict:
    """Run (or finish) one cell; return its row."""
    cell = RunDir(out / "cells" / f"{device}-{method}-s{seed}")
    done = cell.best_json
    config = load_config(base, [f"device={device}", f"seed={seed}", *overrides])
    if not done.exists() and config.search.strategy == "training_free":
        run_search(config, cell, workers=workers, progress=False, finetune_dir=out / "finetuned")
    elif not done.exists():
        # Share the trained weights: one SuperCircuit per seed, one per baseline architecture.
        shared = RunDir(
            out
            / "supercircuits"
            / (f"s{seed}" + (f"-arch{config.search.arch}" if config.search.arch else ""))
        )
        # Parallel builds of one table (say, one per seed) train each shared circuit once.
        with locked(shared.path / "lock"):
            if not (shared.path / "trained").exists():
                run_train(config, shared, progress=False)
                (shared.path / "trained").touch()
        if not cell.checkpoint.exists():
            cell.path.mkdir(parents=True, exist_ok=True)
            shutil.copy(shared.checkpoint, cell.checkpoint)
        run_search(config, cell, workers=workers, progress=False, finetune_dir=out / "finetuned")
    best = json.loads(done.read_text())
    test = best["test"]
    deployed = deploy(cell.path, "best", device, shots=DEPLOY_SHOTS, progress=False)["measured"]
    # The same circuit scored without idle noise: how much of its noisy score idle time costs.
    run_config, task, tuned, genome = load_candidate(cell, "best")
    no_idle = run_config.model_copy(deep=True)
    no_idle.search.idle_noise = False
    no_idle_scores = score_genome(no_idle, task, tuned, genome, task.final_split, True)
    row = {
        "device": device,
        "method": method,
        "seed": seed,
        "n_2q": test["noisy"].get("n_2q"),
        "blocks": best["arch"][-1],
        "date": str(datetime.date.today()),
        "commit": _commit(),
    }
    scores = {**test, "deployed": deployed, "noisy_no_idle": no_idle_scores}
    for kind in ("noiseless", "noisy", "noisy_no_idle", "deployed"):
        for metric in ("accuracy", "loss", "calibrated_loss", "energy"):
            if metric in scores[kind]:
                row[f"{kind}_{metric}"] = scores[kind][metric]
    if "exact_energy" in test["noiseless"]:
        row["exact_energy"] = exact = test["noiseless"]["exact_energy"]
        for kind in ("noiseless", "noisy", "noisy_no_idle", "deployed"):
            row[f"{kind}_error_mHa"] = 1000 * (scores[kind]["energy"] - exact)
    return row


def summarize(rows: list[dict]) -> pd.DataFrame:
    """Mean and spread (min-max over seeds) per device and method."""
    df = pd.DataFrame(rows)
    # The noiseless losses add little beside the accuracy; the noisy ones are the finer
    # ranking the search uses.
    skip = (
        "noiseless_loss",
        "noiseless_calibrated_loss",
        "deployed_calibrated_loss",
        "noisy_no_idle_loss",
        "noisy_no_idle_calibrated_loss",
    )
    metrics = [
        c
        for c in df.columns
        if (c.startswith(("noisy_", "noiseless_", "deployed_")) or c in ("n_2q", "blocks")) and c not in skip
    ]
    if "noiseless_energy" in df:  # VQE: the loss is the energy
        metrics = [m for m in metrics if not m.endswith("_loss")] + ["exact_energy"]
    out = []
    for (device, method), group in df.groupby(["device", "method"], sort=False):
        entry = {"device": device, "method": method, "seeds": len(group)}
        for m in metrics:
            values = group[m].astype(float)
            scale = 100 if m.endswith("accuracy") else 1
            digits = 4 if m.endswith("energy") else 3 if m.endswith("loss") else 2
            mean, spread = values.mean() * scale, (values.max() - values.min()) * scale / 2
            entry[m] = f"{mean:.{digits}f} ± {spread:.{digits}f}"
        out.append(entry)
    return pd.DataFrame(out)


def compare(rows: list[dict], metric: str, higher_is_better: bool) -> pd.DataFrame:
    """A device x rival table of the noise-aware search's margin over each other method in `metric`.

    A cell reads "+6.5 (3/3)": the mean margin over the seeds both methods ran (positive:
    the noise-aware search is better; accuracy in points), and on how many of them it was
    better (ties count as not better). A "*" marks a mean margin no larger than the larger
    of the two methods' half min-max spreads over those seeds: within what another draw
    of seeds could undo.
    """
    df = pd.DataFrame(rows)
    if metric not in df or "noise_aware" not in set(df["method"]):
        return pd.DataFrame()
    scale = 100 if metric.endswith("accuracy") else 1
    sign = 1 if higher_is_better else -1
    out = []
    for device, group in df.groupby("device", sort=False):
        ours = group[group["method"] == "noise_aware"].set_index("seed")[metric].astype(float)
        entry = {"device": device}
        for method, theirs in group[group["method"] != "noise_aware"].groupby("method", sort=False):
            theirs = theirs.set_index("seed")[metric].astype(float)
            seeds = sorted(ours.index.intersection(theirs.index))
            if not seeds:
                continue
            margin = sign * (ours[seeds] - theirs[seeds]) * scale
            spread = max(np.ptp(ours[seeds]), np.ptp(theirs[seeds])) * scale / 2
            within = "*" if abs(margin.mean()) <= spread else ""
            entry[method] = f"{margin.mean():+.1f} ({int((margin > 0).sum())}/{len(seeds)}){within}"
        out.append(entry)
    return pd.DataFrame(out).fillna("")


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the tabulate package)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def stored_cells(path: Path) -> dict[tuple[str, str, int], dict]:
    """The finished cells' rows of a table's store, by (device, method, seed)."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["device"], r["method"], r["seed"]): r for r in rows}


def store_cell(path: Path, row: dict) -> None:
    """Append a finished cell's row; one line per write, so parallel builds of one table can share the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def _commit() -> str:
    """The checkout's commit, so that every stored row says which code made it."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=TABLES, default="main")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--devices", nargs="+")
    parser.add_argument("--methods", nargs="+")
    parser.add_argument("--workers", type=int, default=0, help="Ray workers per search (0: in-process)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="tabulate the stored cells of the grid and run nothing new (a table built over sessions)",
    )
    args = parser.parse_args()
    # One thread per process: the circuits are small, and two builds (say, one per seed)
    # then use the two cores of a small machine without contending.
    torch.set_num_threads(1)
    base_name, devices = TABLES[args.table]
    base = ROOT / base_name
    out = args.out / args.table
    probe = load_config(base, [f"device={(args.devices or devices)[0]}"])
    from qnas.pipeline import check_config

    task, sc = check_config(probe)
    all_methods = methods(
        {b: list(sc.space.fixed_blocks(b, sc.n_wires, sc.max_blocks)) for b in (2, 4)},
        sc.n_wires,
        sc.max_blocks,
    )
    if task.kind != "classification":
        del all_methods["training_free"]  # RepCap reads class labels
    chosen = args.methods or list(all_methods)
    unknown = [m for m in chosen if m not in all_methods]
    if unknown:
        sys.exit(f"unknown methods {unknown}; allowed: {', '.join(all_methods)}")
    store = CELLS / f"{args.table}.jsonl"
    rows = []
    for seed in args.seeds:
        for device in args.devices or devices:
            for method in chosen:
                key = (device, method, seed)
                row = stored_cells(store).get(key)
                if row is None and not args.finished_only:
                    with locked(out / "cells" / f"{device}-{method}-s{seed}.lock"):
                        # Another build of the same table may have stored it while we waited.
                        row = stored_cells(store).get(key)
                        if row is None:
                            row = run_cell(base, out, device, method, all_methods[method], seed, args.workers)
                            store_cell(store, row)
                            print(json.dumps(row), flush=True)
                if row is not None:
                    rows.append(row)
    if not rows:
        sys.exit(f"no finished cells of this grid in {store}")
    vqe = "noisy_energy" in rows[0]
    command = "python scripts/reproduce.py " + " ".join(sys.argv[1:])
    parts = [
        f"{args.table} table, {datetime.date.today()}, `{command}`; mean ± half the min-max spread over "
        "seeds; " + ("energies in Ha, errors in mHa" if vqe else "accuracy in %, test set after fine-tuning"),
        markdown(summarize(rows)),
    ]
    for kind in ("noisy", "deployed"):
        metric = f"{kind}_error_mHa" if vqe else f"{kind}_accuracy"
        margins = compare(rows, metric, higher_is_better=not vqe)
        if not margins.empty:
            parts += [f"The noise-aware search against each rival, {metric}:", markdown(margins)]
    text = "\n\n".join(parts) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.table}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
