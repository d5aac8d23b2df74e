"""How well does each cheap score rank circuits? Kendall's tau against the fine-tuned noisy test score.

    python scripts/proxy_rank.py --config configs/reproduce/digits4_u3cu3.yaml --device fake_quito \
        --seeds 0 1 2 --candidates 100 --finetune-epochs 60 --out runs/proxy_rank

For each seed: the config's SuperCircuit is trained (or found in --supercircuits, e.g. the
main table's), `--candidates` random genomes are drawn from the search's genome space
(calibration-guided layouts included), and each candidate gets every training-free proxy,
its inherited-weight noisy validation score, and the truth: its noisy test score after
fine-tuning alone (`--finetune-epochs`). Each candidate is one line of a JSONL cell file,
written as it finishes, so an interrupted build resumes where it stopped. `--report`
prints the table: tau with a 95% bootstrap interval per proxy and seed, and each proxy's
seconds per candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qnas.config import TRAINING_FREE_OBJECTIVES, load_config, objective_direction  # noqa: E402
from qnas.devices import get_device  # noqa: E402
from qnas.evaluate import CandidateEvaluator, evaluator_payload  # noqa: E402
from qnas.pipeline import _finetuned, candidate_key, genome_space, run_train, score_genome  # noqa: E402
from qnas.results import RunDir  # noqa: E402

# Every training-free objective but depth and n_params (shapes of the circuit, not signals of its quality).
PROXIES = tuple(o for o in TRAINING_FREE_OBJECTIVES if o not in ("depth", "n_params"))
CLASSIFIER_ONLY = ("representational_capacity", "elivagar_score")


def build(args: argparse.Namespace, seed: int) -> Path:
    overrides = [f"seed={seed}", f"device={args.device}", f"finetune.epochs={args.finetune_epochs}"]
    config = load_config(args.config, overrides)
    cells = args.out / f"{config.task.name}-{config.device}-s{seed}.jsonl"
    done = {json.loads(line)["key"] for line in cells.read_text().splitlines()} if cells.exists() else set()
    trained = (args.supercircuits or args.out / "supercircuits") / f"s{seed}"
    task, sc = run_train(
        config.model_copy(update={"finetune": load_config(args.config).finetune}), RunDir(trained)
    )
    device = get_device(config.device)
    space = genome_space(config, sc, device)
    rng = np.random.default_rng([seed, 7])
    genomes, keys = [], set()
    while len(genomes) < args.candidates:
        genome = space.sample(rng)
        key = candidate_key(sc, genome)
        if key not in keys:
            keys.add(key)
            genomes.append((key, genome))
    evaluator = CandidateEvaluator(**evaluator_payload(config, sc, task))
    # RepCap (and so Élivágar's score) reads class labels: classifiers only.
    proxies = (
        PROXIES if task.kind == "classification" else tuple(p for p in PROXIES if p not in CLASSIFIER_ONLY)
    )
    cells.parent.mkdir(parents=True, exist_ok=True)
    for i, (key, genome) in enumerate(genomes):
        if key in done:
            continue
        start = time.perf_counter()
        try:
            row = evaluator._evaluate(genome, proxies, score_task=True)
            t0 = time.perf_counter()
            tuned = _finetuned(config, args.out / "finetuned", task, sc, genome, progress=False)
            t1 = time.perf_counter()
            test = score_genome(config, task, tuned, genome, task.final_split, True)
            row.update(
                {f"tuned_{task.metric}": test[task.metric], "seconds_finetune": t1 - t0},
                seconds_tuned_score=time.perf_counter() - t1,
            )
        except Exception as error:  # a candidate too wide for the scorer: recorded, the build goes on
            row = {"error": f"{type(error).__name__}: {error}"}
        row.update(key=key, layout=list(genome.layout), arch=list(genome.arch), seed=seed, metric=task.metric)
        row["higher_is_better"] = task.higher_is_better
        with cells.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        print(f"s{seed} {i + 1}/{len(genomes)} {time.perf_counter() - start:.1f}s", flush=True)
    return cells


def tau_with_interval(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_boot: int = 1000):
    tau = kendalltau(x, y).statistic
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(len(x), size=len(x))
        value = kendalltau(x[idx], y[idx]).statistic
        if np.isfinite(value):
            boots.append(value)
    low, high = np.percentile(boots, [2.5, 97.5])
    return float(tau), float(low), float(high)


def report(cell_files: list[Path]) -> str:
    rows = [json.loads(line) for f in cell_files for line in f.read_text().splitlines()]
    ok = [r for r in rows if "error" not in r]
    metric = ok[0]["metric"]
    truth_name = f"tuned_{metric}"
    scores = [*PROXIES, metric]  # the last: the inherited-weight noisy validation score
    lines = [
        f"| score | {' | '.join(f'seed {s}' for s in sorted({r['seed'] for r in ok}))} | seconds / candidate |",
        "|---|" + "---|" * (len({r["seed"] for r in ok}) + 1),
    ]
    rng = np.random.default_rng(0)
    for name in scores:
        cells = []
        for seed in sorted({r["seed"] for r in ok}):
            these = [r for r in ok if r["seed"] == seed and r.get(name) is not None]
            if not these:
                cells.append("-")
                continue
            sign = 1.0 if objective_direction(name) == "maximize" else -1.0
            x = sign * np.array([float(r[name]) for r in these])
            truth_sign = 1.0 if these[0].get("higher_is_better", True) else -1.0
            y = truth_sign * np.array([float(r[truth_name]) for r in these])
            tau, low, high = tau_with_interval(x, y, rng)
            cells.append(f"{tau:+.2f} [{low:+.2f}, {high:+.2f}] (n={len(these)})")
        parts = {"elivagar_score": ["clifford_noise_resilience", "representational_capacity"]}.get(
            name, [name]
        )
        keys = ["seconds_score"] if name == metric else [f"seconds_{p}" for p in parts]
        cost = [sum(r[k] for k in keys) for r in ok if all(k in r for k in keys)]
        shown = f"{np.mean(cost):.3f}" if cost else "~0 (transpiled cost)"
        label = f"inherited noisy {metric} (valid)" if name == metric else name
        lines.append(f"| {label} | {' | '.join(cells)} | {shown} |")
    failed = len(rows) - len(ok)
    lines.append("")
    lines.append(
        f"tau: Kendall's, each score oriented so higher is better, against the fine-tuned noisy test {metric}; "
        f"[95% bootstrap interval]; {failed} candidates failed"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/reproduce/digits4_u3cu3.yaml")
    parser.add_argument("--device", default="fake_quito")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--finetune-epochs", type=int, default=60)
    parser.add_argument("--supercircuits", type=Path, help="folder of trained SuperCircuits s0, s1, ...")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "proxy_rank")
    parser.add_argument("--report", action="store_true", help="only print the table of the cells built")
    args = parser.parse_args()
    config = load_config(args.config, [f"device={args.device}"])
    files = [args.out / f"{config.task.name}-{config.device}-s{seed}.jsonl" for seed in args.seeds]
    if not args.report:
        files = [build(args, seed) for seed in args.seeds]
    print(report([f for f in files if f.exists()]))


if __name__ == "__main__":
    main()
