"""Tasks by name: image classification, molecular VQE, and the tasks a user registers."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from qnas import registry
from qnas.tasks.base import Task
from qnas.tasks.classification import (
    ClassificationTask,
    as_tensors,
    reduce_features,
    select_classes,
    split_dataset,
)
from qnas.tasks.custom import classification_task, vqe_task
from qnas.tasks.datasets import data_dir, load_digits_4x4, load_digits_8x8, load_image_set, pool_images
from qnas.tasks.encoders import (
    DEFAULT_ENCODER,
    FEATURE_MAPS,
    available_encoders,
    get_encoder,
    n_features_read,
)
from qnas.tasks.quantum_train import QuantumTrainTask
from qnas.tasks.spin_chains import SPIN_CHAINS, parse_chain, spin_chain_task
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
    # All 10 classes on 10 qubits (QuantumNAS, Elivagar): 8x8 images, PCA to what the encoder reads.
    "digits10": ("digits", tuple(range(10))),
    "mnist10": ("mnist", tuple(range(10))),
    "fashion10": ("fashion", tuple(range(10))),
}
_WIDE = {"digits10", "mnist10", "fashion10"}
# Quantum-Train (qnas.tasks.quantum_train): name -> the target network trained on digits10's 8x8 images.
_QUANTUM_TRAIN = {"qt_digits10": "cnn", "qt_digits10_mlp": "mlp"}
QUANTUM_TRAIN_TASKS = tuple(_QUANTUM_TRAIN)
_WIDE_ENCODER = "ryzxy"  # 4 features per wire: 40 principal components of 64 pooled pixels
_EIGHT = "x[i] is pixel (i // 8, i % 8) of the image average-pooled to 8x8, scaled from [0, 1] to [0, pi]"


def builtin_task_names() -> list[str]:
    """The tasks qnas ships: the classification sets, the Hamiltonians in qnas/data, the spin chains."""
    return sorted(
        [*_CLASSIFICATION, *_QUANTUM_TRAIN, *(p.stem for p in DATA_DIR.glob("*.json")), *SPIN_CHAINS]
    )


def available_tasks() -> list[str]:
    """Every task name get_task accepts: the built-in ones and the registered ones."""
    return sorted([*builtin_task_names(), *registry.names("task")])


def get_task(
    name: str,
    seed: int = 0,
    max_train: int | None = None,
    logit_scale: float = 1.0,
    encoder: str | None = None,
    mapping_hidden: list[int] | None = None,
    shots: int | None = None,
    mapping: str | None = None,
    mapping_bond: int | None = None,
    standardize: str | None = None,
    label_smoothing: float | None = None,
) -> Task:
    """Return the task called `name`; the data split is drawn with `seed`.

    `logit_scale` multiplies the <Z> readout of classification tasks, and `encoder` names
    their encoder (None: the task's own); a VQE takes neither. `mapping` (mlp or mps),
    `mapping_hidden` (the MLP's hidden widths), `mapping_bond` (the MPS's bond dimension),
    `shots` (probabilities from that many shots), `standardize` (the generated weights per
    output unit or per tensor) and `label_smoothing` are a Quantum-Train task's alone.
    """
    if name in _QUANTUM_TRAIN:
        if encoder is not None:
            raise ValueError(f"task {name} (quantum_train) encodes no data; remove task.encoder")
        features, labels = load_digits_8x8()
        splits = split_dataset(features, labels, tuple(range(10)), seed)
        mapping = mapping or "mlp"
        # Each size belongs to one mapping model; the other's would be silently ignored.
        if mapping == "mps" and mapping_hidden is not None:
            raise ValueError(
                f"task.mapping_hidden ({list(mapping_hidden)}) sizes the MLP mapping; the mps mapping takes "
                "task.mapping_bond: remove task.mapping_hidden (--set task.mapping_hidden=null)"
            )
        if mapping == "mlp" and mapping_bond is not None:
            raise ValueError(
                f"task.mapping_bond ({mapping_bond}) sizes the mps mapping; the MLP mapping takes "
                "task.mapping_hidden: set task.mapping=mps or remove task.mapping_bond"
            )
        hidden = tuple(mapping_hidden) if mapping_hidden is not None else (8, 8)
        bond = mapping_bond if mapping_bond is not None else 4
        return QuantumTrainTask(
            name,
            splits,
            _QUANTUM_TRAIN[name],
            hidden,
            shots,
            seed,
            mapping=mapping,
            bond=bond,
            standardize=standardize or "unit",
            label_smoothing=label_smoothing or 0.0,
        )
    quantum_train_only = {
        "mapping": mapping,
        "mapping_hidden": mapping_hidden,
        "mapping_bond": mapping_bond,
        "shots": shots,
        "standardize": standardize,
        "label_smoothing": label_smoothing,
    }
    if given := [f"task.{k}" for k, v in quantum_train_only.items() if v is not None]:
        verb, them = ("belongs", "it") if len(given) == 1 else ("belong", "them")
        raise ValueError(
            f"{', '.join(given)} {verb} to a Quantum-Train task ({', '.join(_QUANTUM_TRAIN)}), "
            f"not to {name}; remove {them}"
        )
    if name in _CLASSIFICATION:
        source, classes = _CLASSIFICATION[name]
        size = 8 if name in _WIDE else 4
        if source == "digits":
            features, labels = load_digits_8x8() if size == 8 else load_digits_4x4()
            splits = split_dataset(features, labels, classes, seed)
        else:
            splits = _image_splits(source, classes, seed, max_train, size)
        extra = {"n_wires": 10, "input_description": _EIGHT} if size == 8 else {}
        default = _WIDE_ENCODER if size == 8 else DEFAULT_ENCODER
        return ClassificationTask(
            name, classes, splits, logit_scale=logit_scale, encoder_name=encoder or default, **extra
        )
    if (DATA_DIR / f"{name}.json").exists():
        task = load_vqe_task(name)
    elif parse_chain(name) is not None:
        task = spin_chain_task(name)
    else:
        found = registry.task(name)
        if found is None:
            raise registry.unknown("task", name, available_tasks())
        task = found(seed=seed, max_train=max_train) if callable(found) else found
        if not isinstance(task, Task):
            raise ValueError(f"registered task {name!r} gave a {type(task).__name__}, not a qnas Task")
        if isinstance(task, ClassificationTask):
            # The config's settings apply to a registered classifier as to a built-in one.
            task = dataclasses.replace(
                task, name=name, logit_scale=logit_scale, encoder_name=encoder or task.encoder_name
            )
            encoder = None
    if encoder is not None:
        raise ValueError(f"task {name} ({task.kind}) has no encoder to choose; remove task.encoder")
    return task


def describe_task(name: str) -> dict:
    """One row of `qnas tasks`: the task's kind, qubits, classes and split sizes (or why its data is missing)."""
    if name in _CLASSIFICATION and _CLASSIFICATION[name][0] != "digits":
        source = _CLASSIFICATION[name][0]
        # MNIST-style sets are the user's files; loading 60000 images to count them is not worth it.
        found = (data_dir(source) / f"{source}.npz").exists() or any(data_dir(source).glob("*idx*"))
        return {
            "name": name,
            "kind": "classification",
            "qubits": 10 if name in _WIDE else 4,
            "classes": " ".join(map(str, _CLASSIFICATION[name][1])),
            "sizes": f"files in {data_dir(source)}"
            if found
            else f"needs {data_dir(source) / (source + '.npz')}",
        }
    task = get_task(name)
    if isinstance(task, QuantumTrainTask):
        return {
            "name": name,
            "kind": task.kind,
            "qubits": task.n_wires,
            "classes": " ".join(map(str, range(task.n_classes))),
            "sizes": " / ".join(f"{s} {task.n_samples(s)}" for s in ("train", "valid", "test"))
            + f"; a {task.target} of {task.n_target} weights",
        }
    classes = " ".join(map(str, task.classes)) if isinstance(task, ClassificationTask) else ""
    row = {"name": name, "kind": task.kind, "qubits": task.n_wires, "classes": classes}
    sizes = {split: task.n_samples(split) for split in ("train", "valid", "test")}
    row["sizes"] = (
        " / ".join(f"{split} {n}" for split, n in sizes.items() if n is not None)
        if any(v is not None for v in sizes.values())
        else f"{len(task.paulis)} Pauli terms"
        if isinstance(task, VQETask)
        else ""
    )
    return row


def task_from_config(config: Config) -> Task:
    """The task of a run's config, its data split drawn with the run's seed."""
    t = config.task
    task = get_task(
        t.name,
        seed=config.seed,
        max_train=t.max_train,
        logit_scale=t.logit_scale,
        encoder=t.encoder,
        mapping_hidden=t.mapping_hidden,
        shots=t.shots,
        mapping=t.mapping,
        mapping_bond=t.mapping_bond,
        standardize=t.standardize,
        label_smoothing=t.label_smoothing,
    )
    if t.reupload and task.kind != "classification":
        raise ValueError(f"task.reupload: task {task.name} is a {task.kind}; only a classifier encodes data")
    if config.search.encoders:
        if t.encoder is not None:
            raise ValueError(
                f"task.encoder ({t.encoder!r}) and search.encoders ({config.search.encoders}) both set: "
                "give one encoder, or the list to search among"
            )
        task = with_encoder_gene(task, config.search.encoders)
    return task


def with_encoder_gene(task: Task, names: list[str]) -> Task:
    """Return a classifier whose encoder is a gene: it encodes nothing itself, its circuits start with one of `names`.

    The features become the principal components (fitted on the training split) of as
    many as the widest encoder reads, so each encoder reads the most telling ones first.
    The SuperCircuit puts the chosen encoder in every subcircuit (`encoder_choices`).
    """
    if not isinstance(task, ClassificationTask):
        raise ValueError(
            f"search.encoders: task {task.name} is a {task.kind}; only a classifier has an encoder"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"search.encoders {names} names an encoder twice")
    mapped = [n for n in names if n in FEATURE_MAPS]
    if mapped:
        raise ValueError(
            f"search.encoders: {mapped[0]!r} reads features computed for it alone; search among angle encoders"
        )
    layers = [get_encoder(name, task.n_wires) for name in names]
    reads = [n_features_read(ly) for ly in layers]
    features = int(task.splits["train"][0].shape[1])
    if max(reads) > features:
        wide = names[reads.index(max(reads))]
        raise ValueError(
            f"search.encoders: {wide!r} on {task.n_wires} wires reads {max(reads)} features; {task.name} has {features}"
        )
    # Built for the widest encoder, which reduces the features to what it reads when it reads fewer.
    task = dataclasses.replace(task, encoder_name=names[reads.index(max(reads))])
    if task.n_inputs == features:
        # It reads them all: still ordered by principal component, so that narrower encoders read the first.
        task.splits = reduce_features(task.splits, features, seed=0, always=True)
        task.input_description = (
            f"x[i] is principal component i of the samples' {features} features (fitted on the training "
            f"split), scaled to [0, pi] by its training range; the features: {task.input_description}"
        )
    task.encoder = []
    task.encoder_choices = layers
    task.encoder_names = list(names)
    return task


def _image_splits(
    source: str, classes: tuple[int, ...], seed: int, max_train: int | None, size: int = 4
) -> dict[str, tuple]:
    """MNIST-style task: 28x28 center-cropped to 24x24 and pooled to size x size (QuantumNAS: 4); the test set kept apart."""
    data = load_image_set(source)
    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(np.isin(y_train, classes))
    if max_train is not None and len(keep) > max_train:
        keep = np.sort(rng.choice(keep, max_train, replace=False))
    splits = split_dataset(pool_images(x_train[keep], size, crop=24), y_train[keep], classes, seed, test=0.0)
    test_keep = np.isin(y_test, classes)
    splits["test"] = as_tensors(
        *select_classes(pool_images(x_test[test_keep], size, crop=24), y_test[test_keep], classes)
    )
    return splits


__all__ = [
    "ClassificationTask",
    "QuantumTrainTask",
    "Task",
    "VQETask",
    "available_encoders",
    "available_tasks",
    "builtin_task_names",
    "classification_task",
    "describe_task",
    "get_encoder",
    "get_task",
    "task_from_config",
    "vqe_task",
]
