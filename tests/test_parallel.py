"""The Ray evaluator pool on a real local Ray instance and a real 2-node local cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import torch

from qnas.parallel import EvaluatorPool

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray workers cannot import this test module (pytest puts tests/ on the driver's path
# only), so the toy evaluator travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class ToyEvaluator:
    """Scores an integer item with a weight tensor; some items misbehave on purpose."""

    def __init__(self, weights: torch.Tensor, offset: float, marker_dir: str) -> None:
        self.weights = weights
        self.offset = offset
        self.marker_dir = Path(marker_dir)
        # One file per construction: the test counts how often the payload was used to build.
        (self.marker_dir / f"built-{os.getpid()}-{uuid.uuid4().hex}").touch()

    def evaluate(self, item: object) -> dict:
        """Return the score of `item` and where it was computed."""
        if item == "raise":
            raise ValueError("bad item")
        if item == "die-always":
            os._exit(1)
        if item == "die-once":
            marker = self.marker_dir / "died"
            if not marker.exists():
                marker.touch()
                os._exit(1)
            item = 7
        return {
            "value": float(self.weights.sum()) * item + self.offset,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "threads": torch.get_num_threads(),
        }


def payload(marker_dir: Path) -> dict:
    return {"weights": torch.arange(1000, dtype=torch.float64), "offset": 0.5, "marker_dir": str(marker_dir)}


def constructions(marker_dir: Path) -> int:
    return len(list(marker_dir.glob("built-*")))


def expected(item: int) -> float:
    return float(torch.arange(1000, dtype=torch.float64).sum()) * item + 0.5


def test_in_process_needs_no_ray(tmp_path: Path) -> None:
    assert not ray.is_initialized()
    with EvaluatorPool(ToyEvaluator, payload(tmp_path), workers=0) as pool:
        results = dict(pool.evaluate([("a", 1), ("b", "raise"), ("c", 3)]))
    assert not ray.is_initialized()
    assert results["a"]["value"] == expected(1)
    assert results["c"]["value"] == expected(3)
    assert results["b"]["error"] == "ValueError: bad item"
    assert constructions(tmp_path) == 1


def test_pool_starts_and_stops_its_own_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    items = [(i, i) for i in range(6)]
    with EvaluatorPool(ToyEvaluator, payload(tmp_path), workers=1) as pool:
        assert ray.is_initialized()
        results = dict(pool.evaluate(items))
    assert not ray.is_initialized()
    assert {key: result["value"] for key, result in results.items()} == {i: expected(i) for i in range(6)}
    assert {result["threads"] for result in results.values()} == {1}
    assert constructions(tmp_path) == 1


class TestOnSharedLocalRay:
    """Pools on one local Ray instance the tests start, so each pool pays no Ray startup."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def local_ray(cls) -> Iterator[None]:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()

    def test_two_workers_match_in_process_and_build_once_each(self, tmp_path: Path) -> None:
        items = [(f"item{i}", i) for i in range(12)]
        local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
        local_dir.mkdir()
        ray_dir.mkdir()
        with EvaluatorPool(ToyEvaluator, payload(local_dir), workers=0) as pool:
            in_process = dict(pool.evaluate(items))
        with EvaluatorPool(ToyEvaluator, payload(ray_dir), workers=2) as pool:
            arrived = list(pool.evaluate(items))
        assert ray.is_initialized(), "a pool must not shut down a Ray it did not start"
        assert sorted(key for key, _ in arrived) == sorted(key for key, _ in items)
        assert {key: result["value"] for key, result in arrived} == {
            key: result["value"] for key, result in in_process.items()
        }
        assert len({result["pid"] for _, result in arrived}) == 2, "both workers should take items"
        # The payload built one evaluator per worker, not one per item.
        assert constructions(ray_dir) == 2

    def test_raising_item_is_reported_and_others_finish(self, tmp_path: Path) -> None:
        items = [(0, 0), (1, "raise"), (2, 2), (3, 3)]
        with EvaluatorPool(ToyEvaluator, payload(tmp_path), workers=2) as pool:
            results = dict(pool.evaluate(items))
        assert results[1]["error"] == "ValueError: bad item"
        assert "Traceback" in results[1]["traceback"]
        assert [results[key]["value"] for key in (0, 2, 3)] == [expected(0), expected(2), expected(3)]
        assert constructions(tmp_path) == 2

    def test_dead_worker_is_replaced_and_its_item_retried_once(self, tmp_path: Path) -> None:
        items = [(0, 0), ("doomed", "die-once"), (2, 2), (3, 3), (4, 4)]
        with EvaluatorPool(ToyEvaluator, payload(tmp_path), workers=2, max_retries=2) as pool:
            arrived = list(pool.evaluate(items))
        counts = Counter(key for key, _ in arrived)
        assert counts == Counter(key for key, _ in items), "every item exactly once"
        results = dict(arrived)
        assert results["doomed"]["value"] == expected(7)
        assert all("error" not in result for result in results.values())
        # Two workers plus the one replacement.
        assert constructions(tmp_path) == 3

    def test_item_that_always_kills_its_worker_fails_after_retries(self, tmp_path: Path) -> None:
        items = [(0, 0), ("killer", "die-always"), (2, 2)]
        with EvaluatorPool(ToyEvaluator, payload(tmp_path), workers=2, max_retries=1) as pool:
            arrived = list(pool.evaluate(items))
            # The pool is whole again afterwards.
            again = dict(pool.evaluate([(5, 5), (6, 6)]))
        results = dict(arrived)
        assert len(arrived) == 3
        assert results["killer"]["error"].startswith("worker died: ")
        assert results[0]["value"] == expected(0) and results[2]["value"] == expected(2)
        assert again[5]["value"] == expected(5) and again[6]["value"] == expected(6)
        # Two workers plus one replacement per death (first try and one retry).
        assert constructions(tmp_path) == 4

    def test_factory_error_is_raised_at_construction(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError, match=r"(?s)could not build its evaluator.*marker_dir"):
            EvaluatorPool(ToyEvaluator, {"weights": torch.zeros(1), "offset": 0.0}, workers=1)


def drive_cluster(address: str, marker_dir: str) -> dict:
    """Return the pool's results on the cluster at `address` and the cluster's live node count."""
    with EvaluatorPool(ToyEvaluator, payload(Path(marker_dir)), workers=2, address=address) as pool:
        results = dict(pool.evaluate([(i, i) for i in range(6)]))
        nodes = sum(node["Alive"] for node in ray.nodes())
    return {"results": results, "nodes": nodes, "still_initialised": ray.is_initialized()}


@pytest.mark.cluster
def test_two_node_cluster_through_address(tmp_path: Path, two_node_cluster) -> None:
    address, env = two_node_cluster
    # The driver runs in its own process, as `qnas --ray-address` would, so this
    # process's Ray state cannot leak into it. Each node has one CPU, so the pool's
    # two one-CPU workers can only both start once the second node has joined.
    driver = subprocess.run(
        [sys.executable, __file__, address, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    report = json.loads(driver.stdout.strip().splitlines()[-1])
    assert report["nodes"] == 2
    assert not report["still_initialised"], "the pool connected, so it must disconnect"
    values = {int(key): result["value"] for key, result in report["results"].items()}
    assert values == {i: expected(i) for i in range(6)}
    assert len({result["node"] for result in report["results"].values()}) == 2, "both nodes should evaluate"
    assert constructions(tmp_path) == 2


if __name__ == "__main__":
    print(json.dumps(drive_cluster(sys.argv[1], sys.argv[2])))
