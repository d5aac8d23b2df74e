"""The test loss of every mitigated classifier deploy under the given cells: raw, readout, zne, both.

    python scripts/mitigation_losses.py /work/runs/reproduce/main/cells /work/runs/shots20k/cells

The accuracy of a classifier is an argmax: a mitigation that brings every output nearer
the noiseless one can still move a sample across a decision boundary the wrong way
(docs/results.md, "Mitigation at deploy: raw, readout (M3), ZNE, both"). The
cross-entropy the circuit was trained on moves smoothly with its outputs, so it shows
whether a mitigation does what it should. Reads the deploy summaries `qnas deploy --mitigation readout+zne` (and
scripts/mitigation_table.py) left in each cell's deploy folder; runs no job. For each:
the noiseless test loss (the search's own), the raw deployed loss, and each mitigated
loss with the share of the gap to noiseless it recovers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KINDS = ("readout", "zne", "readout+zne")


def rows(cells: Path) -> list[dict]:
    """One row per mitigated classifier deploy under `cells` (each finished cell's deploy folders)."""
    out = []
    for cell in sorted(p for p in cells.iterdir() if (p / "best.json").is_file()):
        noiseless = json.loads((cell / "best.json").read_text())["test"]["noiseless"].get("loss")
        for path in sorted((cell / "deploy").glob("*/summary.json")):
            summary = json.loads(path.read_text())
            if "mitigated" not in summary or summary.get("kind") != "classification":
                continue
            raw = summary["measured"]["loss"]
            row = {
                "cell": cell.name,
                "deploy": path.parent.name,
                # Per circuit, from the plan: summaries written before 2026-12-05 (session 12)
                # hold every circuit's shots under "shots".
                "shots": json.loads((path.parent / "deploy.json").read_text())["shots"],
                "noiseless": noiseless,
                "raw": raw,
            }
            for kind in KINDS:
                loss = summary["mitigated"][kind]["loss"]
                row[kind] = loss
                row[f"{kind}_recovered"] = (raw - loss) / (raw - noiseless)
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", type=Path, nargs="+", help="folders of finished cells (run folders)")
    args = parser.parse_args()
    print("| cell | deploy | shots/circuit | noiseless | raw | " + " | ".join(KINDS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(KINDS))
    for cells in args.cells:
        for r in rows(cells):
            mitigated = " | ".join(f"{r[k]:.3f} ({100 * r[f'{k}_recovered']:+.0f}%)" for k in KINDS)
            print(
                f"| {r['cell']} | {r['deploy'].split('-best')[-1] or '-'} | {r['shots']} | "
                f"{r['noiseless']:.3f} | {r['raw']:.3f} | {mitigated} |"
            )


if __name__ == "__main__":
    main()
