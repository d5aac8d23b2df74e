import gzip

import numpy as np
import pytest
import torch
from qiskit.quantum_info import SparsePauliOp, Statevector

from qnas.config import FinetuneConfig, TrainConfig
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks import get_task
from qnas.train import finetune, train_supercircuit


def test_digits4_splits_are_disjoint_and_stratified():
    task = get_task("digits4", seed=0)
    sizes = {k: len(v[0]) for k, v in task.splits.items()}
    assert sizes == {"train": 395, "valid": 109, "test": 216}
    assert set(task.splits["test"][1].tolist()) == {0, 1, 2, 3}
    assert task.splits["train"][0].shape[1] == 16 and float(task.splits["train"][0].max()) <= np.pi + 1e-6
    assert set(get_task("digits2").splits["train"][1].tolist()) == {0, 1}


def test_unknown_task_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown task 'digit4' \(did you mean digits4.*allowed: .*h2"):
        get_task("digit4")


def test_mnist_without_files_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("QNAS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "mnist")):
        get_task("mnist4")


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_loads_from_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 200), ("t10k", 80)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("QNAS_DATA", str(tmp_path))
    task = get_task("mnist2", seed=0)
    assert len(task.splits["test"][0]) == 16  # the 3s and 6s of the 80 test images
    assert task.splits["train"][0].shape[1] == 16


def test_vqe_energy_matches_qiskit():
    task = get_task("h2")
    sc = SuperCircuit(load_space("u3cu3"), task.n_wires, max_blocks=2, seed=0)
    sub = sc.subcircuit(sc.largest())
    ours = task.evaluate(sub)["energy"]
    qc = sub.to_qiskit(bound=True, encoder=task.encoder)
    op = SparsePauliOp([p[::-1] for p in task.paulis], task.coeffs)
    assert ours == pytest.approx(Statevector(qc).expectation_value(op).real, abs=1e-10)
    assert task.evaluate(sub)["exact_energy"] == pytest.approx(-1.137306, abs=1e-6)


def test_vqe_energy_from_basis_probabilities_is_exact():
    task = get_task("h2")
    sc = SuperCircuit(load_space("zzry"), task.n_wires, max_blocks=2, seed=3)
    sub = sc.subcircuit(sc.largest())
    qc = sub.to_qiskit(bound=True, encoder=task.encoder)
    probs = {}
    for basis in task.measurement_bases():
        rotated = qc.copy()
        for q, p in enumerate(basis):
            if p == "X":
                rotated.h(q)
            elif p == "Y":
                rotated.sdg(q)
                rotated.h(q)
        probs[basis] = Statevector(rotated).probabilities()
    energy = task.outputs_from_probabilities({b: p[None] for b, p in probs.items()})[0, 0]
    assert energy == pytest.approx(task.evaluate(sub)["energy"], abs=1e-10)


class _StopsAfter:
    """The task, but its data stream breaks after `n` batches (an interruption mid-epoch)."""

    def __init__(self, task, n):
        self.task, self.n = task, n

    def __getattr__(self, name):
        return getattr(self.task, name)

    def batches(self, batch_size, rng):
        for batch in self.task.batches(batch_size, rng):
            if self.n == 0:
                raise KeyboardInterrupt
            self.n -= 1
            yield batch


def test_training_resumes_from_its_checkpoint(tmp_path):
    task = get_task("digits2", seed=0)
    space = load_space("u3cu3")
    settings = TrainConfig(epochs=4, batch_size=64, warmup_epochs=1)
    whole = SuperCircuit(space, 4, max_blocks=2, seed=0)
    train_supercircuit(whole, task, settings, progress=False)
    ckpt = tmp_path / "sc.pt"
    steps_per_epoch = task.n_batches(64)
    interrupted = SuperCircuit(space, 4, max_blocks=2, seed=0)
    with pytest.raises(KeyboardInterrupt):
        train_supercircuit(
            interrupted, _StopsAfter(task, 2 * steps_per_epoch + 1), settings, checkpoint=ckpt, progress=False
        )
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    resumed = SuperCircuit(space, 4, max_blocks=2, seed=0)
    history = train_supercircuit(resumed, task, settings, checkpoint=ckpt, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    torch.testing.assert_close(resumed.weights, whole.weights)


def test_finetune_leaves_the_supercircuit_alone_and_lowers_the_loss():
    task = get_task("digits2", seed=0)
    sc = SuperCircuit(load_space("u3cu3"), 4, max_blocks=2, seed=0)
    before = sc.weights.detach().clone()
    genes = sc.largest()
    tuned, _ = finetune(
        sc, genes, task, FinetuneConfig(epochs=3, batch_size=32, lr=0.02, warmup_epochs=0), progress=False
    )
    assert torch.equal(sc.weights.detach(), before)
    assert task.evaluate(tuned.subcircuit(genes))["loss"] < task.evaluate(sc.subcircuit(genes))["loss"]


def test_calibrated_loss_ignores_uniform_shrinking():
    from qnas.tasks.classification import calibrated_loss

    task = get_task("digits4", seed=0)
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.integers(0, 4, 200))
    # <Z> of a fair classifier: the true class's qubit highest on most samples
    z = torch.as_tensor(rng.uniform(-0.6, 0.2, (200, 4)))
    z[torch.arange(200), y] += torch.as_tensor(rng.uniform(-0.2, 0.9, 200))
    clean = task.metrics_from_outputs(z, (None, y))
    shrunk = task.metrics_from_outputs(0.2 * z, (None, y))
    assert 0.5 < clean["accuracy"] < 1 and shrunk["accuracy"] == clean["accuracy"]
    assert shrunk["loss"] > clean["loss"] + 0.05  # the plain loss punishes the shrinking
    assert shrunk["calibrated_loss"] == pytest.approx(clean["calibrated_loss"], abs=1e-4)
    assert calibrated_loss(z, y) < clean["loss"]


def test_logit_scale_changes_the_loss_not_the_ranking():
    plain, scaled = get_task("digits4", seed=0), get_task("digits4", seed=0, logit_scale=4.0)
    z = torch.rand(50, 4) * 2 - 1
    y = torch.randint(0, 4, (50,))
    a, b = plain.metrics_from_outputs(z, (None, y)), scaled.metrics_from_outputs(z, (None, y))
    assert a["accuracy"] == b["accuracy"]
    assert a["calibrated_loss"] == pytest.approx(b["calibrated_loss"], abs=1e-4)
    assert a["loss"] != pytest.approx(b["loss"], abs=1e-3)
    assert torch.allclose(scaled.readout(z), 4 * plain.readout(z))
