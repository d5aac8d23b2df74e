"""Quantum-Train on digits10: the classical CNN trained directly against CNNs whose weights a circuit generates.

Rows, per seed (each a cell of a JSON-lines file, so an interrupted build resumes):
- `classical`: the target network (1898 weights) trained directly, Adam, same epochs;
- `human-ry_cnot-bN`: Quantum-Train with the papers' generator, N blocks of RY + CNOT chain,
  trained alone from the seeded initial weights;
- `searched`: the generator a qnas search chose (configs/qt_digits10.yaml), fine-tuned;
- `human-ry_cnot-b4-trained-with-shots` (method `human_shots`): the 4-block generator
  trained on probabilities estimated from 20 x 2^n shots (seeded; gradients straight through);
- `human-ry_cnot-b4-noise-aware-E` (method `human_noise_aware`): the 4-block generator trained as
  above, then fine-tuned E epochs through fake_fez's noisy simulation (parameter shift for the
  angles, backprop for the mapping model, trajectories);
- `searched-refitN` (method `searched_refit`): the search again, each candidate scored after its
  mapping model alone is re-fitted N epochs (`search.head_refit_epochs`, `--head-refit-epochs`);
- `mapping-only`: the ablation, the mapping model trained as for `human` but fed the uniform
  distribution instead of a circuit's probabilities (every q_i = 0): what the mapping model
  makes of the weight indices alone, so the other rows' excess over it is the circuit's.
`--task qt_digits10_mlp` builds the rows for the MLP target (64 -> 32 -> 10, 2410 weights, 12 qubits);
`--mapping-hidden 12 12` another mapping model than the config's, `--set KEY=VALUE` any other
override (rows named by both, e.g. `human-ry_cnot-b8-map12x12`).
Every Quantum-Train row is scored four ways on the test set: exact probabilities,
probabilities from 20 x 2^n shots (seeded), the device's noise model (exact density
matrix on the config's device, qiskit's layout for the human generators), and the noise
model again after the mapping model alone is re-fitted (30 epochs) to the noisy
probabilities, the circuit untouched.

    python scripts/quantum_train_table.py --seeds 0 1 2 --out /work/runs/quantum_train
    python scripts/quantum_train_table.py --seeds 0 1 2 --methods searched_refit --out /work/runs/quantum_train
    python scripts/quantum_train_table.py --task qt_digits10_mlp --seeds 0 1 2 --methods classical human \
        --human-blocks 4 8 --out /work/runs/quantum_train
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from qnas.config import load_config
from qnas.devices import get_device
from qnas.evaluate import build_supercircuit, simulation_of
from qnas.evolution.genome import Genome
from qnas.noise import noisy_probabilities
from qnas.pipeline import _finetuned, load_candidate, score_genome
from qnas.results import RunDir
from qnas.tasks import task_from_config
from qnas.tasks.quantum_train import QuantumTrainTask, target_network
from qnas.train import train
from qnas.transpiled import transpile_candidate

ROOT = Path(__file__).resolve().parent.parent
CELLS = ROOT / "docs" / "cells" / "quantum_train.jsonl"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


def done(path: Path) -> dict[tuple, dict]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["task"], r["method"], r["seed"]): r for r in rows}


def append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def classical(config, epochs: int, lr: float, seed: int) -> dict:
    """The target network trained directly (Adam, cosine decay, the same batches and loss as Quantum-Train)."""
    task = task_from_config(config)
    torch.manual_seed(seed)
    net = target_network(task.target, task.n_features, task.n_classes).double()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * task.n_batches(32)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for x, y in task.batches(32, rng):
            optimizer.zero_grad()
            F.cross_entropy(net(x.double()), y, label_smoothing=task.label_smoothing).backward()
            optimizer.step()
            scheduler.step()
    with torch.no_grad():
        x, y = task.samples("test")
        accuracy = (net(x.double()).argmax(1) == y).double().mean().item()
    return {"trained_params": task.n_target, "test_accuracy": accuracy}


class MappingOnly(QuantumTrainTask):
    """The ablation: weights generated from the uniform distribution, whatever the circuit gives."""

    def generated_weights(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        return super().generated_weights(torch.full_like(probs, 2.0**-self.n_wires))


def mapping_only(config, seed: int) -> dict:
    """The mapping model trained alone (no circuit input), as the human rows are trained."""
    config = config.model_copy(deep=True)
    config.space.name, config.space.max_blocks = "ry_cnot", 1
    task = task_from_config(config)
    task = MappingOnly(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.init})
    sc = build_supercircuit(config, task)
    genes = sc.fixed_blocks(1)  # its angles get no gradient: the probabilities are replaced
    train(sc, task, config.finetune, lambda: genes, seed, progress=False)
    return {
        "trained_params": task.n_head_params,
        "circuit_params": 0,
        "test_accuracy": task.evaluate(sc.subcircuit(genes), "test")["accuracy"],
    }


def noisy_probabilities_of(config, task, sub, genome: Genome) -> np.ndarray:
    """The generator's outcome probabilities on the config's device (noise model, exact engine where it fits)."""
    device = get_device(config.device)
    search = config.search
    candidate = transpile_candidate(
        sub.to_qiskit(bound=True),
        device,
        genome.layout or None,
        search.optimization_level,
        config.seed,
        search.idle_noise,
    )
    (measured,) = task.measurement_circuits(candidate, device).values()
    return noisy_probabilities(
        measured, device, np.zeros((1, 0)), seed=config.seed, simulation=simulation_of(search)
    )[0]


def scored(config, task, sc, genome: Genome) -> dict:
    """Test accuracy from exact probabilities, from 20 x 2^n shots, on the device's noise model, and
    on the noise model after the mapping model alone is re-fitted to the device's probabilities."""
    sub = sc.subcircuit(genome.arch)
    shots = 20 * 2**task.n_wires
    with_shots = dataclasses.replace(task, shots=shots)
    t0 = time.perf_counter()
    noisy = score_genome(config, task, sc, genome, "test", noise_aware=True)
    probs = noisy_probabilities_of(config, task, sub, genome)
    refitted = sc.weights.detach().clone()
    refitted[list(sub.head)] = task.refit_head(sub, probs, epochs=30, seed=config.seed)
    refit_sub = dataclasses.replace(sub, weights=refitted)
    test = task.samples("test")
    refit_accuracy = task.bind(refit_sub).metrics_from_outputs(probs[None], test)["accuracy"]
    return {
        "trained_params": sub.n_params,
        "circuit_params": sub.n_params - task.n_head_params,
        "n_2q": noisy["n_2q"],
        "test_accuracy": task.evaluate(sub, "test")["accuracy"],
        "test_accuracy_shots": with_shots.evaluate(sub, "test")["accuracy"],
        "shots": shots,
        "test_accuracy_noisy": noisy["accuracy"],
        "test_accuracy_noisy_refit": refit_accuracy,
        "noisy_device": config.device,
        "seconds_noisy": time.perf_counter() - t0,
    }


