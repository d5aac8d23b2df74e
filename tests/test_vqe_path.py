"""The noisy VQE path end to end: search on the device's noise, score, deploy; one placed ansatz per candidate."""

import json
from pathlib import Path

import numpy as np
import pytest

from qnas.cli import main
from qnas.deploy import deploy
from qnas.devices import get_device
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks import get_task
from qnas.transpiled import transpile_candidate

TINY_VQE = [
    "--set", "task.name=h2",
    "--set", "train.epochs=3",
    "--set", "finetune.epochs=2",
    "--set", "search.iterations=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def vqe_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vqe") / "run"
    argv = ["search", "--config", "tests/tiny_search.yaml", "--out", str(out), "--workers", "0", "--quiet"]
    assert main([*argv, *TINY_VQE]) == 0
    return out


def test_a_noisy_vqe_search_runs_end_to_end(vqe_run):
    best = json.loads((vqe_run / "best.json").read_text())
    exact = best["test"]["noiseless"]["exact_energy"]
    noisy, noiseless = best["test"]["noisy"]["energy"], best["test"]["noiseless"]["energy"]
    # Noise lifts the energy above the noiseless one, which the variational principle keeps above exact.
    assert exact <= noiseless + 1e-9 < noisy
    assert (vqe_run / "exports" / "best.qasm3").exists()


def test_a_vqe_deploy_measures_what_the_noisy_score_predicts(vqe_run):
    summary = deploy(vqe_run, "best", "fake_quito", shots=8000, progress=False)
    best = json.loads((vqe_run / "best.json").read_text())
    assert summary["predicted"]["energy"] == pytest.approx(best["test"]["noisy"]["energy"], abs=1e-9)
    assert summary["n_jobs"] == 1 and summary["n_samples"] is None
    assert summary["shot_noise_se"] > 0
    assert abs(summary["difference"]) <= 4 * summary["shot_noise_se"] + 1e-3


def test_every_measurement_basis_measures_one_placed_ansatz():
    """LiH's bases on fake_lagos all keep the ansatz's layout (each used to be transpiled, and placed, anew)."""
    task = get_task("lih")
    device = get_device("fake_lagos")
    sc = SuperCircuit(load_space("u3cu3"), task.n_wires, max_blocks=2, seed=0)
    circuit = sc.subcircuit(sc.largest()).to_qiskit(bound=True, encoder=task.encoder)
    candidate = transpile_candidate(circuit, device, None)
    measured = task.measurement_circuits(candidate, device)
    assert len(measured) == len(task.measurement_bases()) > 10
    assert {m.final_layout for m in measured.values()} == {candidate.final_layout}
    assert {m.initial_layout for m in measured.values()} == {candidate.initial_layout}
    # The basis changes come after the ansatz: each circuit starts with the very same gates.
    n = len(candidate.device_circuit.data)
    for m in measured.values():
        assert [i.operation.name for i in m.device_circuit.data[:n]] == [
            i.operation.name for i in candidate.device_circuit.data
        ]


def test_the_estimators_observable_sits_on_the_qubits_that_hold_the_logical_ones(vqe_run):
    """The Hamiltonian laid out by the final layout, on the placed ansatz, is the task's noiseless energy."""
    from qiskit.quantum_info import Statevector

    from qnas.estimate import observable_on_device
    from qnas.pipeline import load_candidate
    from qnas.results import RunDir

    config, task, sc, genome = load_candidate(RunDir(vqe_run), "best")
    device = get_device(config.device)
    sub = sc.subcircuit(genome.arch)
    candidate = transpile_candidate(sub.to_qiskit(encoder=task.encoder), device, genome.layout, 2, seed=0)
    observable = observable_on_device(task.paulis, task.coeffs, candidate, device.n_qubits)
    circuit = candidate.device_circuit.remove_final_measurements(inplace=False)
    energy = Statevector(circuit).expectation_value(observable).real
    assert energy == pytest.approx(task.evaluate(sub)["energy"], abs=1e-6)


def test_an_estimator_deploy_extrapolates_towards_the_noiseless_energy_and_resumes(vqe_run):
    """The runtime's ZNE (local mode on fake_quito) moves the energy towards the noiseless one; a re-run submits nothing."""
    from qnas.estimate import estimate

    best = json.loads((vqe_run / "best.json").read_text())
    noiseless = best["test"]["noiseless"]["energy"]
    raw = estimate(vqe_run, "best", "fake_quito", shots=4000, mitigation="none")
    zne = estimate(vqe_run, "best", "fake_quito", shots=4000, mitigation="zne")
    gap = abs(raw["measured"]["energy"] - noiseless)
    assert gap > 0.05  # noise costs this tiny ansatz tens of mHa at least
    assert abs(zne["measured"]["energy"] - noiseless) < gap - 2 * zne["shot_noise_se"], (raw, zne, noiseless)
    assert len(zne["energy_noise_factors"]) >= 2
    again = estimate(vqe_run, "best", "fake_quito", shots=4000, mitigation="zne")
    assert again["measured"] == zne["measured"]
    log = [json.loads(line) for line in Path(zne["jobs"]).read_text().splitlines()]
    assert [r["status"] for r in log] == ["submitted", "done"]
    # --zne-scales 1 3: the runtime's noise factors, a line through them, a deploy folder of its own.
    line = estimate(vqe_run, "best", "fake_quito", shots=4000, mitigation="zne", zne_scales=(1, 3))
    assert len(line["energy_noise_factors"]) == 2 and line["zne_scales"] == [1, 3]
    assert Path(line["jobs"]).parent.name.endswith("-estimator-zne-scales1-3")
    # A factor between odd ones goes to the runtime as it is (its gate folding picks the gates).
    half = estimate(vqe_run, "best", "fake_quito", shots=4000, mitigation="zne", zne_scales=(1, 2))
    assert half["zne_scales"] == [1, 2] and np.isfinite(half["measured"]["energy"])
