"""How far can zero-noise extrapolation take a classifier's accuracy? Its ceiling, with shot noise out of the way.

    python scripts/zne_ceiling.py --cells runs/reproduce/main/cells/fake_rochester-noise_aware-s0 \
        runs/reproduce/main/cells/fake_rochester-noise_aware-s1 --out runs/zne_ceiling.jsonl

For each cell's chosen circuit: the test circuits exactly as `qnas deploy` runs them, folded
globally to each noise scale (qnas.mitigation.fold), simulated by qiskit-aer's density
matrices under the device's noise model (`NoiseModel.from_backend`, the model the runtime's
local mode uses) with `--shots` shots per circuit (10^5: a probability's shot noise is
below 0.2%), with and without its readout error. Printed: the accuracy at each scale, and
after Richardson extrapolation from each set of scales. Without readout error is where a
perfect readout mitigation lands, so the "no readout" rows are the ceiling of readout + ZNE.
A deployed accuracy measured with 4000 shots scatters around these figures by its error bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_aer.noise import NoiseModel  # noqa: E402

from qnas import mitigation  # noqa: E402
from qnas.deploy import _probabilities, deployed_circuits  # noqa: E402
from qnas.devices import get_device  # noqa: E402
from qnas.evaluate import input_values  # noqa: E402
from qnas.pipeline import load_candidate  # noqa: E402
from qnas.results import RunDir  # noqa: E402

EXTRAPOLATIONS = ("1,3", "1,5", "1,3,5", "1,3,5,7")


def ceiling(cell: Path, scales: tuple[float, ...], shots: int, extrapolations: Sequence[str]) -> dict:
    config, task, sc, genome = load_candidate(RunDir(cell), "best")
    if task.kind != "classification":
        raise ValueError(
            f"{cell}: the ceiling is of a classifier's accuracy; task {task.name} is a {task.kind}"
        )
    target = get_device(config.device)
    sub = sc.subcircuit(genome.arch)
    task = task.bind(sub)
    _, circuits = deployed_circuits(config, task, sub, target, genome.layout)
    samples = task.samples(task.final_split, None)
    x = task.features(samples)
    row: dict = {"cell": cell.name, "n_samples": len(x), "shots": shots}
    # Each scale extrapolates at the scale its fold realizes (a whole two-qubit gate).
    realized = {s: mitigation.realized_scale(circuits[0], s) for s in scales}
    row["realized_scales"] = {str(s): realized[s] for s in scales}
    # Folded once, simulated with and without readout error.
    folds = {s: [mitigation.fold(c, s, target, config.seed) for c in circuits] for s in scales}
    for readout in (True, False):
        model = NoiseModel.from_backend(target.backend, readout_error=readout)
        simulator = AerSimulator(method="density_matrix", noise_model=model, seed_simulator=config.seed + 1)
        by_scale = {}
        for scale in scales:
            probs = []
            for folded in folds[scale]:
                values = input_values(folded, x)
                binds = [{p: values[:, j] for j, p in enumerate(folded.parameters)}]
                result = simulator.run(folded, parameter_binds=binds, shots=shots).result()
                probs.append(_probabilities([result.get_counts(i) for i in range(len(x))], task.n_wires))
            by_scale[scale] = dict(zip(task.measurement_bases(), probs, strict=True))
        accuracy = {
            f"scale {s}": task.metrics_from_probabilities(by_scale[s], samples)["accuracy"] for s in scales
        }
        for name in extrapolations:
            chosen = mitigation.check_scales([float(v) for v in name.split(",")])
            if set(chosen) <= set(scales):
                extrapolated = {
                    b: mitigation.extrapolate({realized[s]: by_scale[s][b] for s in chosen})
                    for b in by_scale[1]
                }
                name = "zne " + name
                accuracy[name] = task.metrics_from_probabilities(extrapolated, samples)["accuracy"]
        row["readout" if readout else "no readout"] = accuracy
    best = json.loads((cell / "best.json").read_text())
    row["noiseless"] = best["test"]["noiseless"]["accuracy"]
    return row


def report(rows: list[dict]) -> str:
    names = list(rows[0]["readout"])
    lines = [
        "| cell | readout error | noiseless | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for r in rows:
        for kind in ("readout", "no readout"):
            values = " | ".join(f"{100 * r[kind][n]:.1f}" for n in names)
            lines.append(
                f"| {r['cell']} | {'with' if kind == 'readout' else 'without'} | "
                f"{100 * r['noiseless']:.1f} | {values} |"
            )
    lines.append("")
    lines.append("test accuracy in %; zne a,b,...: Richardson extrapolation from those noise scales")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, nargs="+", required=True, help="run folders of classifiers")
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 3, 5, 7])
    parser.add_argument(
        "--extrapolations",
        nargs="+",
        default=list(EXTRAPOLATIONS),
        metavar="S,S,...",
        help="the sets of scales to extrapolate from, each comma-separated (default: %(default)s)",
    )
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per cell")
    args = parser.parse_args()
    try:
        scales = mitigation.check_scales(args.scales)
        for name in args.extrapolations:
            mitigation.check_scales([float(v) for v in name.split(",")])
    except ValueError as err:
        parser.error(str(err))  # one line and exit 2, before any simulation
    rows = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    for cell in args.cells:
        if any(r["cell"] == cell.name for r in rows):
            continue
        row = ceiling(cell, scales, args.shots, args.extrapolations)
        rows.append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    print(report(rows))


if __name__ == "__main__":
    main()
