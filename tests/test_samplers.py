"""Optuna's samplers as search strategies: legal proposals, learning from history, exact replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qnas
from qnas.evolution.genome import GenomeSpace
from qnas.evolution.samplers import SAMPLERS, legal, propose

CONFIG = Path(__file__).with_name("tiny_search.yaml")

SPACE = GenomeSpace(
    n_logical=3,
    n_physical=7,
    arch_choices=((1, 2, 3), (2, 4), (1, 2)),
    coupling=((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)),
)


def test_a_samplers_params_become_a_legal_connected_genome():
    rng = np.random.default_rng(0)
    genome = legal(
        SPACE, {"layout_0": 0, "layout_1": 0, "layout_2": 6, "arch_0": 3, "arch_1": 3, "arch_2": 1}, rng
    )
    assert genome.layout[0] == 0 and len(set(genome.layout)) == 3
    # each qubit is coupled to one before it
    assert all(
        any(q in SPACE.neighbors[p] for p in genome.layout[:i]) for i, q in enumerate(genome.layout) if i
    )
    assert genome.arch[0] == 3 and genome.arch[1] in (2, 4) and genome.arch[2] == 1


def _records(n: int, generation: int = 0) -> list[dict]:
    # Objective: minimise the first arch gene; the sampler should learn to propose small ones.
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        g = SPACE.sample(rng)
        out.append(
            {
                "generation": generation,
                "layout": list(g.layout),
                "arch": list(g.arch),
                "values": [float(g.arch[0])],
                "number": i,
            }
        )
    return out


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_proposes_the_same_generation_from_the_same_history(sampler):
    history = _records(12)
    first = propose(sampler, history, SPACE, ["minimize"], 1, 6, seed=3)
    again = propose(sampler, history, SPACE, ["minimize"], 1, 6, seed=3)
    assert [g for g, _ in first] == [g for g, _ in again]
    # Candidates of the generation being proposed (or later) are not shown to the sampler.
    late = [*history, *_records(5, generation=1)]
    assert [g for g, _ in propose(sampler, late, SPACE, ["minimize"], 1, 6, seed=3)] == [g for g, _ in first]


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_a_batch_of_proposals_is_not_one_point_repeated(sampler):
    proposed = [g for g, _ in propose(sampler, _records(12), SPACE, ["minimize"], 1, 8, seed=0)]
    assert len(set(proposed)) >= 6


def test_tpe_learns_from_its_history():
    history = _records(30)
    proposed = [g for g, _ in propose("tpe", history, SPACE, ["minimize"], 1, 30, seed=0)]
    mean_history = np.mean([r["arch"][0] for r in history])
    assert np.mean([g.arch[0] for g in proposed]) < mean_history


def test_nsga2_counts_qnas_generations_as_its_own():
    whole = qnas.search(CONFIG, progress=False, search__strategy="nsga2")
    later = whole.candidates[whole.candidates["generation"] > 0]
    marked = later["sampler_attrs"].map(lambda attrs: json.loads(attrs)["NSGAIISampler:generation"])
    assert len(later) and (marked == later["generation"]).all()


def test_a_sampler_search_killed_and_resumed_scores_what_an_uninterrupted_one_scores(tmp_path):
    strategy = "tpe"
    whole = qnas.search(CONFIG, out=tmp_path / "whole", progress=False, search__strategy=strategy)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "qnas.cli", "search", "--config", str(CONFIG), "--out", str(out), "--quiet"]
    cmd += ["--workers", "0", "--set", f"search.strategy={strategy}"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline:  # killed inside generation 1 or 2 (generation 0 has 6 candidates)
        if (out / "candidates.csv").exists() and len(pd.read_csv(out / "candidates.csv")) >= 8:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    resumed = pd.read_csv(out / "candidates.csv")
    assert resumed["id"].is_unique
    assert sorted(resumed["id"]) == sorted(whole.candidates["id"])
    assert whole.candidates["generation"].max() == 2
    assert whole.candidates["sampler_attrs"].notna().any()
