"""Device registry: fake backends by name, snapshots offline, clear errors."""

import numpy as np
import pytest

from qnas.devices import fake_backend_classes, get_device, list_devices, save_snapshot


def test_fake_backends_by_short_name():
    names = fake_backend_classes()
    for name in (
        "fake_quito",
        "fake_lima",
        "fake_belem",
        "fake_jakarta",
        "fake_guadalupe",
        "fake_brisbane",
        "fake_torino",
    ):
        assert name in names
    quito = get_device("fake_quito")
    assert quito.n_qubits == 5
    assert quito.backend.name == "fake_quito"
    assert {"cx", "rz", "sx", "x"} <= set(quito.basis_gates)
    assert get_device("fake_quito") is quito


def test_noise_model_built_once_per_device():
    quito = get_device("fake_quito")
    assert quito.noise_model is quito.noise_model


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="fake_quito"):
        get_device("fake_quitto")


def test_live_backend_without_account_says_how_to_save_one(monkeypatch, tmp_path):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("QISKIT_IBM_CONFIG", str(tmp_path / "none.json"))
    from qiskit_ibm_runtime import QiskitRuntimeService

    if QiskitRuntimeService.saved_accounts():
        pytest.skip("an IBM Quantum account is saved on this machine")
    with pytest.raises(RuntimeError, match="save_account"):
        get_device("ibm_nosuchdevice")


def test_snapshot_round_trip_rebuilds_target_and_noise(tmp_path):
    path = save_snapshot("fake_quito", tmp_path / "quito.json")
    loaded = get_device(str(path))
    original = get_device("fake_quito")
    assert loaded.n_qubits == original.n_qubits
    assert loaded.basis_gates == original.basis_gates
    for name in ("cx", "sx", "measure"):
        for qargs, props in original.backend.target[name].items():
            assert loaded.backend.target[name][qargs].error == props.error
    assert loaded.noise_model == original.noise_model
    again = save_snapshot(loaded, tmp_path / "again.json")
    assert get_device(str(again)).noise_model == original.noise_model


def test_missing_snapshot_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        get_device(str(tmp_path / "missing.json"))


def test_list_devices_table():
    table = list_devices(["fake_quito", "fake_brisbane"])
    assert list(table.columns) == [
        "name",
        "n_qubits",
        "basis_gates",
        "median_1q_error",
        "median_2q_error",
        "median_readout_error",
    ]
    assert table["n_qubits"].tolist() == [5, 127]
    errors = table[["median_1q_error", "median_2q_error", "median_readout_error"]].to_numpy()
    assert np.all((errors > 0) & (errors < 0.2))
