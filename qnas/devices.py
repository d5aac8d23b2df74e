"""The device registry: calibrated fake IBM backends, live backends and saved snapshots.

A device is found by name, the way PennyLane finds its devices: `fake_quito` for the
calibration snapshot that `qiskit_ibm_runtime.fake_provider` ships, `ibm_brisbane` for
a live backend (needs a saved IBM Quantum account or QISKIT_IBM_TOKEN), or the path of
a JSON file written by `save_snapshot`, so a search can be repeated offline against one
day's calibration.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qiskit.providers import BackendV2
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime import fake_provider
from qiskit_ibm_runtime.fake_provider.backend_encoder import BackendEncoder
from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

from qnas import registry

SNAPSHOT_FORMAT = "qnas-calibration-snapshot"
SNAPSHOT_VERSION = 1
# Instructions that are not gates a candidate is built from.
_NON_GATES = frozenset(
    {"measure", "reset", "delay", "barrier", "if_else", "for_loop", "switch_case", "while_loop"}
)
_LIVE_PREFIXES = ("ibm_", "ibmq_")


class SnapshotBackend(FakeBackendV2):
    """A fake backend whose configuration and properties come from dicts, not package files.

    It behaves exactly like the fake backends of `qiskit_ibm_runtime.fake_provider` (same
    Target, same noise model), since those are built from the same two JSON documents.
    """

    conf_filename = "configuration"
    props_filename = "properties"
    dirname = ""

    def __init__(self, backend_name: str, configuration: dict, properties: dict | None) -> None:
        self.backend_name = backend_name
        self._snapshot = {"configuration": configuration, "properties": properties}
        if properties is None:
            self.props_filename = ""
        super().__init__()

    def _load_json(self, filename: str) -> dict:
        # qiskit_ibm_runtime decodes these dicts in place: hand out copies.
        return copy.deepcopy(self._snapshot[filename])


@dataclass(eq=False)
class Device:
    """A calibrated device: its BackendV2 and the noise model built from its calibration."""

    name: str
    backend: BackendV2
    # A user's own noise model (`qnas.register_device`), used instead of the backend's.
    custom_noise: NoiseModel | None = None

    @property
    def n_qubits(self) -> int:
        return int(self.backend.num_qubits)

    @property
    def basis_gates(self) -> list[str]:
        return sorted(name for name in self.backend.operation_names if name not in _NON_GATES)

    @functools.cached_property
    def noise_model(self) -> NoiseModel:
        """The device's NoiseModel, built once per Device.

        `get_device` returns one Device per name per process, so this is one noise
        model per calibration snapshot per process. Calibrated fake and snapshot
        backends build it from their properties, as their own simulator (and so the
        runtime's local testing mode) does: that keeps each qubit's asymmetric readout
        errors (P(1|0) != P(0|1)), which `NoiseModel.from_backend` averages into one.
        """
        if self.custom_noise is not None:
            return self.custom_noise
        if isinstance(self.backend, FakeBackendV2):
            return self.backend._get_noise_model_from_backend_v2()
        return NoiseModel.from_backend(self.backend)

    def __repr__(self) -> str:
        return f"Device({self.name!r}, n_qubits={self.n_qubits})"


@functools.cache
def fake_backend_classes() -> dict[str, type[FakeBackendV2]]:
    """Return {short name: class} for every fake backend of qiskit_ibm_runtime.fake_provider."""
    classes: dict[str, type[FakeBackendV2]] = {}
    for attr in dir(fake_provider):
        cls = getattr(fake_provider, attr)
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2:
            name = getattr(cls, "backend_name", None) or _short_name(attr)
            classes[name] = cls
    return dict(sorted(classes.items()))


def _short_name(class_name: str) -> str:
    """FakeQuitoV2 -> fake_quito."""
    stem = class_name.removeprefix("Fake").removesuffix("V2")
    return "fake_" + stem.lower()


def get_device(name: str) -> Device:
    """Return the Device called `name`: a fake backend, a snapshot file path or a live backend.

    Raises ValueError for an unknown name, listing the closest known names.
    """
    if name in fake_backend_classes():
        return _fake_device(name)
    registered = registry.device(name)
    if registered is not None:
        return registered
    path = Path(name).expanduser()
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ValueError(f"calibration snapshot {str(path)!r} does not exist")
        resolved = path.resolve()
        return _snapshot_device(str(resolved), resolved.stat().st_mtime_ns)
    if name.startswith(_LIVE_PREFIXES):
        return _live_device(name)
    close = difflib.get_close_matches(name, list(fake_backend_classes()), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    mine = registry.names("device")
    yours = f", the registered {', '.join(mine)}" if mine else ""
    raise ValueError(
        f"unknown device {name!r}{hint} Known devices: the fake_* names of `qnas devices`{yours}, "
        "a calibration snapshot file (.json), or a live IBM backend name (ibm_*)."
    )


@functools.cache
def _fake_device(name: str) -> Device:
    return Device(name, fake_backend_classes()[name]())


@functools.cache
def _snapshot_device(path: str, mtime_ns: int) -> Device:
    """The Device of a snapshot file; `mtime_ns` keys the cache so an edited file is re-read."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path!r} is not a qnas calibration snapshot (format {data.get('format')!r})")
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{path!r}: snapshot version {data.get('version')!r}, supported: {SNAPSHOT_VERSION}")
    backend = SnapshotBackend(data["backend_name"], data["configuration"], data["properties"])
    return Device(path, backend)


