"""Error mitigation of deployed measurements: readout (M3) and zero-noise extrapolation.

- Readout: M3 (Nation et al., "Scalable mitigation of measurement errors on quantum
  computers", PRX Quantum 2021) through the `mthree` package. Its calibration is taken
  here, as jobs of the deploy's own job log (so a killed deploy never submits one twice):
  the balanced bit patterns of mthree's HadamardGenerator prepared with X gates on the
  measured physical qubits; each qubit's 2x2 matrix A[measured, prepared] is read off
  their counts and handed to `M3Mitigation.cals_from_matrices`.
- Zero-noise extrapolation (Temme, Bravyi & Gambetta, PRL 2017; digital folding as in
  Giurgica-Tiron et al., IEEE QCE 2020): the routed device circuit U is folded globally
  into U (U^dagger U)^k, noise scale 2k + 1, and every measured outcome probability is
  extrapolated to scale 0 by Richardson's polynomial through the scales measured (1 and
  3 by default: a line; `zne_scales` 1, 3, 5 a parabola, which follows a curved decay
  further at the price of more shot noise). A scale between odd ones also folds the wanted
  share of the two-qubit gates (the errors that dominate) one by one, G G^dagger G, chosen
  at random with a seed: Giurgica-Tiron et al.'s random local folding, which spreads the
  added noise over the circuit. (Folding the circuit's last gates instead, their partial
  global folding, skews the noise toward the end: on a 36-CX classifier the line through
  scales 1 and 1.22 lost 12 points where the unfolded circuit stood; docs/results.md.)
  Probabilities enter every task metric linearly (<Z> per qubit, a Hamiltonian's
  energy), so extrapolating them extrapolates the classifier's margins and the VQE energy.
  qnas folds circuits itself rather than depend on mitiq: mitiq 1.1 pins numpy and pandas
  below the releases qnas runs on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, transpile

from qnas.devices import Device
from qnas.transpiled import MEASURED

METHODS = ("none", "readout", "zne", "readout+zne")
ZNE_SCALES = (1, 3)


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """Return ZNE noise scales as a sorted tuple, or raise naming the bad value and what is allowed.

    The unfolded circuit (scale 1) anchors the extrapolation, and a polynomial through the
    scales needs two of them at least; whole scales come back as ints, so the odd ones
    name deploy folders as they always did.
    """
    chosen = tuple(sorted({int(s) if float(s).is_integer() else float(s) for s in scales}))
    if len(chosen) < 2 or chosen[0] != 1 or len(chosen) != len(scales):
        raise ValueError(
            f"ZNE noise scales must be distinct numbers >= 1, starting at 1, at least two; got {list(scales)}"
        )
    return chosen


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown mitigation {method!r}; allowed: {', '.join(METHODS)}")


def calibration_patterns(n_qubits: int) -> list[tuple[int, ...]]:
    """Return mthree's balanced calibration bit patterns (bit i for logical qubit i)."""
    from mthree.generators import HadamardGenerator

    return [tuple(int(b) for b in bits) for bits in HadamardGenerator(n_qubits)]


def calibration_circuits(device: Device, physical: Sequence[int]) -> list[QuantumCircuit]:
    """Return one circuit per balanced pattern: X on the physical qubits whose bit is 1, then measure them all.

    Each circuit is in the device's basis gates, as the runtime requires.

    Bit i of register `meas` reads physical[i], as in a deployed candidate.
    """
    out = []
    for pattern in calibration_patterns(len(physical)):
        qc = QuantumCircuit(device.n_qubits)
        qc.add_register(ClassicalRegister(len(physical), MEASURED))
        for bit, q in zip(pattern, physical, strict=True):
            if bit:
                qc.x(q)
        qc.measure(list(physical), list(range(len(physical))))
        # In the device's basis gates (fake_rochester's have no x), on the same qubits.
        out.append(
            transpile(qc, device.backend, optimization_level=0, initial_layout=list(range(device.n_qubits)))
        )
    return out


def readout_matrices(counts: Sequence[dict[str, int]], n_qubits: int) -> list[np.ndarray]:
    """Return each qubit's A[measured, prepared] from the counts of the calibration circuits, in pattern order."""
    tallies = np.zeros((n_qubits, 2, 2))
    for pattern, row in zip(calibration_patterns(n_qubits), counts, strict=True):
        for bitstring, count in row.items():
            for q in range(n_qubits):
                tallies[q, int(bitstring[-1 - q]), pattern[q]] += count
    return [t / t.sum(axis=0, keepdims=True) for t in tallies]


def mitigate_readout(probs: np.ndarray, shots: int, matrices: list[np.ndarray]) -> np.ndarray:
    """Return M3's quasi-probabilities (N, 2**n) of measured frequencies (N, 2**n), bit i = qubit i."""
    import mthree

    n = len(matrices)
    mit = mthree.M3Mitigation()
    mit.cals_from_matrices([m.astype(np.float32) for m in matrices])
    counts = [
        {format(k, f"0{n}b"): round(float(c)) for k, c in enumerate(row * shots) if round(float(c)) > 0}
        for row in probs
    ]
    quasis = mit.apply_correction(counts, list(range(n)))
    out = np.zeros_like(probs, dtype=float)
    for i, quasi in enumerate(quasis):
        for bitstring, value in quasi.items():
            out[i, int(bitstring, 2)] = float(value)
    return out


