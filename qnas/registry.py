"""What a user adds to qnas without editing it: tasks, encoders, objectives and devices.

Each `register_*` call puts a name beside the built-in ones (registering it again
replaces it; a built-in name is refused), and every place that looks a
name up (the config check, `get_task`, `get_device`, the evaluator) finds it. A separate
package registers its own on import through the entry-point group `qnas.plugins`: each
entry point names a function that takes no argument and calls `register_*`; qnas calls it
the first time a name is looked up. So does a user's module registered by hand before
`qnas.search` runs.

Ray workers are fresh processes that never ran the user's registration code, so the
registrations a search needs travel with the evaluator's payload (`snapshot`, `restore`):
cloudpickle carries functions and classes defined in a notebook or script by value.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit.providers import BackendV2
    from qiskit_aer.noise import NoiseModel

    from qnas.devices import Device
    from qnas.sim import Layer
    from qnas.tasks.base import Task

ENTRY_POINT_GROUP = "qnas.plugins"
DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Objective:
    """A user's objective: `function(subcircuit=, transpiled=, task=, device=) -> float` and its direction."""

    name: str
    function: Callable[..., float]
    direction: str


# name -> Task, or a function of (seed, max_train) returning one (so the split follows the run's seed)
_tasks: dict[str, Any] = {}
# name -> list of Layers, or a function of n_wires returning one
_encoders: dict[str, Any] = {}
_objectives: dict[str, Objective] = {}
_devices: dict[str, Device] = {}
_plugins_loaded = False


def register_task(name: str, task: Task | Callable[..., Task]) -> None:
    """Make `task` the task called `name` (`task.name=` in a config).

    `task` is a Task (see `qnas.classification_task`, `qnas.vqe_task`) or a function
    `factory(seed: int, max_train: int | None) -> Task` called with the run's seed, so
    that the data split follows the config's seed like the built-in tasks' does.
    """
    from qnas.tasks import builtin_task_names

    _check_name(name, "task", builtin_task_names())
    _tasks[name] = task


def register_encoder(name: str, encoder: Sequence[Layer] | Callable[[int], Sequence[Layer]]) -> None:
    """Make `encoder` the encoder called `name` (`task.encoder=` in a config, classification tasks).

    An encoder is a list of `qnas.Layer`s with source "input" (each position reads the
    sample features its `index` names), or a function of the number of wires returning one.
    """
    from qnas.tasks.encoders import BUILTIN_ENCODERS

    _check_name(name, "encoder", BUILTIN_ENCODERS)
    _encoders[name] = encoder


def register_objective(name: str, function: Callable[..., float], direction: str) -> None:
    """Make `function` the objective called `name` (listed in `search.objectives`).

    The evaluator calls `function(subcircuit=, transpiled=, task=, device=)` per candidate:
    the Subcircuit with its inherited weights, its TranspiledCandidate on the device (the
    routed circuit, `n_2q`, `depth`, `active_qubits`, `final_layout`), the Task and the
    Device; it returns a float that the search minimises or maximises (`direction`).
    """
    from qnas.config import BUILTIN_OBJECTIVES

    if direction not in DIRECTIONS:
        raise ValueError(f"objective {name!r}: direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    if not callable(function):
        raise ValueError(f"objective {name!r}: {function!r} is not callable")
    _check_name(name, "objective", BUILTIN_OBJECTIVES)
    _objectives[name] = Objective(name, function, direction)


def register_device(
    name: str,
    device: BackendV2 | NoiseModel,
    coupling_map: Sequence[Sequence[int]] | None = None,
    n_qubits: int | None = None,
) -> None:
    """Make a user's backend (a `BackendV2`) or noise model the device called `name`.

    A BackendV2 brings its coupling map, gate durations (for idle noise) and calibration
    (for the preferred layouts); its noise model is built as for IBM's backends. A bare
    `NoiseModel` carries none of these: give `coupling_map` (default: all to all) and
    `n_qubits` (default: the qubits the noise model names); its circuits are scored with
    that noise model but without idle noise (no durations), and layouts are not ranked.
    """
    from qiskit.providers import BackendV2
    from qiskit_aer.noise import NoiseModel

    from qnas.devices import Device, fake_backend_classes

    _check_name(name, "device", fake_backend_classes())
    if isinstance(device, BackendV2):
        _devices[name] = Device(name, device)
    elif isinstance(device, NoiseModel):
        _devices[name] = Device(name, _backend_of(device, coupling_map, n_qubits), custom_noise=device)
    else:
        raise ValueError(
            f"device {name!r}: got a {type(device).__name__}; give a qiskit BackendV2 or a qiskit_aer NoiseModel"
        )


def _backend_of(
    noise_model: NoiseModel, coupling_map: Sequence[Sequence[int]] | None, n_qubits: int | None
) -> BackendV2:
    """A backend with the noise model's basis gates on `coupling_map`, no calibration of its own."""
    from qiskit.providers.fake_provider import GenericBackendV2

    named = [q for q in noise_model.noise_qubits]
    edges = [list(e) for e in coupling_map] if coupling_map is not None else None
    size = n_qubits or max([*named, *(q for e in edges or [] for q in e)], default=-1) + 1
    if size < 1:
        raise ValueError("a NoiseModel naming no qubits needs n_qubits")
    if edges is None:
        edges = [[a, b] for a in range(size) for b in range(size) if a != b]
    gates = [g for g in noise_model.basis_gates if g not in ("id", "delay", "reset", "measure")]
    return GenericBackendV2(size, basis_gates=gates, coupling_map=edges, noise_info=False, seed=0)


def _check_name(name: str, kind: str, builtin: Any) -> None:
    # Registering a name again replaces it (a notebook cell run twice); a built-in name stays qnas's.
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} name is a non-empty string, got {name!r}")
    if name in builtin:
        raise ValueError(f"{kind} {name!r} is built into qnas; register yours under another name")


def load_plugins() -> None:
    """Call every `qnas.plugins` entry point once, so installed packages register their names."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()()
        except Exception as err:
            raise RuntimeError(
                f"the qnas plugin {point.name!r} ({point.value}) failed to register: {type(err).__name__}: {err}"
            ) from err


def task(name: str) -> Any:
    """The registered task (or its factory) called `name`, or None."""
    load_plugins()
    return _tasks.get(name)


def encoder(name: str) -> Any:
    load_plugins()
    return _encoders.get(name)


def objective(name: str) -> Objective | None:
    load_plugins()
    return _objectives.get(name)


def device(name: str) -> Device | None:
    load_plugins()
    return _devices.get(name)


def names(kind: str) -> list[str]:
    """The registered names of one kind: "task", "encoder", "objective" or "device"."""
    load_plugins()
    return sorted({"task": _tasks, "encoder": _encoders, "objective": _objectives, "device": _devices}[kind])


def unknown(kind: str, name: str, known: Sequence[str]) -> ValueError:
    """The error for a name nothing knows: the closest known names, then all of them."""
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint}; allowed: {', '.join(known)}")


def snapshot() -> dict[str, dict]:
    """Every registration, for a worker process to `restore`."""
    load_plugins()
    return {
        "tasks": dict(_tasks),
        "encoders": dict(_encoders),
        "objectives": dict(_objectives),
        "devices": dict(_devices),
    }


def restore(saved: dict[str, dict] | None) -> None:
    """Add a `snapshot`'s registrations to this process's (a worker's)."""
    if not saved:
        return
    _tasks.update(saved.get("tasks", {}))
    _encoders.update(saved.get("encoders", {}))
    _objectives.update(saved.get("objectives", {}))
    _devices.update(saved.get("devices", {}))