@functools.cache
def _live_device(name: str) -> Device:
    # Imported here: the service pulls in network clients that offline use never needs.
    from qiskit_ibm_runtime import QiskitRuntimeService

    token = os.environ.get("QISKIT_IBM_TOKEN")
    if not token and not QiskitRuntimeService.saved_accounts():
        raise RuntimeError(
            f"device {name!r} is a live IBM backend, but no IBM Quantum account is set up. Save one "
            "once with `QiskitRuntimeService.save_account(token=..., instance=..., set_as_default=True)` "
            "or set the environment variable QISKIT_IBM_TOKEN; fake_* devices work offline."
        )
    try:
        if token:
            service = QiskitRuntimeService(token=token, instance=os.environ.get("QISKIT_IBM_INSTANCE"))
        else:
            service = QiskitRuntimeService()
        backend = service.backend(name)
    except Exception as exc:
        # The message of a failed login may echo credentials: report the kind of failure only.
        raise RuntimeError(f"could not reach IBM backend {name!r} ({type(exc).__name__})") from None
    return Device(name, backend)


def calibration(device: Device) -> tuple[dict, dict | None]:
    """Return (configuration, properties) of `device` as JSON-ready dicts."""
    backend = device.backend
    if isinstance(backend, SnapshotBackend):
        return copy.deepcopy(backend._snapshot["configuration"]), copy.deepcopy(
            backend._snapshot["properties"]
        )
    if isinstance(backend, FakeBackendV2):
        # The raw package files: exactly what the fake backend decodes at start-up.
        conf = backend._load_json(backend.conf_filename)
        props = backend._load_json(backend.props_filename) if backend.props_filename else None
        return conf, props
    properties = backend.properties(refresh=True)
    return backend.configuration().to_dict(), properties.to_dict() if properties else None


def save_snapshot(device_or_name: Device | str, path: str | os.PathLike) -> Path:
    """Return the path written: the device's calibration as a JSON snapshot for `get_device`."""
    device = get_device(device_or_name) if isinstance(device_or_name, str) else device_or_name
    conf, props = calibration(device)
    backend_name = getattr(device.backend, "backend_name", None) or device.backend.name
    data: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "backend_name": backend_name,
        "source": device.name,
        "saved_at": datetime.now(timezone.utc).isoformat(),
        "configuration": conf,
        "properties": props,
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, cls=BackendEncoder), encoding="utf-8")
    return out


def error_summary(device: Device) -> dict[str, float]:
    """Return the median 1-qubit gate, 2-qubit gate and readout errors of `device` (NaN if absent)."""
    target = device.backend.target
    errors: dict[str, list[float]] = {"1q": [], "2q": [], "readout": []}
    for name in target.operation_names:
        if name in _NON_GATES - {"measure"}:
            continue
        for qargs, props in (target[name] or {}).items():
            if props is None or props.error is None or qargs is None:
                continue
            kind = "readout" if name == "measure" else ("1q" if len(qargs) == 1 else "2q")
            # Virtual gates (rz) have error 0 and would drag the 1-qubit median to 0.
            if kind == "1q" and props.error == 0 and not props.duration:
                continue
            errors[kind].append(props.error)
    return {kind: float(np.median(v)) if v else float("nan") for kind, v in errors.items()}


def calibrated_errors(device: Device) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
    """Per-qubit readout errors and per-coupling 2-qubit gate errors (the worst gate's) of `device`."""
    target = device.backend.target
    readout: dict[int, float] = {}
    pairs: dict[tuple[int, int], float] = {}
    for name in target.operation_names:
        if name in _NON_GATES - {"measure"}:
            continue
        for qargs, props in (target[name] or {}).items():
            if props is None or props.error is None or qargs is None:
                continue
            if name == "measure":
                readout[qargs[0]] = props.error
            elif len(qargs) == 2:
                pairs[qargs] = max(pairs.get(qargs, 0.0), props.error)
    return readout, pairs


def list_devices(names: list[str] | None = None) -> pd.DataFrame:
    """Return one row per device (all fake backends by default) with its size and median errors."""
    rows = []
    for name in names if names is not None else [*fake_backend_classes(), *registry.names("device")]:
        device = get_device(name)
        summary = error_summary(device)
        rows.append(
            {
                "name": name,
                "n_qubits": device.n_qubits,
                "basis_gates": " ".join(device.basis_gates),
                "median_1q_error": summary["1q"],
                "median_2q_error": summary["2q"],
                "median_readout_error": summary["readout"],
            }
        )
    return pd.DataFrame(rows)