def _counted(body: QuantumCircuit) -> list[int]:
    """Return the indices of the gates a noise scale counts: the two-qubit gates (all, if none)."""
    gates = [i for i, inst in enumerate(body.data) if inst.operation.name != "barrier"]
    return [i for i in gates if body.data[i].operation.num_qubits == 2] or gates


def _folds(n: int, scale: float) -> tuple[int, int]:
    """Return (whole folds, counted gates folded once more) for `scale` times `n` counted gates."""
    whole = int((scale - 1) // 2)
    part = round((scale - 1 - 2 * whole) / 2 * n)
    return (whole + 1, 0) if n and part == n else (whole, part)  # rounded up to a whole fold


def realized_scale(circuit: QuantumCircuit, scale: float) -> float:
    """Return the noise scale `fold` realizes for `circuit`: `scale` up to a whole two-qubit gate."""
    n = len(_counted(circuit.remove_final_measurements(inplace=False)))
    whole, part = _folds(n, scale)
    realized = 1 + 2 * whole + (2 * part / n if n else 0.0)
    return int(realized) if float(realized).is_integer() else realized


def fold(circuit: QuantumCircuit, scale: float, device: Device, seed: int = 0) -> QuantumCircuit:
    """Return the measured device circuit folded to a noise scale: U (U^dagger U)^k, some gates G G^dagger G.

    k = (scale - 1) // 2 whole folds; the remaining share of the two-qubit gates (all
    gates, in a circuit without any) is folded locally, the gates chosen at random from
    `seed` (nothing at an odd scale). The final measurements stay at the end; the inverses
    are translated to the device's basis gates without optimization (optimization would
    cancel the folds), on the same physical qubits.
    """
    if scale < 1:
        raise ValueError(f"a fold's noise scale is a number >= 1, got {scale}")
    body = circuit.remove_final_measurements(inplace=False)
    counted = _counted(body)
    whole, part = _folds(len(counted), scale)
    if whole == 0 and part == 0:
        return circuit
    layout = list(range(device.n_qubits))

    def inverse_of(piece: QuantumCircuit) -> QuantumCircuit:
        return transpile(piece.inverse(), device.backend, optimization_level=0, initial_layout=layout)

    chosen = set(np.random.default_rng(seed).choice(counted, size=part, replace=False).tolist())
    # The body with its chosen gates folded locally, each fold fenced so nothing cancels it.
    locally = body.copy_empty_like()
    for i, inst in enumerate(body.data):
        locally.append(inst)
        if i in chosen:
            gate = body.copy_empty_like()
            gate.append(inst)
            qubits = list(inst.qubits)
            locally.barrier(qubits)
            locally.compose(inverse_of(gate), inplace=True)
            locally.barrier(qubits)
            locally.append(inst)
    folded = body.copy_empty_like()
    folded.compose(locally, inplace=True)
    for _ in range(whole):
        folded.barrier()
        folded.compose(inverse_of(body), inplace=True)
        folded.barrier()
        folded.compose(body, inplace=True)
    register = next(r for r in circuit.cregs if r.name == MEASURED)
    folded.add_register(register)
    for inst in circuit.data:
        if inst.operation.name == "measure":
            folded.append(inst.operation, inst.qubits, inst.clbits)
    return folded


def extrapolate(by_scale: dict[float, np.ndarray]) -> np.ndarray:
    """Return the Richardson (Lagrange) extrapolation to noise scale 0 of arrays measured at each scale."""
    scales = sorted(by_scale)
    out = np.zeros_like(by_scale[scales[0]], dtype=float)
    for k in scales:
        weight = np.prod([(0 - j) / (k - j) for j in scales if j != k])
        out += weight * by_scale[k]
    return out


def signal_kept(
    outputs_by_scale: dict[float, np.ndarray],
    mixed: np.ndarray,
    shot_variance: dict[float, float] | None = None,
) -> dict[float, float]:
    """Return the share of scale 1's signal the outputs keep at each noise scale, shot noise taken out.

    ZNE follows the signal's decay from scale 1 up; where a folded circuit's outputs have
    decayed to the fully mixed state's, it has nothing to follow and extrapolates shot
    noise and noise biases instead (measured: a 36-CX digits4 circuit on fake_rochester
    sits at chance from scale 3 on; see scripts/zne_ceiling.py). The signal of many rows
    (test samples) is their spread across rows, what a classifier's decisions read; of one
    row (an energy, a generator's distribution) its distance from `mixed`, the outputs of
    the uniform distribution. `shot_variance` (per scale, one output's variance from shot
    noise alone) is taken out of both: shot noise spreads the rows too.
    """
    noise = shot_variance or {}

    def signal(scale: float) -> float:
        outputs = np.asarray(outputs_by_scale[scale], dtype=float)
        var = noise.get(scale, 0.0)
        if len(outputs) > 1:
            return float(np.sqrt(max(outputs.var(axis=0).mean() - var, 0.0)))
        return max(float(np.abs(outputs - mixed).mean()) - float(np.sqrt(var)), 0.0)

    base = signal(1)
    return {s: signal(s) / base if base > 0 else 0.0 for s in outputs_by_scale}
