"""Amplitude encoding (qnas.tasks.amplitude): features are the state's amplitudes."""

import numpy as np
import pytest
import torch

from qnas.config import Config
from qnas.evaluate import build_supercircuit
from qnas.sim import run
from qnas.tasks import get_task, task_from_config
from qnas.tasks.amplitude import amplitude_encoder, prepare
from qnas.tasks.datasets import load_digits_4x4


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_the_prepared_state_has_the_features_as_amplitudes(n):
    rng = np.random.default_rng(n)
    x = rng.random((5, 2**n))
    x[0] = 0.0
    x[0, -1] = 2.0  # one basis state alone: |1...1>
    state = run(amplitude_encoder(n), n, inputs=torch.tensor(prepare(x, n)), dtype=torch.complex128)
    assert np.allclose(state.numpy(), x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-12)
    ry = sum(ly.gate == "ry" for ly in amplitude_encoder(n))
    cx = sum(ly.gate == "cx" for ly in amplitude_encoder(n))
    assert (ry, cx) == (2**n - 1, 2**n - 2 if n > 1 else 0)


def test_digits4_images_are_encoded_as_their_normalized_pixels():
    task = get_task("digits4", encoder="amplitude")
    assert task.n_inputs == 15
    pixels, _ = load_digits_4x4()
    state = run(
        task.encoder, task.n_wires, inputs=task.samples("test", 4)[0].double(), dtype=torch.complex128
    )
    norms = np.sort(np.abs(state.numpy()), axis=1)
    assert np.allclose(np.linalg.norm(state.numpy(), axis=1), 1)
    # Every row is some image's normalized pixels (the split shuffles which).
    images = np.sort(pixels / np.linalg.norm(pixels, axis=1, keepdims=True), axis=1)
    for row in norms:
        assert np.abs(images - row).max(axis=1).min() < 1e-6


def test_the_transpiled_circuit_prepares_the_same_state(assert_device_path_matches_simulator):
    config = Config.model_validate(
        {"task": {"name": "digits4", "encoder": "amplitude"}, "space": {"max_blocks": 1}}
    )
    task = task_from_config(config)
    sc = build_supercircuit(config, task)
    sub = sc.subcircuit(sc.fixed_blocks(1))
    assert_device_path_matches_simulator(sub, task, task.samples("valid", 5))


def test_where_it_does_not_fit_the_error_says_so():
    with pytest.raises(ValueError, match="reads 1024 features; the samples have 64"):
        get_task("digits10", encoder="amplitude")
    with pytest.raises(ValueError, match="non-negative"):
        prepare(-np.ones((1, 4)), 2)
    with pytest.raises(ValueError, match="search among angle encoders"):
        task_from_config(Config.model_validate({"search": {"encoders": ["ry", "amplitude"]}}))
