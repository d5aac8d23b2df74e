"""Deployed scores raw, readout-mitigated, zero-noise-extrapolated and both, for the reproduction tables' picks.

    python scripts/mitigation_table.py --cells runs/reproduce/main/cells --devices fake_quito fake_rochester \
        --methods noise_aware --seeds 0 1 2 --shots 4000 --out runs/mitigation

Each finished cell's chosen circuit is deployed in the runtime's local mode with
`--mitigation readout+zne` (one deploy gives all four), and one JSON line per cell
records the four metrics with their shot-noise errors, the noiseless test metric and the
extra shots. The deploys resume like any other, so an interrupted build loses nothing.
`--zne-scales 1 3 5` extrapolates from those noise scales instead of 1 and 3 (its own
JSON-lines file, ...-scales1-3-5.jsonl); `--twirl 8` Pauli-twirls the two-qubit gates,
8 random copies of each circuit sharing its shots (...-twirl8.jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qnas.deploy import DEFAULT_SHOTS, deploy  # noqa: E402
from qnas.estimate import estimate  # noqa: E402
from qnas.mitigation import ZNE_SCALES, check_scales  # noqa: E402
from qnas.pipeline import load_candidate, score_genome  # noqa: E402
from qnas.results import RunDir  # noqa: E402

KINDS = ("raw", "readout", "zne", "readout+zne")


def measure(
    cell: Path, device: str, shots: int, zne_scales: tuple[float, ...] = ZNE_SCALES, twirls: int = 0
) -> dict:
    best = json.loads((cell / "best.json").read_text())
    summary = deploy(
        cell,
        "best",
        device,
        shots=shots,
        progress=False,
        mitigation="readout+zne",
        zne_scales=zne_scales,
        twirls=twirls,
    )
    metric = summary["metric"]
    row = {
        "cell": cell.name,
        "metric": metric,
        "noiseless": best["test"]["noiseless"][metric],
        "noisy": best["test"]["noisy"][metric],
        "raw": summary["measured"][metric],
        "raw_se": summary["shot_noise_se"],
        "shots": summary["mitigation_shots"],
        "zne_scales": summary["zne_scales"],
    }
    for kind in KINDS[1:]:
        row[kind] = summary["mitigated"][kind][metric]
        row[f"{kind}_se"] = summary["mitigated"][kind]["shot_noise_se"]
    # Where a perfect readout mitigation lands: the exact noisy score without readout error.
    config, task, tuned, genome = load_candidate(RunDir(cell), "best")
    config.search.readout_noise = False
    row["noisy_no_readout"] = score_genome(config, task, tuned, genome, task.final_split, True)[metric]
    return row


def measure_estimator(
    cell: Path, device: str, shots: int, zne_scales: tuple[float, ...] | None = None
) -> dict:
    """The same four through the runtime's Estimator (VQE): its TREX and gate-folding ZNE, one job each."""
    best = json.loads((cell / "best.json").read_text())
    row = {
        "cell": cell.name,
        "metric": "energy",
        "primitive": "estimator",
        "noiseless": best["test"]["noiseless"]["energy"],
        "noisy": best["test"]["noisy"]["energy"],
        "shots": {"per_job": shots},
    }
    for kind, option in zip(KINDS, ("none", *KINDS[1:]), strict=True):
        summary = estimate(cell, "best", device, shots=shots, mitigation=option, zne_scales=zne_scales)
        row[kind] = summary["measured"]["energy"]
        row[f"{kind}_se"] = summary["shot_noise_se"]
    return row


def report(rows: list[dict]) -> str:
    lines = [
        "| cell | noiseless | exact, no readout error | raw | readout | zne | readout+zne "
        "| share of the gap recovered (readout, zne, both) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        scale = 100 if r["metric"] == "accuracy" else 1000  # % or mHa
        gap = r["noiseless"] - r["raw"]
        # Where the raw score is already at (or past) the noiseless one there is no gap to recover.
        shares = (
            ", ".join(f"{(r[k] - r['raw']) / gap:+.2f}" for k in KINDS[1:]) if gap > 1e-12 else "(no gap)"
        )
        cells = " | ".join(f"{scale * r[k]:.1f} ± {scale * r[f'{k}_se']:.1f}" for k in KINDS)
        no_readout = f"{scale * r['noisy_no_readout']:.1f}" if "noisy_no_readout" in r else "-"
        lines.append(f"| {r['cell']} | {scale * r['noiseless']:.1f} | {no_readout} | {cells} | {shares} |")
    lines.append("")
    lines.append(
        "accuracy in %, energy in mHa; ± the shot-noise error; share: (mitigated - raw) / (noiseless - raw); "
        "exact, no readout error: the scorer's exact noisy score with search.readout_noise false, where a "
        "perfect readout mitigation lands"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, required=True, help="a table's cells folder")
    parser.add_argument("--devices", nargs="+", default=["fake_quito"])
    parser.add_argument("--methods", nargs="+", default=["noise_aware"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shots", type=int, default=DEFAULT_SHOTS)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "mitigation")
    parser.add_argument("--report", action="store_true")
    parser.add_argument(
        "--primitive",
        choices=["sampler", "estimator"],
        default="sampler",
        help="estimator (VQE): the runtime's Estimator does the mitigation (TREX, ZNE)",
    )
    parser.add_argument("--zne-scales", type=float, nargs="+", help="ZNE noise scales (default 1 3)")
    parser.add_argument("--twirl", type=int, default=0, help="Pauli-twirled copies of each circuit (0: off)")
    args = parser.parse_args()
    scales = check_scales(args.zne_scales) if args.zne_scales else None
    # Rows measured otherwise (scales, shots) go to files of their own, never mistaken for done.
    suffix = (
        ("" if args.primitive == "sampler" else "-estimator")
        + (f"-scales{'-'.join(map(str, scales))}" if scales else "")
        + (f"-shots{args.shots}" if args.shots != DEFAULT_SHOTS else "")
        + (f"-twirl{args.twirl}" if args.twirl else "")
    )
    lines = args.out / f"{args.cells.parent.name}{suffix}.jsonl"
    rows = [json.loads(line) for line in lines.read_text().splitlines()] if lines.exists() else []
    if not args.report:
        for device in args.devices:
            for method in args.methods:
                for seed in args.seeds:
                    cell = args.cells / f"{device}-{method}-s{seed}"
                    if any(r["cell"] == cell.name for r in rows) or not (cell / "best.json").exists():
                        continue
                    if args.primitive == "sampler":
                        row = measure(cell, device, args.shots, scales or ZNE_SCALES, args.twirl)
                    else:
                        row = measure_estimator(cell, device, args.shots, scales)
                    rows.append(row)
                    lines.parent.mkdir(parents=True, exist_ok=True)
                    with lines.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    print(report(rows))


if __name__ == "__main__":
    main()
