"""Gate matrices, vectorized over any leading batch shape.

Conventions: a k-qubit matrix acts on wires (w_0, ..., w_{k-1}) with w_0 the most
significant bit of the matrix index, so the controlled gates read [[I, 0], [0, U]] with
the control first. Every matrix equals qiskit's gate of the same name (global phase
included); tests/test_sim.py checks each one against `qiskit.quantum_info.Operator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MatrixFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GateSpec:
    """What the simulator needs to know about a gate: its size and how to build it."""

    name: str
    n_qubits: int
    n_params: int
    matrix: MatrixFn  # angles (..., n_params) -> matrices (..., 2**n_qubits, 2**n_qubits)


def _cplx(real: torch.Tensor, imag: torch.Tensor | None = None) -> torch.Tensor:
    dtype = torch.complex128 if real.dtype == torch.float64 else torch.complex64
    if imag is None:
        imag = torch.zeros_like(real)
    return torch.complex(real, imag).to(dtype)


# The parametrized matrices are built from a few whole-tensor ops (one stack of parts)
# rather than entry by entry: with small batches each torch op, forward and backward,
# costs more than its arithmetic.


def _from_parts(parts: list[torch.Tensor]) -> torch.Tensor:
    """2x2 complex matrices from the (real, imag) of their 4 entries in row-major order."""
    out = torch.stack(parts, -1)
    return torch.view_as_complex(out.view(*out.shape[:-1], 2, 2, 2))


def _half_angle(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = t[..., 0] * 0.5
    return torch.cos(h), torch.sin(h)


def _rx(t: torch.Tensor) -> torch.Tensor:
    c, s = _half_angle(t)
    zero, ms = torch.zeros_like(c), -s
    return _from_parts([c, zero, zero, ms, zero, ms, c, zero])


def _ry(t: torch.Tensor) -> torch.Tensor:
    c, s = _half_angle(t)
    zero = torch.zeros_like(c)
    return _from_parts([c, zero, -s, zero, s, zero, c, zero])


def _rz(t: torch.Tensor) -> torch.Tensor:
    c, s = _half_angle(t)
    zero = torch.zeros_like(c)
    return _from_parts([c, -s, zero, zero, zero, zero, c, s])


# Phases of the U3 entries as a linear map of (theta, phi, lambda): 0, lambda, phi, phi + lambda.
_U3_PHASES = torch.tensor([[0.0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 1]], dtype=torch.float64)


def _u3(t: torch.Tensor) -> torch.Tensor:
    """[[c, -e^{i lam} s], [e^{i phi} s, e^{i (phi + lam)} c]] as moduli times phases."""
    c, s = _half_angle(t)
    modulus = torch.stack([c, -s, s, c], -1)
    phase = t @ _U3_PHASES.to(dtype=t.dtype, device=t.device)
    # Not torch.polar: its gradient assumes a nonnegative modulus.
    parts = torch.stack([modulus * torch.cos(phase), modulus * torch.sin(phase)], -1)
    return torch.view_as_complex(parts).view(*t.shape[:-1], 2, 2)


_TOP_LEFT_EYE = torch.diag(torch.tensor([1, 1, 0, 0], dtype=torch.complex128))


def _controlled(u: torch.Tensor) -> torch.Tensor:
    """[[I, 0], [0, U]] for a batch of 2x2 matrices U."""
    return F.pad(u, (2, 0, 2, 0)) + _TOP_LEFT_EYE.to(dtype=u.dtype, device=u.device)


def _pauli_rotation(pauli: torch.Tensor) -> MatrixFn:
    """exp(-i theta/2 P) = cos(theta/2) I - i sin(theta/2) P for a 4x4 Pauli product P."""

    def matrix(t: torch.Tensor) -> torch.Tensor:
        h = t[..., 0] / 2
        c = _cplx(torch.cos(h))[..., None, None]
        s = _cplx(torch.sin(h))[..., None, None]
        p = pauli.to(c.dtype).to(c.device)
        eye = torch.eye(4, dtype=c.dtype, device=c.device)
        return c * eye - 1j * s * p

    return matrix


def _fixed(matrix: list[list[complex]]) -> MatrixFn:
    base = torch.tensor(matrix, dtype=torch.complex128)

    def build(t: torch.Tensor) -> torch.Tensor:
        dtype = torch.complex128 if t.dtype == torch.float64 else torch.complex64
        return base.to(dtype=dtype, device=t.device).expand(*t.shape[:-1], *base.shape)

    return build


_X = [[0, 1], [1, 0]]
_Y = [[0, -1j], [1j, 0]]
_Z = [[1, 0], [0, -1]]
_I2 = [[1, 0], [0, 1]]
_r2 = 1 / math.sqrt(2)


def _kron(a: list[list[complex]], b: list[list[complex]]) -> torch.Tensor:
    return torch.kron(torch.tensor(a, dtype=torch.complex128), torch.tensor(b, dtype=torch.complex128))


def _ctrl_fixed(u: list[list[complex]]) -> list[list[complex]]:
    out = [[0j] * 4 for _ in range(4)]
    out[0][0] = out[1][1] = 1
    for i in range(2):
        for j in range(2):
            out[2 + i][2 + j] = u[i][j]
    return out


_SPECS = [
    GateSpec("h", 1, 0, _fixed([[_r2, _r2], [_r2, -_r2]])),
    GateSpec("x", 1, 0, _fixed(_X)),
    GateSpec("y", 1, 0, _fixed(_Y)),
    GateSpec("z", 1, 0, _fixed(_Z)),
    GateSpec("s", 1, 0, _fixed([[1, 0], [0, 1j]])),
    GateSpec("t", 1, 0, _fixed([[1, 0], [0, complex(_r2, _r2)]])),
    GateSpec("sx", 1, 0, _fixed([[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]])),
    GateSpec("rx", 1, 1, _rx),
    GateSpec("ry", 1, 1, _ry),
    GateSpec("rz", 1, 1, _rz),
    GateSpec("u3", 1, 3, _u3),
    GateSpec("cx", 2, 0, _fixed(_ctrl_fixed(_X))),
    GateSpec("cz", 2, 0, _fixed(_ctrl_fixed(_Z))),
    GateSpec("swap", 2, 0, _fixed([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])),
    GateSpec("crx", 2, 1, lambda t: _controlled(_rx(t))),
    GateSpec("cry", 2, 1, lambda t: _controlled(_ry(t))),
    GateSpec("crz", 2, 1, lambda t: _controlled(_rz(t))),
    GateSpec("cu3", 2, 3, lambda t: _controlled(_u3(t))),
    GateSpec("rxx", 2, 1, _pauli_rotation(_kron(_X, _X))),
    GateSpec("ryy", 2, 1, _pauli_rotation(_kron(_Y, _Y))),
    GateSpec("rzz", 2, 1, _pauli_rotation(_kron(_Z, _Z))),
    # qiskit's RZXGate on (q0, q1) is exp(-i theta/2 Z_q0 X_q1): Z on the first wire.
    GateSpec("rzx", 2, 1, _pauli_rotation(_kron(_Z, _X))),
]

GATES: dict[str, GateSpec] = {spec.name: spec for spec in _SPECS}


def gate_spec(name: str) -> GateSpec:
    """Return the GateSpec of `name`; unknown names raise with the allowed ones."""
    try:
        return GATES[name]
    except KeyError:
        raise ValueError(f"unknown gate {name!r}; allowed: {', '.join(sorted(GATES))}") from None
