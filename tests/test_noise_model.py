"""The one reader of qiskit-aer's noise model: what it reads back is what the device's calibration says."""

import re
from pathlib import Path

import numpy as np
import pytest
from qiskit_aer.noise import thermal_relaxation_error

from qnas import noise_model
from qnas.devices import get_device

PACKAGE = Path(noise_model.__file__).parent


def test_only_noise_model_reads_qiskit_aers_private_tables():
    private = re.compile(r"\._(local|default)_(quantum|readout)_errors?|_custom_noise_passes")
    readers = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if private.search(p.read_text())
    )
    assert readers == ["noise_model.py"]


def test_readout_matrices_are_the_calibrated_measure_errors():
    device = get_device("fake_quito")
    target = device.backend.target
    for q, matrix in enumerate(noise_model.readout_matrices(device.noise_model, range(5))):
        assert np.allclose(matrix.sum(axis=1), 1)
        # The mean of P(1|0) and P(0|1) is the calibrated readout error of qubit q.
        assert (matrix[0, 1] + matrix[1, 0]) / 2 == pytest.approx(target["measure"][(q,)].error, abs=1e-9)


def test_gate_errors_exist_where_the_device_has_the_gate():
    device = get_device("fake_quito")
    assert noise_model.gate_error(device, "cx", (0, 1)) is not None
    assert noise_model.gate_error(device, "sx", (3,)) is not None
    assert noise_model.gate_error(device, "cx", (0, 4)) is None  # not coupled on quito


def test_idle_error_is_the_qubits_thermal_relaxation():
    device = get_device("fake_quito")
    props = device.backend.target.qubit_properties[2]
    error = noise_model.idle_error(device, 2, 1e-6)
    expected = thermal_relaxation_error(props.t1, min(props.t2, 2 * props.t1), 1e-6)
    assert error == expected
    assert noise_model.idle_error(device, 2, 0.0) is None
    assert noise_model.seconds(100, "dt", 2e-10) == pytest.approx(2e-8)
    with pytest.raises(ValueError, match="delay unit 'min'"):
        noise_model.seconds(1, "min", None)


def test_restricted_model_keeps_only_the_errors_on_its_qubits():
    device = get_device("fake_brisbane")
    restricted = noise_model.restrict_noise_model(device, (14, 0, 1))
    # Physical qubit 14 is local qubit 0: its readout error moves with it.
    local = noise_model.readout_matrices(restricted, [0])[0]
    full = noise_model.readout_matrices(device.noise_model, [14])[0]
    assert np.array_equal(local, full)
    assert set(restricted.noise_qubits) <= {0, 1, 2}


@pytest.mark.parametrize("name", ["fake_quito", "fake_cairo"])
def test_errors_built_one_at_a_time_are_the_full_models(name):
    """The lazy path builds exactly what qiskit's fake backend puts in its noise model, and nothing more."""
    device = get_device(name)
    full = device.noise_model
    count = 0
    for gate, by_qubits in full._local_quantum_errors.items():
        for qubits, error in by_qubits.items():
            built = noise_model.gate_error(device, gate, qubits)
            assert np.allclose(built.to_quantumchannel().data, error.to_quantumchannel().data), (gate, qubits)
            count += 1
    assert count > 20
    restricted = noise_model.restrict_noise_model(device, (0, 1, 2))
    assert sorted(restricted.noise_qubits) == [0, 1, 2]
    ours = noise_model.device_readout_matrices(device, range(device.n_qubits))
    theirs = noise_model.readout_matrices(full, range(device.n_qubits))
    assert all(np.allclose(a, b) for a, b in zip(ours, theirs, strict=True))


def test_a_heron_candidate_is_scored_without_building_the_whole_noise_model():
    """fake_fez's full model (156 qubits, 1640 gate errors) takes 40-65 s to build; a candidate needs a few."""
    from qiskit import QuantumCircuit

    from qnas.noise import noisy_probabilities
    from qnas.transpiled import transpile_candidate

    device = get_device("fake_fez")
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    candidate = transpile_candidate(circuit, device, None, 1, seed=0)
    probs = noisy_probabilities(candidate, device, None)[0]
    assert probs[0] + probs[7] > 0.8 and probs[0] + probs[7] < 0.999  # GHZ, with the device's errors
    assert "noise_model" not in device.__dict__  # the cached full model was never built
