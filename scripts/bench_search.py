"""Candidates scored per second with 1 and with 2 Ray workers, measured in one run.

    python scripts/bench_search.py [--candidates 48] [--config configs/quickstart.yaml]

Scores the same random genomes (digits4 / u3cu3 on the config's device, noisy, exact)
through qnas's Ray evaluator pool, first with 1 worker, then with 2, and prints the
throughput of each and their ratio. Pool start-up (Ray workers building their evaluator,
noise model included) is timed apart from the scoring.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from qnas.config import load_config
from qnas.devices import get_device
from qnas.evaluate import CandidateEvaluator, evaluator_payload
from qnas.parallel import EvaluatorPool
from qnas.pipeline import check_config, genome_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--candidates", type=int, default=48)
    args = parser.parse_args()
    config = load_config(args.config)
    task, sc = check_config(config)
    space = genome_space(config, sc, get_device(config.device))
    rng = np.random.default_rng(config.seed)
    genomes = [space.sample(rng) for _ in range(args.candidates)]
    payload = evaluator_payload(config, sc, task)
    rates = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        with EvaluatorPool(CandidateEvaluator, payload, workers=workers) as pool:
            # one candidate per worker first, so start-up (imports, noise model) is not counted as scoring
            list(pool.evaluate([(f"warm{i}", genomes[i]) for i in range(workers)]))
            t1 = time.perf_counter()
            results = list(pool.evaluate(list(enumerate(genomes))))
            t2 = time.perf_counter()
        failed = [r["error"] for _, r in results if "error" in r]
        if failed:
            raise SystemExit(f"{len(failed)} candidates failed, first: {failed[0]}")
        rates[workers] = len(genomes) / (t2 - t1)
        print(
            f"{workers} worker(s): start-up {t1 - t0:.1f} s, {len(genomes)} candidates in {t2 - t1:.1f} s "
            f"= {rates[workers]:.2f} candidates/s"
        )
    print(f"speed-up with 2 workers: {rates[2] / rates[1]:.2f}x (goal >= 1.7x on 2 cores)")


if __name__ == "__main__":
    main()
