"""Batched statevector simulation in torch; never imports qiskit."""

from qnas.sim.gates import GATES, GateSpec, gate_spec
from qnas.sim.statevector import Layer, apply_gate, expval_pauli_sum, expval_z, probabilities, run

__all__ = [
    "GATES",
    "GateSpec",
    "Layer",
    "apply_gate",
    "expval_pauli_sum",
    "expval_z",
    "gate_spec",
    "probabilities",
    "run",
]
