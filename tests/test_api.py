"""The Python API and extension without editing qnas: a user's data set, Hamiltonian, objective, device, plugin."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import qnas
from qnas import registry

TINY = Path(__file__).parent / "tiny_search.yaml"
# Smaller than tiny_search.yaml: one generation, for the searches that only need to finish.
ONE_GENERATION = {"search": {"iterations": 1}, "train": {"epochs": 1}}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory) -> qnas.Run:
    return qnas.search(TINY, out=tmp_path_factory.mktemp("api") / "run", progress=False)


def test_search_returns_a_run_with_lists_and_the_chosen_circuit(api_run):
    front, table = api_run.pareto_front, api_run.candidates
    assert 0 < len(front) <= len(table)
    assert all(isinstance(v, list) and len(v) == 4 for v in table["layout"])
    assert all(isinstance(v, list) for v in front["arch"])
    best = api_run.best
    assert best["id"] in set(table["id"]) or len(best["id"]) == 12
    reopened = qnas.load_run(api_run.path)
    assert reopened.best == best
    assert list(reopened.history["generation"]) == [0, 1, 2]


def test_the_circuit_binds_a_sample_and_matches_the_simulator(api_run):
    import torch

    from qnas.pipeline import load_candidate
    from qnas.sim import run

    free = api_run.circuit("best")
    assert isinstance(free, QuantumCircuit) and free.num_parameters == 16
    bound = api_run.circuit("best", sample=3)
    assert bound.num_parameters == 0
    _, task, sc, genome = load_candidate(api_run.dir, "best")
    x = task.samples("test")[0][3:4].double()
    psi = run(
        [*task.encoder, *sc.subcircuit(genome.arch).layers],
        4,
        weights=sc.weights.detach(),
        inputs=x,
        dtype=torch.complex128,
    )
    theirs = Statevector(bound).reverse_qargs().data
    assert abs(np.vdot(psi[0].numpy(), theirs)) ** 2 > 1 - 1e-9
    with pytest.raises(ValueError, match=r"test has samples 0\.\.215"):
        api_run.circuit("best", sample=216)


def test_qasm2_binds_a_sample_or_refuses_and_every_export_says_what_it_is(api_run, tmp_path):
    with pytest.raises(ValueError, match="OpenQASM 3"):
        api_run.export("best", "qasm2")
    text = api_run.export("best", "qasm2", sample=0)
    assert "OPENQASM 2.0" in text and "inputs bound to test sample 0" in text
    qasm3 = api_run.export("best", "qasm3", transpiled=True, measure=True)
    header = [line for line in qasm3.splitlines() if line.startswith("//")]
    assert any(f"candidate: best (id {api_run.best['id']})" in line for line in header)
    assert any("x[i] is pixel (i // 4, i % 4)" in line for line in header)
    assert any("class 3 (3): qubits [3]" in line for line in header)
    assert any("transpiled for fake_quito" in line for line in header)
    assert "input float" in qasm3 and "measure" in qasm3
    # The run's own exports: QASM 3 only for a task with inputs (QASM 2 would drop the encoder).
    assert sorted(api_run.best["exports"]) == ["qasm3"]


def test_draw_with_matplotlib(api_run):
    import matplotlib.figure

    assert isinstance(api_run.draw("best"), matplotlib.figure.Figure)


def test_make_config_merges_sections_and_keys():
    config = qnas.make_config(TINY, train={"epochs": 7}, search__population=9, search__parents=5, seed=3)
    assert (config.train.epochs, config.train.batch_size, config.search.population, config.seed) == (
        7,
        64,
        9,
        3,
    )
    with pytest.raises(ValueError, match=r"train\.epochs"):
        qnas.make_config(None, train__epochs=0)
    assert qnas.Config(task={"name": "digits2"}).task.name == "digits2"


def _blobs(n: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4 dimensions: a data set of the user's own."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 3, 3], [3, 0, 0, 3], [0, 3, 3, 0]], dtype=float)
    y = np.arange(n) % 3
    return centers[y] + rng.normal(0, 0.7, (n, 4)), y * 10


def test_a_registered_array_task_searches_on_ray_workers(tmp_path):
    x, y = _blobs()
    qnas.register_task("blobs", qnas.classification_task(x, y, n_wires=4, encoder="ry"))
    run = qnas.search(
        TINY,
        out=tmp_path / "run",
        workers=2,
        progress=False,
        task={"name": "blobs"},
        search={"iterations": 1},
        train={"epochs": 5},
        finetune={"epochs": 60},  # 1 epoch leaves 3 blobs at chance; 60 reach 65% (seed 0)
    )
    table = run.candidates
    assert not table["failed"].any(), table.get("error")
    best = run.best
    assert best["test"]["noiseless"]["accuracy"] > 0.5  # three classes: chance is 1/3
    assert "x[i] is feature i of the sample" in run.export("best")


def test_a_registered_hamiltonian_with_a_registered_objective_on_a_registered_device(tmp_path):
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    ising = SparsePauliOp.from_list(
        [("ZZII", -1.0), ("IZZI", -1.0), ("IIZZ", -1.0), ("XIII", -0.5), ("IXII", -0.5)]
    )
    task = qnas.vqe_task(ising)
    exact = np.linalg.eigvalsh(ising.to_matrix()).min()
    assert task.exact_energy == pytest.approx(exact)
    # qiskit reads labels right to left: the X terms act on qubits 3 and 2, qnas's label reads them first-last.
    assert "IIIX" in task.paulis and "ZZII" in task.paulis
    qnas.register_task("ising4", task)
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.02, 2), ["cx"])
    qnas.register_device(
        "line5", noise, coupling_map=[[i, i + 1] for i in range(4)] + [[i + 1, i] for i in range(4)]
    )
    qnas.register_objective(
        "gates_per_param",
        lambda subcircuit, **_: subcircuit.n_gates()["2q"] / max(1, subcircuit.n_params),
        "minimize",
    )
    run = qnas.search(
        TINY,
        out=tmp_path / "run",
        workers=2,
        progress=False,
        device="line5",
        task={"name": "ising4"},
        search={"objectives": ["energy", "gates_per_param"], "iterations": 1},
        train={"epochs": 1},
    )
    table = run.candidates
    assert not table["failed"].any(), table.get("error")
    assert (table["gates_per_param"] >= 0).all()
    assert run.best["test"]["noisy"]["energy"] >= exact - 1e-6
    assert run.best["test"]["device"] == "line5"


def test_registration_errors_name_the_problem():
    with pytest.raises(ValueError, match="built into qnas"):
        qnas.register_task("digits4", lambda **_: None)
    with pytest.raises(ValueError, match="direction 'up'"):
        qnas.register_objective("mine", len, "up")
    with pytest.raises(ValueError, match="BackendV2 or a qiskit_aer NoiseModel"):
        qnas.register_device("mine", object())
    x, y = _blobs()
    with pytest.raises(ValueError, match="reads 16 features; the samples have 4"):
        qnas.classification_task(x, y)  # the default encoder reads 16 features
    with pytest.raises(ValueError, match="unknown task 'blobz' \\(did you mean blobs"):
        qnas.register_task("blobs", qnas.classification_task(x, y, encoder="ry"))
        qnas.get_task("blobz")


def test_a_plugin_package_registers_through_its_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "qnas_plugin_demo.py"
    package.write_text(
        textwrap.dedent(
            """
            import qnas

            def register():
                qnas.register_objective("plugin_width", lambda subcircuit, **_: subcircuit.n_wires, "maximize")
            """
        )
    )
    info = tmp_path / "qnas_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qnas-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[qnas.plugins]\ndemo = qnas_plugin_demo:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert (
        "plugin_width"
        in qnas.make_config(None, search__objectives=["loss", "plugin_width"]).search.objectives
    )
    assert registry.objective("plugin_width").direction == "maximize"


def test_the_cli_lists_tasks_with_their_sizes(capsys):
    from qnas.cli import main

    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows["digits4"].split()[1:7] == ["classification", "4", "0", "1", "2", "3"]
    assert "train 395 / valid 109 / test 216" in rows["digits4"]
    assert rows["lih"].split()[1:3] == ["vqe", "6"] and "118 Pauli terms" in rows["lih"]
    assert rows["digits10"].split()[1:3] == ["classification", "10"]


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Python example, word for word but for its budget: qnas.Config(...) becomes the tiny one."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- python-example -->", 2)[1]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    assert "qnas.Config(" in code

    def tiny(**sections):
        assert set(sections) <= {"task", "space", "train", "search", "finetune"}
        return qnas.make_config(TINY, search__iterations=1, train__epochs=1)

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    exec(compile(code.replace("qnas.Config(", "_tiny("), "README.md", "exec"), {**namespace, "_tiny": tiny})
    assert (tmp_path / "runs" / "api" / "best.json").exists()
    assert qnas.load_run(tmp_path / "runs" / "api").best["id"]
