"""A candidate transpiled for a device: map and route on the whole device, then cut to its active qubits.

`transpile_candidate` is the one transpilation of qnas: scoring, fine-tuning, export and
deployment all use it, so the device runs the very circuit that was scored. The cut
circuit acts only on the physical qubits the routed circuit touches, which keeps the
cost of a noisy simulation independent of the device's size (QuantumNAS scored on the
full device). With idle noise, the circuit is scheduled as late as possible (ALAP) with
the device's gate durations and keeps the `delay`s of its idle qubits, which the noisy
engines turn into thermal relaxation. With dynamical decoupling, an active qubit's idle
windows after its first gate hold X-X pulse pairs instead (scored and deployed alike).

A measurement basis (X, Y or Z per logical qubit, qubit 0 first) is appended after
routing, on the physical qubits the logical ones end on, in the device's basis gates:
every basis of a VQE measures the same placed ansatz.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import pi

from qiskit import ClassicalRegister, QuantumCircuit, transpile
from qiskit.circuit.library import U3Gate, XGate
from qiskit.transpiler import PassManager
from qiskit.transpiler.passes import ALAPScheduleAnalysis, PadDelay, PadDynamicalDecoupling

from qnas.devices import Device

# Instructions that neither act on a qubit's state nor cost anything by themselves.
NO_OPS = frozenset({"barrier", "delay"})
# The classical register a deployed circuit is measured into: bit i holds logical qubit i.
MEASURED = "meas"


@dataclass(frozen=True)
class TranspiledCandidate:
    """A candidate transpiled for a device and cut down to its active physical qubits.

    `circuit` acts on len(active_qubits) qubits (local qubit i is physical qubit
    active_qubits[i]), has no measurements, keeps the free Parameters of the input and,
    when `scheduled`, the delays of idle time. `device_circuit` is the transpiled circuit
    on the whole device, unscheduled. Logical qubit i is measured on physical qubit
    final_layout[i] (after routing).
    """

    circuit: QuantumCircuit
    device_circuit: QuantumCircuit
    active_qubits: tuple[int, ...]
    initial_layout: tuple[int, ...]
    final_layout: tuple[int, ...]
    depth: int
    n_2q: int
    duration: float | None
    success_probability: float
    scheduled: bool
    basis: str | None = None
    decoupled: bool = False

    @property
    def n_logical(self) -> int:
        return len(self.final_layout)

    @property
    def measured_local_qubits(self) -> list[int]:
        """Local indices in `circuit` of the qubits holding logical qubits 0, 1, ..."""
        position = {p: i for i, p in enumerate(self.active_qubits)}
        return [position[p] for p in self.final_layout]

    def in_basis(self, device: Device, basis: str) -> TranspiledCandidate:
        """Return this candidate measured in `basis` (one letter X/Y/Z per logical qubit, qubit 0 first)."""
        if len(basis) != self.n_logical or set(basis) - set("XYZ"):
            raise ValueError(
                f"measurement basis {basis!r}: need {self.n_logical} letters, each X, Y or Z (qubit 0 first)"
            )
        if set(basis) == {"Z"}:
            return replace(self, basis=basis)
        rotated = _rotated(self.device_circuit, device, basis, self.final_layout)
        return replace(
            _cut(rotated, device, self.initial_layout, self.final_layout, self.scheduled, self.decoupled),
            basis=basis,
        )

    def measured_device_circuit(self, device: Device) -> QuantumCircuit:
        """Return the whole-device circuit as the device runs it: scheduled if scored so, logical qubit i into bit i."""
        # device_circuit already holds the basis change (in_basis appended it).
        circuit = self.device_circuit
        if self.scheduled:
            circuit = schedule(circuit, device, self.active_qubits, self.decoupled)
        else:
            circuit = circuit.copy()
        register = ClassicalRegister(self.n_logical, MEASURED)
        circuit.add_register(register)
        circuit.measure(list(self.final_layout), register)
        return circuit


def validate_layout(layout: Sequence[int], n_logical: int, device: Device) -> tuple[int, ...]:
    """Return `layout` as a tuple of ints after checking it fits the circuit and the device."""
    layout = tuple(int(q) for q in layout)
    if len(layout) != n_logical:
        raise ValueError(f"layout {list(layout)} has {len(layout)} qubits; the circuit has {n_logical}")
    outside = [q for q in layout if not 0 <= q < device.n_qubits]
    if outside:
        raise ValueError(
            f"layout {list(layout)}: qubits {outside} are not on {device.name} "
            f"(physical qubits 0..{device.n_qubits - 1})"
        )
    repeated = sorted({q for q in layout if layout.count(q) > 1})
    if repeated:
        raise ValueError(f"layout {list(layout)} uses physical qubits {repeated} more than once")
    return layout


def transpile_on_device(
    circuit: QuantumCircuit,
    device: Device,
    layout: Sequence[int] | None,
    optimization_level: int = 2,
    seed: int = 0,
) -> QuantumCircuit:
    """Return `circuit` transpiled for the whole device, logical qubit i starting on layout[i].

    An empty or None layout lets qiskit choose (its default layout is noise-aware).
    """
    return transpile(
        circuit,
        backend=device.backend,
        initial_layout=list(layout) if layout else None,
        optimization_level=optimization_level,
        seed_transpiler=seed,
    )


def transpile_candidate(
    circuit: QuantumCircuit,
    device: Device,
    layout: Sequence[int] | None,
    optimization_level: int = 2,
    seed: int = 0,
    idle_noise: bool = True,
    decoupling: bool = False,
) -> TranspiledCandidate:
    """Return the candidate transpiled for `device`, restricted to its active qubits, with its cost.

    `layout[i]` is the physical qubit of logical qubit i; None lets qiskit choose.
    Final measurements of `circuit` are dropped: the scoring measures every logical
    qubit itself. With `idle_noise` the cut circuit is scheduled (ALAP) and keeps its
    idle qubits' delays, when the device knows its gate durations; with `decoupling` too,
    those delays hold X-X dynamical decoupling pulses (see `schedule`).
    """
    if decoupling and not idle_noise:
        raise ValueError(
            "dynamical decoupling fills scheduled idle time: it needs search.idle_noise true (a schedule)"
        )
    n_logical = circuit.num_qubits
    if n_logical > device.n_qubits:
        raise ValueError(f"circuit has {n_logical} qubits; {device.name} has only {device.n_qubits}")
    if layout is not None:
        layout = validate_layout(layout, n_logical, device)
    if any(inst.operation.name == "measure" for inst in circuit.data):
        circuit = circuit.remove_final_measurements(inplace=False)
    transpiled = transpile_on_device(circuit, device, layout, optimization_level, seed)
    initial = tuple(transpiled.layout.initial_index_layout(filter_ancillas=True))
    final = tuple(transpiled.layout.final_index_layout(filter_ancillas=True))
    # The layout object belongs to the routed ansatz; basis changes appended later keep it.
    return _cut(transpiled, device, initial, final, idle_noise, decoupling)


def _cut(
    transpiled: QuantumCircuit,
    device: Device,
    initial: tuple[int, ...],
    final: tuple[int, ...],
    idle_noise: bool,
    decoupling: bool = False,
) -> TranspiledCandidate:
    """Return the candidate of a whole-device circuit: cut to its active qubits, scheduled on request."""
    active = sorted(
        {
            transpiled.find_bit(q).index
            for inst in transpiled.data
            if inst.operation.name not in NO_OPS
            for q in inst.qubits
        }
        | set(final)
    )
    duration, success = _cost(transpiled, device, final)
    # Scheduling needs the gates' durations only: some calibrations (fake_cambridge,
    # fake_rochester) time their gates but not their measurements.
    scheduled = idle_noise and _gates_timed(transpiled, device)
    if decoupling and not scheduled:
        raise ValueError(
            f"dynamical decoupling needs the gate durations of {device.name}, which its calibration lacks"
        )
    timed = schedule(transpiled, device, active, decoupling) if scheduled else transpiled
    local = {p: i for i, p in enumerate(active)}
    restricted = QuantumCircuit(len(active), global_phase=timed.global_phase)
    for inst in timed.data:
        name = inst.operation.name
        if name == "barrier" or (name == "delay" and not scheduled):
            continue
        restricted.append(inst.operation, [local[timed.find_bit(q).index] for q in inst.qubits])
    gates = [inst for inst in transpiled.data if inst.operation.name not in NO_OPS]
    return TranspiledCandidate(
        circuit=restricted,
        device_circuit=transpiled,
        active_qubits=tuple(active),
        initial_layout=initial,
        final_layout=final,
        depth=_depth(transpiled),
        n_2q=sum(1 for inst in gates if len(inst.qubits) == 2),
        duration=duration,
        success_probability=success,
        scheduled=scheduled,
        decoupled=decoupling,
    )


def schedule(
    circuit: QuantumCircuit, device: Device, active: Sequence[int], decoupling: bool = False
) -> QuantumCircuit:
    """Return `circuit` scheduled as late as possible, idle time as delays on the `active` qubits only.

    ALAP with the device's gate durations, as IBM devices run circuits: a qubit waits
    in |0> until its first gate, then decoheres while the others work. Qubits never
    used get no delays (a simulator would otherwise have to keep them). With
    `decoupling`, each active qubit's idle windows after its first gate hold an X-X pulse
    pair, evenly spaced (dynamical decoupling: Viola, Knill and Lloyd, PRL 82, 2417
    (1999); qiskit's PadDynamicalDecoupling, as IBM Runtime's `dynamical_decoupling`
    option pads), where the window is long enough for two pulses.
    """
    target = device.backend.target
    if decoupling:
        padding = PadDynamicalDecoupling(target=target, dd_sequence=_dd_pulses(device), qubits=list(active))
    else:
        padding = PadDelay(target=target)
    timed = PassManager([ALAPScheduleAnalysis(target=target), padding]).run(circuit)
    keep = set(active)
    out = timed.copy_empty_like()
    for inst in timed.data:
        if inst.operation.name == "delay" and not keep.issuperset(
            timed.find_bit(q).index for q in inst.qubits
        ):
            continue
        out.append(inst.operation, inst.qubits, inst.clbits)
    return out


def _dd_pulses(device: Device) -> list:
    """An X-X pair in the device's basis gates (X, or U3(pi, 0, pi), which is X exactly)."""
    target = device.backend.target
    if target.dt is None:
        # qiskit's padding pass aligns pulses on the sample grid (fake_rochester, fake_cambridge lack it).
        raise ValueError(
            f"dynamical decoupling needs {device.name}'s sample time dt, which its calibration lacks"
        )
    names = target.operation_names
    if "x" in names:
        return [XGate(), XGate()]
    if "u3" in names:
        return [U3Gate(pi, 0, pi)] * 2
    raise ValueError(f"dynamical decoupling needs an x or u3 gate; {device.name} has {sorted(names)}")