def human(
    config,
    blocks: int,
    seed: int,
    train_shots: bool = False,
    noise_aware_epochs: int = 0,
    out: Path | None = None,
) -> dict:
    """The papers' generator trained alone; with `train_shots`, on probabilities from 20 x 2^n shots;
    with `noise_aware_epochs`, then fine-tuned that many epochs through the device's noisy simulation
    (parameter shift for the angles, backprop for the mapping; trajectories, batches of 64)."""
    human_config = config.model_copy(deep=True)
    human_config.space.name = "ry_cnot"
    human_config.space.max_blocks = max(blocks, 1)
    task = task_from_config(human_config)
    if train_shots:
        human_config.task.shots = 20 * 2**task.n_wires
        task = task_from_config(human_config)
    sc = build_supercircuit(human_config, task)
    genes = sc.fixed_blocks(blocks)
    ft = human_config.finetune
    train(sc, task, ft, lambda: genes, seed, progress=False)
    if noise_aware_epochs:
        assert out is not None, "noise-aware rows checkpoint their fine-tuning under --out"
        noisy = human_config.model_copy(deep=True)
        noisy.finetune = ft.model_copy(
            update={
                "noise_aware": True,
                "engine": "parameter_shift",
                "epochs": noise_aware_epochs,
                "batch_size": 64,
                "warmup_epochs": 0,
            }
        )
        noisy.search.noise_method = "trajectories"
        # The pipeline's own noise-aware fine-tuning, checkpointed per epoch under `out`.
        sc = _finetuned(noisy, out / "finetuned", task, sc, Genome((), tuple(genes)), progress=False)
    # Scored as the others are: exact, with shots, noisy (the shot setting is the training's alone).
    return scored(human_config, dataclasses.replace(task, shots=None), sc, Genome((), genes))


