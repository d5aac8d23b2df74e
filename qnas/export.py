"""OpenQASM 2 and 3 export of a subcircuit, logical or transpiled for a device."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qiskit import QuantumCircuit, qasm2, qasm3

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
) -> Path | str:
    """Write (or return, without `path`) the circuit as OpenQASM; weights bound.

    OpenQASM 3 holds the whole circuit, the task's encoder included, with the input
    features as `input` parameters. OpenQASM 2 has no free parameters, so for a task
    with inputs it holds the trained part alone, after the encoder. With `device`, the
    circuit is transpiled for it on `layout` first.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    with_inputs = fmt == "qasm3" or task.n_inputs == 0
    circuit = sub.to_qiskit(
        bound=True, encoder=task.encoder if with_inputs else (), n_inputs=task.n_inputs if with_inputs else 0
    )
    if device is not None:
        circuit = transpile_on_device(circuit, device, layout, optimization_level, seed)
    text = _dumps(circuit, fmt)
    if path is None:
        return text
    path = Path(path)
    path.write_text(text)
    return path


def _dumps(circuit: QuantumCircuit, fmt: str) -> str:
    return qasm2.dumps(circuit) if fmt == "qasm2" else qasm3.dumps(circuit)
