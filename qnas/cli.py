"""The `qnas` command: parse, call, print. Bad input exits with status 2 and one line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

_EPILOG = (
    "Configs are YAML (see configs/); --set section.key=value overrides one entry, e.g. --set train.epochs=5."
)
_TRIAL_HELP = (
    "a candidate's id from the id column of `qnas pareto RUN` (or its first 4+ characters), "
    "'best' (the fine-tuned one, the default), or a trial number (Optuna's; differs after a resume)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qnas", description="Noise-aware quantum architecture search.", epilog=_EPILOG
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="YAML config (default: built-in defaults)")
        p.add_argument("--out", type=Path, required=True, help="run directory; an existing one is resumed")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    run_args(sub.add_parser("train", help="train the SuperCircuit into a run directory"))
    search = sub.add_parser("search", help="train, search, fine-tune and export, resumable")
    run_args(search)
    search.add_argument(
        "--workers", type=int, default=2, help="Ray workers; 0 evaluates in-process (default 2)"
    )
    search.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"), help="join this Ray cluster")
    search.add_argument("--storage", help="Optuna storage URL (default: a journal file in the run directory)")

    devices = sub.add_parser("devices", help="list devices with their qubits, basis gates and median errors")
    devices.add_argument("names", nargs="*", help="only these devices")
    snapshot = sub.add_parser(
        "snapshot", help="save a device's calibration to a file, usable later as a device"
    )
    snapshot.add_argument("device")
    snapshot.add_argument("path", type=Path)
    sub.add_parser("spaces", help="list the design spaces")
    sub.add_parser("tasks", help="list the tasks")

    pareto = sub.add_parser("pareto", help="print a run's Pareto front and write its plots")
    pareto.add_argument("run", type=Path)
    pareto.add_argument("--format", choices=("table", "csv", "json"), default="table")

    rescore = sub.add_parser(
        "rescore", help="score a run's front and finalists on another device or calibration snapshot"
    )
    rescore.add_argument("run", type=Path)
    rescore.add_argument("--device", required=True, help="a fake_* name, a snapshot file, or ibm_*")
    rescore.add_argument(
        "--finetuned",
        type=Path,
        help="folder of the fine-tuned checkpoints (default: RUN, where search keeps them)",
    )
    rescore.add_argument("--quiet", action="store_true", help="no progress bars")
    report = sub.add_parser(
        "report", help="write RUN/report.html: the front, the choice, the circuit, the device"
    )
    report.add_argument("run", type=Path)
    export = sub.add_parser("export", help="write a candidate as OpenQASM")
    export.add_argument("run", type=Path)
    export.add_argument("--trial", default="best", help=_TRIAL_HELP)
    export.add_argument("--format", choices=("qasm2", "qasm3"), default="qasm3")
    export.add_argument(
        "--transpiled", action="store_true", help="transpile for the device on the trial's layout"
    )
    export.add_argument("--device", help="device to transpile for (default: the run's)")
    export.add_argument("--out", type=Path, help="file to write (default: print)")
    export.add_argument(
        "--sample",
        type=int,
        help="bind the inputs to this test sample (QASM 2 needs it for a task with inputs)",
    )
    export.add_argument("--measure", action="store_true", help="add the readout's measurements")
    prune = sub.add_parser("prune", help="iteratively prune a candidate's gates (QuantumNAS) and export it")
    prune.add_argument("run", type=Path)
    prune.add_argument("--trial", default="best", help=_TRIAL_HELP)
    prune.add_argument("--ratio", type=float, required=True, help="fraction of angles to prune, in (0, 1)")
    prune.add_argument("--granularity", choices=("angle", "gate"), default="angle")
    prune.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs while the ratio ramps up")
    prune.add_argument("--lr", type=float, default=0.01)
    prune.add_argument("--format", choices=("qasm2", "qasm3"), default="qasm3")
    prune.add_argument(
        "--out", type=Path, help="file for the pruned circuit (default: RUN/exports/pruned-TRIAL.FMT)"
    )
    deploy = sub.add_parser(
        "deploy", help="run a candidate on a device through IBM Runtime (fake_* locally); resumable"
    )
    deploy.add_argument("run", type=Path)
    deploy.add_argument("--trial", default="best", help=_TRIAL_HELP)
    deploy.add_argument(
        "--device", required=True, help="fake_* (local testing mode), a snapshot file, or ibm_*"
    )
    deploy.add_argument("--shots", type=int, default=4000, help="shots per circuit (default 4000)")
    deploy.add_argument("--batch-size", type=int, default=64, help="test samples per job (default 64)")
    deploy.add_argument("--limit", type=int, help="only the first N test samples")
    deploy.add_argument(
        "--mitigation",
        default="none",
        choices=["none", "readout", "zne", "readout+zne"],
        help="readout: M3 with its calibration circuits; zne: zero-noise extrapolation by folding (scales 1, 3)",
    )
    deploy.add_argument(
        "--zne-scales",
        type=float,
        nargs="+",
        metavar="SCALE",
        help="the noise scales ZNE folds to and extrapolates from (from 1; default 1 3; a scale between odd "
        "ones folds that share of the two-qubit gates one by one, e.g. 1 2 for a deep circuit); with "
        "--primitive estimator, the runtime's noise factors",
    )
    deploy.add_argument(
        "--primitive",
        default="sampler",
        choices=["sampler", "estimator"],
        help="estimator (VQE): the runtime's Estimator measures the energy and does the mitigation "
        "(readout: TREX; zne: gate folding)",
    )
    deploy.add_argument(
        "--dd",
        action="store_true",
        help="dynamical decoupling: X-X pulse pairs in every active qubit's idle windows (the prediction "
        "scores the same circuits); the default follows the run's search.dynamical_decoupling",
    )
    deploy.add_argument(
        "--twirl",
        type=int,
        default=0,
        metavar="N",
        help="Pauli-twirl every two-qubit gate: N random copies of each circuit share its shots (N divides "
        "--shots; the runtime's twirling on a live device); default 0, off",
    )
    deploy.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, RuntimeError, yaml.YAMLError, *_BAD_PATHS) as err:
        # Bad input is raised as ValueError where it is found, naming the value; the others are
        # what escapes that: a file in the way of one to write, or one that cannot be read.
        print(f"qnas: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qnas: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `qnas tasks | head`: the reader left. Python's recipe: point stdout at devnull so
        # the interpreter's final flush does not raise again, and say nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


_BAD_PATHS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def _one_line(err: BaseException) -> str:
    """Return the error's message on one line: some libraries' messages span several."""
    return " ".join(str(err).split())


def _output_file(path: Path | None) -> None:
    """Refuse an --out that names a directory before any work (writing it later would fail)."""
    if path is not None and path.is_dir():
        raise ValueError(
            f"--out {path} is a directory; give a file name, e.g. --out {path / 'circuit.qasm3'}"
        )


def _train(args) -> int:
    from qnas.config import load_config
    from qnas.pipeline import run_train
    from qnas.results import RunDir

    config = load_config(args.config, args.overrides)
    task, sc = run_train(config, RunDir(args.out), progress=not args.quiet)
    largest = sc.subcircuit(sc.largest())
    print(f"trained SuperCircuit saved in {args.out}; largest subcircuit on valid: {task.evaluate(largest)}")
    return 0


def _search(args) -> int:
    from qnas.api import search
    from qnas.config import load_config

    config = load_config(args.config, args.overrides)
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    run = search(config, args.out, args.workers, args.ray_address, args.storage, not args.quiet)
    front = run.pareto_front
    print(
        f"Pareto front: {len(front)} of {len(run.candidates)} candidates; `qnas pareto {args.out}` shows it"
    )
    print(chosen_text(run.best, config, args.out))
    return 0


def chosen_text(best: dict, config, out: Path) -> str:
    """The end of a search, for a person: the chosen circuit, its scores, its files, what to run next."""
    test = best["test"]
    noisy = test["noisy"]
    lines = [
        f"chosen circuit: id {best.get('id', '?')} (trial {best['trial']}), {best['arch'][-1]} blocks, "
        f"layout {best['layout']}, {noisy.get('n_2q', '?')} two-qubit gates, depth {noisy.get('depth', '?')} "
        f"on {test['device']}",
        "  (fine-tuned finalists of every depth were compared on the validation set; see best.json)",
    ]
    metrics = [m for m in ("accuracy", "calibrated_loss", "loss", "energy") if m in test["noiseless"]]
    lines.append(f"  {config.task.name} {'test' if 'accuracy' in metrics else ''}".rstrip())
    lines.append(f"  {'':16s}{'noiseless':>12s}{'noisy (' + test['device'] + ')':>24s}")
    for m in metrics:
        a, b = test["noiseless"].get(m), noisy.get(m)
        shown = [f"{100 * v:.1f}%" if m == "accuracy" else f"{v:.4f}" for v in (a, b)]
        se = noisy.get(f"{m}_se")
        if se is not None:  # scored by trajectories
            shown[1] += f" ± {100 * se:.1f}" if m == "accuracy" else f" ± {se:.4f}"
        lines.append(f"  {m:16s}{shown[0]:>12s}{shown[1]:>24s}")
    exports = ", ".join(best.get("exports", {}).values())
    lines += [
        f"files: {out / 'best.json'}, {exports}, {out / 'pareto.html'}",
        f"next: qnas report {out} | qnas export {out} --format qasm3 | qnas deploy {out} --device {test['device']}",
    ]
    return "\n".join(lines)


def _devices(args) -> int:
    from qnas.devices import list_devices

    print(list_devices(args.names or None).to_string(index=False))
    return 0


def _snapshot(args) -> int:
    from qnas.devices import save_snapshot

    path = save_snapshot(args.device, args.path)
    print(f"saved the calibration of {args.device} to {path}; use it with --set device={path}")
    return 0


def _spaces(args) -> int:
    from qnas.space import available_spaces, load_space

    for name in available_spaces():
        space = load_space(name)
        layers = ", ".join(f"{ly.gate}({ly.pattern})" for ly in space.layers)
        print(f"{name:10s} up to {space.max_blocks} blocks of [{layers}]")
    return 0


def _tasks(args) -> int:
    import pandas as pd

    from qnas.tasks import available_tasks, describe_task

    print(pd.DataFrame([describe_task(name) for name in available_tasks()]).fillna("").to_string(index=False))
    return 0


def _pareto(args) -> int:
    import pandas as pd

    from qnas.results import RunDir, front_of, plot_front

    run = RunDir(args.run)
    config = run.load_config()
    if not run.candidates_parquet.exists():
        raise FileNotFoundError(f"{run.path} has no candidates table yet; run qnas search first")
    df = pd.read_parquet(run.candidates_parquet)
    objectives = config.search.objectives
    front = front_of(df, objectives)
    plot_front(df, front, objectives, run.path / "pareto.png", run.path / "pareto.html")
    cols = [
        c
        for c in ["id", "trial", "layout", "arch", *objectives, "n_2q", "depth", "success_probability"]
        if c in front
    ]
    cols = list(dict.fromkeys(cols))
    if args.format == "csv":
        print(front[cols].to_csv(index=False), end="")
    elif args.format == "json":
        print(front[cols].to_json(orient="records"))
    else:
        print(front[cols].to_string(index=False))
        print(f"plots: {run.path / 'pareto.png'}, {run.path / 'pareto.html'}", file=sys.stderr)
    return 0


def _rescore(args) -> int:
    from qnas.rescore import rescore, summary_text

    print(summary_text(rescore(args.run, args.device, not args.quiet, args.finetuned)))
    return 0


def _report(args) -> int:
    from qnas.report import write_report

    print(f"wrote {write_report(args.run)}")
    return 0


def _export(args) -> int:
    from qnas.api import load_run

    _output_file(args.out)
    text = load_run(args.run).export(
        args.trial, args.format, args.out, args.transpiled, args.device, args.sample, args.measure
    )
    print(f"wrote {text}" if args.out else text)
    return 0


def _prune(args) -> int:
    from qnas.executors import NoiselessExecutor
    from qnas.export import export_circuit
    from qnas.pipeline import candidate_label, load_candidate
    from qnas.prune import PruneSettings, iterative_prune
    from qnas.results import RunDir

    if not 0 < args.ratio < 1:
        raise ValueError(f"--ratio must be in (0, 1), got {args.ratio}")
    _output_file(args.out)
    run = RunDir(args.run)
    config, task, sc, genome = load_candidate(run, args.trial)
    sub = sc.subcircuit(genome.arch)
    settings = PruneSettings(args.epochs, lr=args.lr, granularity=args.granularity, seed=config.seed)
    result = iterative_prune(NoiselessExecutor(sub, task), task, args.ratio, settings)
    split = task.final_split
    before, after = task.evaluate(sub, split), task.evaluate(result.subcircuit, split)
    run.exports.mkdir(exist_ok=True)
    out = args.out or run.exports / f"pruned-{candidate_label(sc, genome, args.trial)}.{args.format}"
    export_circuit(result.subcircuit, task, args.format, out)
    print(
        f"pruned {int(result.pruned.sum())} of {len(result.pruned)} angles; gates {sub.n_gates()} -> "
        f"{result.subcircuit.n_gates()}"
    )
    print(f"{split}: before {before}\n{split}: after  {after}\nwrote {out}")
    return 0


def _deploy(args) -> int:
    from qnas.deploy import deploy, summary_text

    if args.primitive == "estimator":
        if args.twirl:
            raise ValueError(
                "--twirl applies to --primitive sampler; the runtime's Estimator runs the circuits as "
                "scored (TREX twirls the readout by itself)"
            )
        from qnas import estimate

        summary = estimate.estimate(
            args.run, args.trial, args.device, args.shots, args.mitigation, args.zne_scales
        )
        print(estimate.summary_text(summary))
        return 0
    summary = deploy(
        args.run,
        args.trial,
        args.device,
        args.shots,
        args.batch_size,
        not args.quiet,
        args.limit,
        mitigation=args.mitigation,
        decoupling=args.dd or None,
        twirls=args.twirl,
        **({"zne_scales": args.zne_scales} if args.zne_scales else {}),
    )
    print(summary_text(summary))
    return 0


_COMMANDS = {
    "prune": _prune,
    "deploy": _deploy,
    "train": _train,
    "search": _search,
    "devices": _devices,
    "snapshot": _snapshot,
    "spaces": _spaces,
    "tasks": _tasks,
    "pareto": _pareto,
    "export": _export,
    "report": _report,
    "rescore": _rescore,
}

if __name__ == "__main__":
    sys.exit(main())
