"""Benchmark noisy scoring as circuits widen: qnas exact and trajectories against qiskit-aer, side by side.

For each width n (a digits-style circuit: the ryzxy encoder and u3cu3 blocks on n
logical qubits, placed on a connected chain of fake_fez, 100 samples), in a fresh
process per cell so that peak memory (max RSS) is the cell's own:

- qnas exact (density matrices) against qiskit-aer's density-matrix method with
  parameter_binds in one call on the restricted noise model (the fairest Aer use);
- qnas trajectories against qiskit-aer's statevector method with the same noise model
  (Aer samples one trajectory per shot), at matched standard error: Aer gets the shots
  per sample whose multinomial error alone, sqrt(p (1 - p) / shots), equals the standard
  error of qnas's trajectory estimate (a bound that favours Aer, whose trajectories add
  their own spread).

    python scripts/bench_scale.py [--sizes 4 6 8 10 12] [--blocks 2] [--samples 100] [--trajectories 32]
                                  [--engines exact trajectories] [--timeout 900]

Prints one row per (n, method): seconds, peak MB, and the ratios. One core per process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

EXACT_LIMIT = 10  # qnas exact beyond this needs > 2 GiB per sample's density matrix pair
AER_DENSITY_LIMIT = 10


def _cell(n: int, blocks: int, method: str, samples: int, trajectories: int, aer_shots: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from qiskit_aer import AerSimulator

    from qnas import noise_model
    from qnas.aer_sim import _with_idle_errors
    from qnas.devices import get_device
    from qnas.evaluate import input_values
    from qnas.noise import Simulation, noisy_probability_groups
    from qnas.space import load_space
    from qnas.supercircuit import SuperCircuit
    from qnas.tasks.encoders import get_encoder
    from qnas.transpiled import transpile_candidate

    device = get_device("fake_fez")
    _ = device.noise_model  # built once per process; not part of a candidate's cost

    def candidate_of(seed: int):
        sc = SuperCircuit(load_space("u3cu3"), n, blocks, seed=seed)
        circuit = sc.subcircuit(sc.largest()).to_qiskit(
            bound=True, encoder=get_encoder("ryzxy", n), n_inputs=4 * n
        )
        # A chain of fake_fez: qubits 0..15 are connected in a line on its heavy-hex lattice.
        return transpile_candidate(circuit, device, tuple(range(n)), 2, 0, idle_noise=True)

    def score(candidate, values, out: dict) -> None:
        if method == "qnas_exact":
            simulation = Simulation(method="exact", memory_budget=8 << 30)
            noisy_probability_groups(candidate, device, values, simulation=simulation)
        elif method == "qnas_trajectories":
            simulation = Simulation(method="trajectories", trajectories=trajectories)
            groups = noisy_probability_groups(candidate, device, values, simulation=simulation)
            mean = groups.mean(0)
            se = groups.std(0, ddof=1) / np.sqrt(len(groups))
            # The shots whose multinomial error alone matches this standard error, on average.
            out["matched_shots"] = int(np.ceil(np.mean(np.sqrt(mean * (1 - mean))) ** 2 / np.mean(se) ** 2))
        else:
            model = noise_model.restrict_noise_model(device, candidate.active_qubits)
            qc = _with_idle_errors(candidate, device)
            binds = [{p: values[:, j] for j, p in enumerate(qc.parameters)}]
            if method == "aer_density":
                qc.save_probabilities(candidate.measured_local_qubits)
                sim = AerSimulator(method="density_matrix", noise_model=model, max_parallel_threads=1)
                sim.run(qc, parameter_binds=binds).result()
            else:
                qc.measure_all()
                sim = AerSimulator(
                    method="statevector", noise_model=model, max_parallel_threads=1, seed_simulator=0
                )
                sim.run(qc, parameter_binds=binds, shots=aer_shots).result()
                out["shots"] = aer_shots

    def features(candidate, k: int):
        x = np.random.default_rng(0).uniform(0, np.pi, (k, 4 * n))
        return input_values(candidate.circuit, torch.as_tensor(x))

    # Warm-up on another candidate (other weights, same gates and qubits), as in a search after
    # its first few candidates: the device's error channels are built once per process.
    warm = candidate_of(1)
    score(warm, features(warm, 2), {})
    candidate = candidate_of(0)
    values = features(candidate, samples)
    out: dict = {"n": n, "active": len(candidate.active_qubits), "n_2q": candidate.n_2q, "method": method}
    start = time.perf_counter()
    score(candidate, values, out)
    out["seconds"] = time.perf_counter() - start
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _run(n: int, blocks: int, method: str, args, aer_shots: int = 0) -> dict:
    command = [sys.executable, __file__, "--cell", str(n), str(blocks), method, str(aer_shots)]
    command += ["--samples", str(args.samples), "--trajectories", str(args.trajectories)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"n": n, "method": method, "seconds": float("inf"), "note": f"> {args.timeout} s"}
    if done.returncode != 0:
        return {
            "n": n,
            "method": method,
            "seconds": float("nan"),
            "note": done.stderr.strip().splitlines()[-1][:80],
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10, 12])
    parser.add_argument("--blocks", type=int, nargs="+", default=[2])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--trajectories", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["exact", "trajectories"],
        default=["exact", "trajectories"],
        help="which pairs to run: qnas exact vs Aer's density matrices, qnas trajectories vs Aer's statevector",
    )
    parser.add_argument("--cell", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        n, blocks, method, shots = args.cell
        print(json.dumps(_cell(int(n), int(blocks), method, args.samples, args.trajectories, int(shots))))
        return
    print(
        f"fake_fez, ryzxy + u3cu3, {args.samples} samples, {args.trajectories} trajectories per sample, one core"
    )
    print(f"{'n':>3} {'blk':>3} {'active':>6} {'2q':>4}  {'method':18s} {'seconds':>9} {'peak MB':>8}  ratio")
    for blocks in args.blocks:
        for n in args.sizes:
            rows = []
            if "exact" in args.engines and n <= EXACT_LIMIT:
                rows.append(_run(n, blocks, "qnas_exact", args))
            if "exact" in args.engines and n <= AER_DENSITY_LIMIT:
                rows.append(_run(n, blocks, "aer_density", args))
            traj: dict = {}
            if "trajectories" in args.engines:
                traj = _run(n, blocks, "qnas_trajectories", args)
                rows.append(traj)
            if "matched_shots" in traj:
                rows.append(_run(n, blocks, "aer_statevector", args, traj["matched_shots"]))
            for r in rows:  # a timed-out cell still names its circuit
                r.setdefault("active", traj.get("active", "?"))
                r.setdefault("n_2q", traj.get("n_2q", "?"))
            by = {r["method"]: r for r in rows}
            for r in rows:
                ratio = ""
                # A timed-out cell took more than the timeout: its ratio is a lower bound.
                bound = ">" if not np.isfinite(r["seconds"]) else ""
                seconds = args.timeout if bound else r["seconds"]
                if r["method"] == "aer_density" and "qnas_exact" in by:
                    ratio = f"{bound}{seconds / by['qnas_exact']['seconds']:.1f}x qnas exact"
                if r["method"] == "aer_statevector":
                    shots = traj["matched_shots"]
                    ratio = (
                        f"{bound}{seconds / traj['seconds']:.1f}x qnas trajectories ({shots} shots/sample)"
                    )
                print(
                    f"{n:3d} {blocks:3d} {r.get('active', '?'):>6} {r.get('n_2q', '?'):>4}  {r['method']:18s} "
                    f"{r['seconds']:9.2f} {r.get('peak_mb', float('nan')):8.0f}  {ratio or r.get('note', '')}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