def searched(
    config_path: Path,
    task_name: str,
    seed: int,
    out: Path,
    workers: int,
    refit_epochs: int = 0,
    sets: Sequence[str] = (),
    tag: str = "",
) -> dict:
    """The generator a search chose; with `refit_epochs`, candidates ranked after a mapping-only re-fit.

    `sets`: config overrides beyond the task's name (its run folder is named by `tag`)."""
    prefix = (f"{task_name}-" if task_name != "qt_digits10" else "") + (f"{tag[1:]}-" if tag else "")
    run_dir = out / (prefix + (f"search-refit{refit_epochs}-s{seed}" if refit_epochs else f"search-s{seed}"))
    cmd = [sys.executable, "-m", "qnas.cli", "search", "--config", str(config_path), "--out", str(run_dir)]
    cmd += ["--quiet", "--workers", str(workers), "--set", f"seed={seed}", "--set", f"task.name={task_name}"]
    cmd += ["--set", f"search.head_refit_epochs={refit_epochs}"]
    for kv in sets:
        cmd += ["--set", kv]
    subprocess.run(cmd, check=True)
    config, task, sc, genome = load_candidate(RunDir(run_dir), "best")
    best = json.loads((run_dir / "best.json").read_text())
    row = scored(config, task, sc, genome)
    row.update(
        blocks=int(genome.arch[-1]), arch=list(genome.arch), run=str(run_dir), head_refit_epochs=refit_epochs
    )
    row["test_accuracy_reported"] = best["test"]["noiseless"]["accuracy"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "qt_digits10.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--human-blocks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--methods", nargs="+", default=["classical", "human", "searched"])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--task", help="the task instead of the config's (e.g. qt_digits10_mlp: the MLP target)"
    )
    parser.add_argument(
        "--noise-aware-epochs",
        type=int,
        default=30,
        help="human_noise_aware: epochs of noise-aware fine-tuning after the noiseless training",
    )
    parser.add_argument(
        "--head-refit-epochs",
        type=int,
        default=3,
        help="searched_refit: the search's search.head_refit_epochs (mapping-only re-fit before each score)",
    )
    parser.add_argument(
        "--mapping-hidden",
        type=int,
        nargs="+",
        metavar="WIDTH",
        help="the mapping model's hidden layer widths instead of the config's (rows named -mapWxW)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every row (e.g. space.max_blocks=2), rows named by it",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = [f"task.name={args.task}"] if args.task else []
    sets = list(args.set)
    if args.mapping_hidden:
        sets.insert(0, f"task.mapping_hidden={list(args.mapping_hidden)}")
    base = load_config(args.config, overrides + sets)
    task_name = base.task.name
    # The rows before 2026-12-05 standardized per tensor and trained on plain cross-entropy, and
    # are named without either: a config holding today's settings names its rows by them, as if
    # given by --set, so no later row shares an older row's name with another meaning.
    given = {kv.split("=", 1)[0] for kv in args.set}
    if "task.standardize" not in given and base.task.standardize in (None, "unit"):
        args.set.append("task.standardize=unit")
    if "task.label_smoothing" not in given and base.task.label_smoothing:
        args.set.append(f"task.label_smoothing={base.task.label_smoothing}")
    # Rows of another mapping model or config than the config's are named by what they use of
    # it: the classical network no mapping model, the human generators not the design space.
    mapping = "" if not args.mapping_hidden else "-map" + "x".join(map(str, args.mapping_hidden))
    tag = mapping + "".join(f"-{kv}" for kv in args.set)
    # What shapes the generator alone (design space, mapping model, standardization) does not
    # name the classical rows; what shapes the training (e.g. task.label_smoothing) does.
    generator_only = ("space.", "task.mapping", "task.standardize")
    others = "".join(f"-{kv}" for kv in args.set if not kv.startswith(generator_only))
    mapping += "".join(f"-{kv}" for kv in args.set if kv.startswith(("task.mapping", "task.standardize")))
    tags = {"classical": others, "human": mapping + others, "mapping": mapping + others}
    cells = done(CELLS)
    for seed in args.seeds:
        config = base.model_copy(deep=True)
        config.seed = seed
        jobs = []
        if "classical" in args.methods:
            jobs.append(("classical", lambda c=config, s=seed: classical(c, c.finetune.epochs, 1e-2, s)))
        if "human" in args.methods:
            for b in args.human_blocks:
                jobs.append((f"human-ry_cnot-b{b}", lambda b=b, c=config, s=seed: human(c, b, s)))
        if "mapping_only" in args.methods:
            jobs.append(("mapping-only", lambda c=config, s=seed: mapping_only(c, s)))
        if "human_shots" in args.methods:
            jobs.append(
                ("human-ry_cnot-b4-trained-with-shots", lambda c=config, s=seed: human(c, 4, s, True))
            )
        if "human_noise_aware" in args.methods:
            e = args.noise_aware_epochs
            jobs.append(
                (
                    f"human-ry_cnot-b4-noise-aware-{e}",
                    lambda c=config, s=seed, e=e: human(c, 4, s, noise_aware_epochs=e, out=args.out),
                )
            )
        if "searched" in args.methods:
            jobs.append(
                (
                    "searched",
                    lambda s=seed: searched(args.config, task_name, s, args.out, args.workers, 0, sets, tag),
                )
            )
        if "searched_refit" in args.methods:
            name = f"searched-refit{args.head_refit_epochs}"
            refit = args.head_refit_epochs
            jobs.append(
                (
                    name,
                    lambda s=seed, r=refit: searched(
                        args.config, task_name, s, args.out, args.workers, r, sets, tag
                    ),
                )
            )
        for method, job in jobs:
            method += tags.get(method.split("-")[0], tag)
            if (task_name, method, seed) in cells:
                continue
            t0 = time.perf_counter()
            row = {"task": config.task.name, "method": method, "seed": seed, **job()}
            row.update(seconds=time.perf_counter() - t0, date=str(datetime.date.today()), commit=commit())
            append(CELLS, row)
            cells[(task_name, method, seed)] = row
            print(json.dumps(row), flush=True)
    print(table(cells, task_name))


def table(cells: dict[tuple, dict], task_name: str) -> str:
    cells = {(m, s): r for (t, m, s), r in cells.items() if t == task_name}
    methods = sorted({m for m, _ in cells}, key=lambda m: (m != "classical", not m.startswith("searched"), m))
    lines = [
        f"{task_name}:",
        "| generator | trained params | test acc. | below the classical network (same loss), per seed | with 20x2^n shots "
        "| noisy | noisy, mapping re-fit | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]

    # The goal is read per seed: each row against the network trained directly on the same seed
    # with the same loss (a row's label smoothing, if any, names its classical row too).
    def direct(method: str) -> dict[int, float]:
        smoothing = [part for part in method.split("-") if part.startswith("task.label_smoothing=")]
        name = "-".join(["classical", *smoothing])
        return {s: r["test_accuracy"] for (m, s), r in cells.items() if m == name}

    def below(rows: list[dict]) -> str:
        same_loss = direct(rows[0]["method"])
        gaps = [100 * (same_loss[r["seed"]] - r["test_accuracy"]) for r in rows if r["seed"] in same_loss]
        if not gaps or rows[0]["method"].startswith("classical"):
            return "-"
        return f"{np.mean(gaps):.2f} ({min(gaps):.1f}-{max(gaps):.1f}, {len(gaps)} seeds)"

    def cell(rows: list[dict], key: str) -> str:
        values = [100 * r[key] for r in rows if key in r]
        if not values:
            return "-"
        return f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    for m in methods:
        rows = [r for (mm, _), r in sorted(cells.items()) if mm == m]
        params = sorted({r["trained_params"] for r in rows})
        p = str(params[0]) if len(params) == 1 else f"{params[0]}-{params[-1]}"
        lines.append(
            f"| {m} | {p} | {cell(rows, 'test_accuracy')} | {below(rows)} | {cell(rows, 'test_accuracy_shots')} | "
            f"{cell(rows, 'test_accuracy_noisy')} | {cell(rows, 'test_accuracy_noisy_refit')} | {len(rows)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
