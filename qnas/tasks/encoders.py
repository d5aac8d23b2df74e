"""Encoders by name: how a classification sample's features become rotation angles.

An encoder is a list of `Layer`s with source "input": each position reads the features
its `index` names. Built-in ones are functions of the number of wires; a user adds one
with `qnas.register_encoder`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qnas import registry
from qnas.sim import Layer
from qnas.tasks.amplitude import amplitude_encoder
from qnas.tasks.amplitude import prepare as amplitude_angles


def angle_encoder(gates: tuple[str, ...]) -> Callable[[int], list[Layer]]:
    """One rotation layer per gate on every wire; layer k reads features k*n_wires .. (k+1)*n_wires - 1.

    With ("ry", "rz", "rx", "ry") on 4 wires this is QuantumNAS's "4x4_ryzxy": 16 features
    (a 4x4 pooled image, read row by row) on 4 qubits.
    """

    def build(n_wires: int) -> list[Layer]:
        wires = tuple((w,) for w in range(n_wires))
        return [
            Layer(gate, wires, "input", tuple((n_wires * k + w,) for w in range(n_wires)))
            for k, gate in enumerate(gates)
        ]

    return build


BUILTIN_ENCODERS: dict[str, Callable[[int], list[Layer]]] = {
    "4x4_ryzxy": angle_encoder(("ry", "rz", "rx", "ry")),
    # The same gate sequence on any number of wires: 4 features per wire.
    "ryzxy": angle_encoder(("ry", "rz", "rx", "ry")),
    "ry": angle_encoder(("ry",)),
    "ryrz": angle_encoder(("ry", "rz")),
    # Dense angle encoding (LaRose & Coyle, PRA 2020): two features per qubit, RY then RZ.
    "dense": angle_encoder(("ry", "rz")),
    # 2^n features as the amplitudes of the state (qnas.tasks.amplitude).
    "amplitude": amplitude_encoder,
}
DEFAULT_ENCODER = "4x4_ryzxy"

# Encoders whose inputs are computed from the features, not the features themselves:
# name -> (features read on n wires, features (N, read) -> the encoder's inputs).
FEATURE_MAPS: dict[str, tuple[Callable[[int], int], Callable[[np.ndarray, int], np.ndarray]]] = {
    "amplitude": (lambda n: 2**n, amplitude_angles),
}


def available_encoders() -> list[str]:
    return sorted([*BUILTIN_ENCODERS, *registry.names("encoder")])


def get_encoder(name: str, n_wires: int) -> list[Layer]:
    """The encoder called `name` on `n_wires` wires."""
    found = BUILTIN_ENCODERS.get(name) or registry.encoder(name)
    if found is None:
        raise registry.unknown("encoder", name, available_encoders())
    layers = list(found(n_wires) if callable(found) else found)
    for layer in layers:
        if layer.source != "input" and layer.source != "fixed":
            raise ValueError(
                f"encoder {name!r}: a layer of {layer.gate} has source {layer.source!r}; allowed: input, fixed"
            )
        if any(w >= n_wires for pos in layer.wires for w in pos):
            raise ValueError(f"encoder {name!r} uses wires beyond the task's {n_wires}")
    return layers


def n_features_read(layers: list[Layer]) -> int:
    """How many features an encoder reads: one more than the highest index it names."""
    return 1 + max(
        (i for layer in layers if layer.source == "input" for pos in layer.index for i in pos), default=-1
    )