def _gates_timed(circuit: QuantumCircuit, device: Device) -> bool:
    """True when the device gives a duration for every gate of `circuit` (on its qubits)."""
    target = device.backend.target
    for inst in circuit.data:
        name = inst.operation.name
        if name in NO_OPS:
            continue
        if name not in target.operation_names:
            return False
        props = target[name].get(tuple(circuit.find_bit(q).index for q in inst.qubits))
        if props is None or props.duration is None:
            return False
    return True


def _depth(circuit: QuantumCircuit) -> int:
    """Depth in gates (delays and barriers do not count)."""
    return circuit.depth(filter_function=lambda inst: inst.operation.name not in NO_OPS)


def _rotated(circuit: QuantumCircuit, device: Device, basis: str, final: Sequence[int]) -> QuantumCircuit:
    """Return `circuit` followed by the basis change of each logical qubit on the physical qubit it ends on."""
    rotated = circuit.copy()
    for logical, letter in enumerate(basis):
        if letter != "Z":
            rotated.compose(_basis_change(device, letter), [final[logical]], inplace=True)
    return rotated


@functools.lru_cache(maxsize=64)
def _basis_change(device: Device, letter: str) -> QuantumCircuit:
    """Return the one-qubit rotation that maps `letter`'s eigenbasis onto Z's, in the device's basis gates.

    X: H; Y: S^dagger then H. Written in the device's gates, it is noisy like any gate.
    """
    rotation = QuantumCircuit(1)
    if letter == "Y":
        rotation.sdg(0)
    rotation.h(0)
    return transpile(rotation, basis_gates=device.basis_gates, optimization_level=1)


def _cost(transpiled: QuantumCircuit, device: Device, measured: Sequence[int]) -> tuple[float | None, float]:
    """Return (duration in s or None, estimated success probability).

    The success probability is QuantumNAS's cheap proxy: the product of (1 - error) over
    the gates and the final measurements.
    """
    target = device.backend.target
    finish: dict[int, float] = {}
    durations_known = True
    success = 1.0
    steps = [
        (inst.operation.name, tuple(transpiled.find_bit(q).index for q in inst.qubits))
        for inst in transpiled.data
        if inst.operation.name not in NO_OPS
    ]
    steps += [("measure", (q,)) for q in measured]
    for name, qargs in steps:
        props = target[name].get(qargs) if name in target.operation_names else None
        if props is not None and props.error is not None:
            success *= 1.0 - props.error
        if props is None or props.duration is None:
            durations_known = False
            continue
        start = max((finish.get(q, 0.0) for q in qargs), default=0.0)
        for q in qargs:
            finish[q] = start + props.duration
    duration = max(finish.values(), default=0.0) if durations_known else None
    return duration, success
