"""Data re-uploading (`task.reupload`): the encoder again before every block after the first."""

import pytest
import torch

from qnas.config import Config
from qnas.evaluate import build_supercircuit
from qnas.sim import run
from qnas.tasks import task_from_config


def _built(**task):
    config = Config.model_validate(
        {"task": {"name": "digits4", "reupload": True, **task}, "space": {"max_blocks": 3}}
    )
    task = task_from_config(config)
    return config, task, build_supercircuit(config, task)


def test_every_block_after_the_first_reads_the_data_again():
    _, task, sc = _built()
    sub = sc.subcircuit(sc.fixed_blocks(3))
    inputs = [i for i, ly in enumerate(sub.layers) if ly.source == "input"]
    assert len(inputs) == 2 * len(task.encoder)  # before blocks 2 and 3; block 1 follows the task's own
    x = task.samples("valid", 8)[0].double()
    # The state is the encoder, block 1, the encoder, block 2, ...: built by hand from the same layers.
    blocks = [ly for ly in sub.layers if ly.source != "input"]
    per_block = len(blocks) // 3
    by_hand = [*task.encoder]
    for b in range(3):
        by_hand += ([*task.encoder] if b else []) + blocks[b * per_block : (b + 1) * per_block]
    expected = run(by_hand, task.n_wires, weights=sub.weights, inputs=x, dtype=torch.complex128)
    assert torch.allclose(task.state(sub, x, torch.complex128), expected)
    plain = task.state(_built(reupload=False)[2].subcircuit(sc.fixed_blocks(3)), x, torch.complex128)
    assert not torch.allclose(plain, expected)  # re-uploading changes the circuit


def test_the_transpiled_circuit_reads_the_data_where_the_simulator_does(assert_device_path_matches_simulator):
    """Through qiskit and the device path (noise off), the outputs are the torch simulator's."""
    _, task, sc = _built()
    sub = sc.subcircuit(sc.fixed_blocks(2))
    assert_device_path_matches_simulator(sub, task, task.samples("valid", 6))


def test_a_task_without_data_refuses_reupload():
    with pytest.raises(ValueError, match="only a classifier encodes data"):
        task_from_config(Config.model_validate({"task": {"name": "h2", "reupload": True}}))
