"""OpenQASM 2 and 3 export of a subcircuit, logical or transpiled for a device, with a header saying what it is."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qiskit import ClassicalRegister, QuantumCircuit, qasm2, qasm3

from qnas.devices import Device
from qnas.supercircuit import Subcircuit
from qnas.tasks import Task
from qnas.transpiled import transpile_on_device

FORMATS = ("qasm2", "qasm3")


def export_circuit(
    sub: Subcircuit,
    task: Task,
    fmt: str,
    path: Path | None = None,
    device: Device | None = None,
    layout: Sequence[int] | None = None,
    optimization_level: int = 2,
    seed: int = 0,
    sample: int | None = None,
    measure: bool = False,
    about: dict[str, Any] | None = None,
) -> Path | str:
    """Write (or return, without `path`) the circuit as OpenQASM; weights bound, encoder included.

    OpenQASM 3 keeps the task's inputs as `input float` parameters, or binds them to test
    sample `sample`. OpenQASM 2 has no inputs: a task with inputs needs `sample`, and is
    refused without one (it never drops the encoder). With `device`, the circuit is
    transpiled for it on `layout` first. `measure` adds the readout's measurements:
    logical qubit i into bit i. The header (comments) says where the circuit came from
    (`about`), what each input is and how counts become the task's prediction.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "qasm2" and task.n_inputs and sample is None:
        raise ValueError(
            f"OpenQASM 2 has no input parameters and task {task.name} reads {task.n_inputs} features: give a "
            "test sample to bind (--sample I), or export OpenQASM 3 (--format qasm3), which keeps them as inputs"
        )
    circuit = sub.to_qiskit(bound=True, encoder=task.encoder, n_inputs=task.n_inputs)
    if sample is not None:
        circuit = circuit.assign_parameters(_bound_sample(task, circuit, sample))
    readout_qubits = list(range(task.n_wires))
    if device is not None:
        circuit = transpile_on_device(circuit, device, layout, optimization_level, seed)
        readout_qubits = list(circuit.layout.final_index_layout())
    if measure:
        register = ClassicalRegister(task.n_wires, "meas")
        circuit.add_register(register)
        circuit.measure(readout_qubits, register)
    header = _header(task, about or {}, device, readout_qubits, sample, measure, fmt)
    text = header + _dumps(circuit, fmt)
    if path is None:
        return text
    path = Path(path)
    path.write_text(text)
    return path


def _bound_sample(task: Task, circuit: QuantumCircuit, sample: int) -> dict:
    split = task.final_split
    n = task.n_samples(split)
    if n is None or not 0 <= sample < n:
        raise ValueError(f"sample {sample} is out of range: the {split} split has samples 0..{(n or 1) - 1}")
    x = task.features(task.samples(split)).double().numpy()[sample]
    return {p: float(x[p.index]) for p in circuit.parameters}


def _header(
    task: Task,
    about: dict[str, Any],
    device: Device | None,
    readout_qubits: list[int],
    sample: int | None,
    measure: bool,
    fmt: str,
) -> str:
    from qnas import __version__

    lines = [f"qnas {__version__} export, {datetime.date.today()}"]
    if about.get("run"):
        lines.append(f"run: {about['run']}; candidate: {about.get('candidate', '?')}")
        lines.append(f"searched on: {about.get('run_device', '?')}")
    if device is not None:
        lines.append(
            f"transpiled for {device.name}, initial layout {about.get('layout', 'given')}; "
            f"logical qubit i is read on physical qubit {readout_qubits}[i]"
        )
    else:
        lines.append(
            f"logical circuit on {task.n_wires} qubits (not transpiled): qubit i is the task's wire i"
        )
    lines.append(f"task: {task.name} ({task.kind})")
    if task.n_inputs:
        if sample is not None:
            lines.append(f"inputs bound to {task.final_split} sample {sample}")
        else:
            name = "x" if fmt == "qasm3" else "?"
            lines.append(f"inputs: {name}[0..{task.n_inputs - 1}], one per feature of a sample")
        lines += task.describe_inputs()
    lines += task.describe_readout()
    if measure:
        lines.append("measured: logical qubit i into bit meas[i]")
    else:
        lines.append("no measurements: add them on the qubits above (or export with --measure)")
    return "".join(f"// {line}\n" for line in lines)


def _dumps(circuit: QuantumCircuit, fmt: str) -> str:
    return qasm2.dumps(circuit) if fmt == "qasm2" else qasm3.dumps(circuit)
