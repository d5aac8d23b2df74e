"""The one place where qnas's torch circuits meet qiskit, in both directions.

Wire w of the torch simulator is qiskit qubit w. The simulator's flat state index has
wire 0 as its most significant bit where qiskit has qubit 0 as its least significant, so
`Statevector(qc).reverse_qargs()` equals the torch state, and a torch state `psi` equals
`Statevector(psi).reverse_qargs()` in qiskit's order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector
from qiskit.circuit.library import CU3Gate, U3Gate

from qnas.sim import GATES, Layer

# Gates whose qiskit method name differs from ours, or that need a class.
_APPEND = {
    "u3": lambda qc, p, w: qc.append(U3Gate(*p), w),
    "cu3": lambda qc, p, w: qc.append(CU3Gate(*p), w),
}


def to_qiskit(
    layers: Sequence[Layer],
    n_wires: int,
    weights: torch.Tensor | np.ndarray | None = None,
    n_inputs: int = 0,
    input_name: str = "x",
    weight_name: str = "theta",
) -> QuantumCircuit:
    """Return the QuantumCircuit of `layers`.

    Weight angles are bound to `weights` when given, else left as a ParameterVector named
    `weight_name` (indexed like the weight vector). Input angles are always the
    ParameterVector `input_name` of length `n_inputs`, to bind per sample.
    """
    qc = QuantumCircuit(n_wires)
    free = weights is None
    if not free:
        weights = np.asarray(torch.as_tensor(weights).detach().cpu().double().numpy())
    n_weights = 1 + max(
        (i for layer in layers if layer.source == "weight" for ix in layer.index for i in ix), default=-1
    )
    theta = ParameterVector(weight_name, n_weights) if free else None
    x = ParameterVector(input_name, n_inputs) if n_inputs else None
    for layer in layers:
        for pos, wires in enumerate(layer.wires):
            if layer.source == "fixed":
                params: list = []
            elif layer.source == "weight":
                params = [theta[i] if free else float(weights[i]) for i in layer.index[pos]]
            else:
                if x is None:
                    raise ValueError(f"layer {layer.gate} reads inputs; pass n_inputs")
                params = [x[i] for i in layer.index[pos]]
            if layer.gate in _APPEND:
                _APPEND[layer.gate](qc, params, list(wires))
            else:
                getattr(qc, layer.gate)(*params, *wires)
    return qc


def from_qiskit(circuit: QuantumCircuit) -> tuple[list[Layer], list[Parameter], np.ndarray]:
    """Return (layers, free parameters, fixed angle values).

    The layers read weights from a vector laid out as [free parameters..., fixed angles...];
    fill the first part with sampled values and the second with the returned values.
    """
    free = list(circuit.parameters)
    position = {p: i for i, p in enumerate(free)}
    fixed_values: list[float] = []
    layers: list[Layer] = []
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("barrier", "measure"):
            continue
        if name not in GATES:
            raise ValueError(f"gate {name!r} is not simulated by qnas; allowed: {', '.join(sorted(GATES))}")
        wires = tuple(circuit.find_bit(q).index for q in inst.qubits)
        index: list[int] = []
        for p in inst.operation.params:
            if isinstance(p, ParameterExpression) and p.parameters:
                if not isinstance(p, Parameter):
                    raise ValueError(f"angle {p} of {name}: only plain parameters are supported")
                index.append(position[p])
            else:
                index.append(-1 - len(fixed_values))
                fixed_values.append(float(p))
        source = "weight" if index else "fixed"
        layers.append(Layer(name, (wires,), source, (tuple(index),) if index else ()))
    n_free = len(free)
    # Fixed angles live after the free ones: index -1 - j becomes n_free + j.
    layers = [
        Layer(
            ly.gate,
            ly.wires,
            ly.source,
            tuple(tuple(i if i >= 0 else n_free - 1 - i for i in ix) for ix in ly.index),
        )
        for ly in layers
    ]
    return layers, free, np.asarray(fixed_values, dtype=np.float64)
