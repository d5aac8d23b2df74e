"""Shared fixtures: a real 2-node local Ray cluster for the tests that join one by address."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Ray must not try to phone home from tests (no internet here, and none wanted in CI).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cluster_env() -> dict[str, str]:
    """Return an environment for every process of the test cluster, driver included.

    Ray enables token authentication for clusters once a token exists, and a driver
    joining by explicit address must opt in itself; a token of the test's own keeps the
    cluster, the driver and ~/.ray in agreement whatever earlier tests did.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    return env


def start_node(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Return a `ray start --block` process leading its own process group, so it can be ended by group."""
    ray_cli = Path(sys.executable).with_name("ray")
    command = [str(ray_cli), "start", "--block", "--num-cpus=1", *arguments]
    with log.open("w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.5)


def stop_node(node: subprocess.Popen) -> None:
    """End the node's whole process group (GCS, raylet, workers) and nothing else on the machine."""
    # SIGKILL, as `ray stop --force` does: on SIGTERM a node drains for up to 30 s first.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=15)
    wait_for(lambda: not group_alive(node.pid), 15, f"process group {node.pid} to end")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node (one CPU each) on loopback: yields (address, env for drivers)."""
    port, dashboard_port = free_port(), free_port()
    env = cluster_env()
    # A short private temp dir: Ray's unix sockets live under it (path length limit),
    # and other Ray users on this machine must not discover this cluster.
    temp_dir = tempfile.mkdtemp(prefix="qnas-ray-", dir="/tmp")
    nodes: list[subprocess.Popen] = []
    try:
        head = ["--head", f"--port={port}", f"--dashboard-port={dashboard_port}", f"--temp-dir={temp_dir}"]
        nodes.append(start_node([*head, "--include-dashboard=false"], env, tmp_path / "head.log"))
        wait_for(lambda: (Path(temp_dir) / "ray_current_cluster").exists(), 60, "the head node")
        nodes.append(start_node([f"--address=127.0.0.1:{port}"], env, tmp_path / "worker.log"))
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def assert_device_path_matches_simulator() -> Callable:
    """Check a subcircuit's outputs through qiskit and the device path (fake_quito, noise off) against torch's."""

    def check(sub, task, batch) -> None:
        import torch

        from qnas.devices import get_device
        from qnas.executors import NoiselessExecutor, NoisyExecutor, parameters_of

        theta = parameters_of(sub)[None]
        exact = NoiselessExecutor(sub, task, torch.complex128).outputs(theta, batch)
        device = get_device("fake_quito")
        placed = NoisyExecutor(sub, task, device, noiseless=True, idle_noise=False).outputs(theta, batch)
        assert torch.allclose(exact.double(), placed, atol=1e-6)

    return check
