"""Tasks by name: image classification on 4 qubits and molecular VQE."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np

from qnas.tasks.base import Task
from qnas.tasks.classification import ClassificationTask, as_tensors, select_classes, split_dataset
from qnas.tasks.datasets import load_digits_4x4, load_image_set, pool_to_4x4
from qnas.tasks.vqe import DATA_DIR, VQETask, load_vqe_task

if TYPE_CHECKING:
    from qnas.config import Config

# name -> (data set, classes)
_CLASSIFICATION = {
    "digits4": ("digits", (0, 1, 2, 3)),
    "digits2": ("digits", (3, 6)),
    "mnist4": ("mnist", (0, 1, 2, 3)),
    "mnist2": ("mnist", (3, 6)),
    "fashion4": ("fashion", (0, 1, 2, 3)),
    "fashion2": ("fashion", (3, 6)),
}


def available_tasks() -> list[str]:
    """Every task name get_task accepts."""
    return sorted([*_CLASSIFICATION, *(p.stem for p in DATA_DIR.glob("*.json"))])


def get_task(name: str, seed: int = 0, max_train: int | None = None, logit_scale: float = 1.0) -> Task:
    """Return the task called `name`; the data split is drawn with `seed`.

    `logit_scale` multiplies the <Z> readout of classification tasks (no effect on VQE).
    """
    if name in _CLASSIFICATION:
        source, classes = _CLASSIFICATION[name]
        if source == "digits":
            features, labels = load_digits_4x4()
            splits = split_dataset(features, labels, classes, seed)
        else:
            splits = _image_splits(source, classes, seed, max_train)
        return ClassificationTask(name, classes, splits, logit_scale=logit_scale)
    if (DATA_DIR / f"{name}.json").exists():
        return load_vqe_task(name)
    known = available_tasks()
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(f"unknown task {name!r}{hint}; allowed: {', '.join(known)}")


def task_from_config(config: Config) -> Task:
    """The task of a run's config, its data split drawn with the run's seed."""
    t = config.task
    return get_task(t.name, seed=config.seed, max_train=t.max_train, logit_scale=t.logit_scale)


def _image_splits(
    source: str, classes: tuple[int, ...], seed: int, max_train: int | None
) -> dict[str, tuple]:
    """MNIST-style task: 28x28 center-cropped to 24x24 and pooled to 4x4 (QuantumNAS); the test set kept apart."""
    data = load_image_set(source)
    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(np.isin(y_train, classes))
    if max_train is not None and len(keep) > max_train:
        keep = np.sort(rng.choice(keep, max_train, replace=False))
    splits = split_dataset(pool_to_4x4(x_train[keep], crop=24), y_train[keep], classes, seed, test=0.0)
    test_keep = np.isin(y_test, classes)
    splits["test"] = as_tensors(
        *select_classes(pool_to_4x4(x_test[test_keep], crop=24), y_test[test_keep], classes)
    )
    return splits


__all__ = ["ClassificationTask", "Task", "VQETask", "available_tasks", "get_task", "task_from_config"]
