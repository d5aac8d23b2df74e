#!/usr/bin/env python
"""Time one training step of qnas's simulator against torchquantum 0.1.8 on the same circuit.

The circuit is the digits4 model: the "4x4_ryzxy" encoder (RY, RZ, RX, RY layers; in
layer k, wire w reads input feature n*k + w) followed by 2 u3cu3 blocks (U3 on every
wire, then CU3 on the ring (0,1), (1,2), ..., (n-1,0), all angles trainable), <Z> on
every wire, log_softmax over the first 4 wires' <Z> and an NLL loss against 4 classes.
At 4 qubits that is exactly the digits4 classifier; at 10 qubits the same pattern reads
40 features and the ring has 10 CU3s.

One step is forward and backward (no optimizer update) on a batch of 256 samples. Both
simulators run in complex64 on the CPU with torch.set_num_threads(1); the time reported
is the median over repeats after a warm-up, the two simulators taking turns step by step. Before timing, both simulators evaluate the
same weights and inputs and the largest differences of <Z>, loss and weight gradients
are printed, so the comparison is between the same computations.

torchquantum is optional and is never a qnas dependency: this script installs nothing.
When it is absent, its column is skipped and the commands to install it are printed.

    python scripts/bench_sim.py [--batch 256] [--repeats 30] [--qubits 4 10 16] [--wide-batch 32]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

from qnas import sim
from qnas.sim import Layer, expval_z

ENCODER_GATES = ("ry", "rz", "rx", "ry")
N_BLOCKS = 2
N_CLASSES = 4

TQ_INSTALL = """\
    pip install --no-deps torchquantum==0.1.8 torchpack
    pip install opt_einsum loguru toml multimethod matplotlib"""


# --------------------------------------------------------------------------- circuit


def encoder_spec(n_wires: int) -> list[tuple[str, int, int]]:
    """(gate, wire, feature index) of every encoder gate, in order."""
    return [(g, w, n_wires * k + w) for k, g in enumerate(ENCODER_GATES) for w in range(n_wires)]


def ring(n_wires: int) -> list[tuple[int, int]]:
    return [(w, (w + 1) % n_wires) for w in range(n_wires)]


def weight_layout(n_wires: int) -> list[tuple[str, tuple[int, ...], tuple[int, int, int]]]:
    """(gate, wires, weight indices) of every trainable gate, in circuit order."""
    out = []
    pos = 0
    for _ in range(N_BLOCKS):
        for w in range(n_wires):
            out.append(("u3", (w,), (pos, pos + 1, pos + 2)))
            pos += 3
        for pair in ring(n_wires):
            out.append(("cu3", pair, (pos, pos + 1, pos + 2)))
            pos += 3
    return out


def n_weights(n_wires: int) -> int:
    return 3 * 2 * n_wires * N_BLOCKS


def qnas_layers(n_wires: int) -> list[Layer]:
    layers = []
    for k, gate in enumerate(ENCODER_GATES):
        wires = tuple((w,) for w in range(n_wires))
        index = tuple((n_wires * k + w,) for w in range(n_wires))
        layers.append(Layer(gate, wires, "input", index))
    layout = weight_layout(n_wires)
    for start in range(0, len(layout), n_wires):
        chunk = layout[start : start + n_wires]
        gate = chunk[0][0]
        layers.append(Layer(gate, tuple(c[1] for c in chunk), "weight", tuple(c[2] for c in chunk)))
    return layers


def loss_from_expvals(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(F.log_softmax(z[:, :N_CLASSES], dim=1), target)


# --------------------------------------------------------------------------- qnas


class QnasModel:
    def __init__(self, n_wires: int, weights: torch.Tensor, dtype=torch.complex64) -> None:
        self.n_wires = n_wires
        self.layers = qnas_layers(n_wires)
        self.weights = weights.detach().clone().requires_grad_(True)
        self.dtype = dtype

    def expvals(self, x: torch.Tensor) -> torch.Tensor:
        state = sim.run(self.layers, self.n_wires, self.weights, x, dtype=self.dtype)
        return expval_z(state, self.n_wires)

    def step(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.weights.grad = None
        loss = loss_from_expvals(self.expvals(x), target)
        loss.backward()
        return loss

    def grad(self) -> torch.Tensor:
        return self.weights.grad


# --------------------------------------------------------------------------- torchquantum


def import_torchquantum():
    """Import torchquantum 0.1.8 under qiskit 2, or return None when it is not installed.

    0.1.8 imports `qiskit.providers.aer` (now `qiskit_aer`) and, through its plugin, pulse
    and dataset subpackages, qiskit APIs that no longer exist. The simulator itself needs
    none of them, so they are stubbed before the import.
    """
    if importlib.util.find_spec("torchquantum") is None:
        return None
    for name in ("", ".noise", ".noise.device", ".noise.device.parameters"):
        sys.modules.setdefault("qiskit.providers.aer" + name, importlib.import_module("qiskit_aer" + name))
    for name in (
        "torchquantum.plugin",
        "torchquantum.plugin.qiskit",
        "torchquantum.pulse",
        "torchquantum.dataset",
    ):
        stub = types.ModuleType(name)
        stub.__path__ = []
        stub.__all__ = []
        sys.modules[name] = stub
    sys.modules["torchquantum.plugin.qiskit"].QISKIT_INCOMPATIBLE_FUNC_NAMES = ["rot", "multirz", "crot"]
    import torchquantum

    return torchquantum


def make_tq_model(tq, n_wires: int, weights: torch.Tensor):
    """The same circuit with torchquantum's own building blocks (as QuantumNAS builds it)."""

    class TQModel(tq.QuantumModule):
        def __init__(self) -> None:
            super().__init__()
            self.n_wires = n_wires
            self.encoder = tq.GeneralEncoder(
                [{"input_idx": [f], "func": g, "wires": [w]} for g, w, f in encoder_spec(n_wires)]
            )
            self.blocks = torch.nn.ModuleList()
            for _ in range(N_BLOCKS):
                self.blocks.append(tq.layers.Op1QAllLayer(tq.U3, n_wires, has_params=True, trainable=True))
                self.blocks.append(
                    tq.layers.Op2QAllLayer(tq.CU3, n_wires, has_params=True, trainable=True, circular=True)
                )
            self.measure = tq.MeasureAll(tq.PauliZ)

        def ops(self):
            """Trainable ops in circuit order: the order of `weight_layout`."""
            return [op for layer in self.blocks for op in layer.ops_all]

        def expvals(self, x: torch.Tensor) -> torch.Tensor:
            qdev = tq.QuantumDevice(n_wires=self.n_wires, bsz=x.shape[0], device=x.device)
            self.encoder(qdev, x)
            for layer in self.blocks:
                layer(qdev)
            return self.measure(qdev)

        def step(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            self.zero_grad(set_to_none=True)
            loss = loss_from_expvals(self.expvals(x), target)
            loss.backward()
            return loss

        def grad(self) -> torch.Tensor:
            out = torch.zeros(n_weights(n_wires))
            for op, (_, _, idx) in zip(self.ops(), weight_layout(n_wires), strict=True):
                out[list(idx)] = op.params.grad.view(-1)
            return out

    model = TQModel()
    layout = weight_layout(n_wires)
    with torch.no_grad():
        for op, (gate, _wires, idx) in zip(model.ops(), layout, strict=True):
            assert op.name.lower() == gate, (op.name, gate)
            op.params.copy_(weights[list(idx)].view(1, 3))
    return model


# --------------------------------------------------------------------------- timing


def median_ms(fns: dict, warmup: int, repeats: int) -> dict:
    """Median wall time (ms) of each function; the functions take turns in every round.

    Interleaving keeps a change of load on a shared machine from favouring one side.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 10, 16])
    parser.add_argument(
        "--wide-batch",
        type=int,
        default=32,
        help="batch from 14 qubits up: the backward pass keeps every gate's state, about 20 GB at 16 qubits "
        "and batch 256 (default 32: 2.6 GB)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    tq = import_torchquantum()
    print(
        f"one training step (forward + backward), batch {args.batch}, encoder 4x4_ryzxy + {N_BLOCKS} u3cu3 "
        f"blocks, log_softmax + NLL on <Z> of the first {N_CLASSES} wires; complex64, CPU, "
        f"torch.set_num_threads(1) for both; median of {args.repeats} interleaved steps after {args.warmup} warm-up"
    )
    print(f"torch {torch.__version__}; torchquantum {tq.__version__ if tq else 'not installed'}")
    if tq is None:
        print("torchquantum column skipped: torchquantum is not installed. To compare, install it with")
        print(TQ_INSTALL)
        print("(torchquantum 0.1.8 declares qiskit<1.0; --no-deps keeps this environment's qiskit 2.)")

    rows = []
    for n in args.qubits:
        batch = args.batch if n < 14 else min(args.batch, args.wide_batch)
        gen = torch.Generator().manual_seed(n)
        x = torch.rand(batch, len(ENCODER_GATES) * n, generator=gen) * torch.pi
        target = torch.randint(0, N_CLASSES, (batch,), generator=gen)
        weights = torch.rand(n_weights(n), generator=gen) * 2 * torch.pi
        qm = QnasModel(n, weights)
        steps = {"qnas": functools.partial(qm.step, x, target)}
        if tq is not None:
            tm = make_tq_model(tq, n, weights)
            with torch.no_grad():
                dz = (qm.expvals(x) - tm.expvals(x)).abs().max().item()
            dloss = abs(qm.step(x, target).item() - tm.step(x, target).item())
            dgrad = (qm.grad() - tm.grad()).abs().max().item()
            print(
                f"{n} qubits, same weights and inputs: max |d<Z>| {dz:.1e}, |d loss| {dloss:.1e}, "
                f"max |d grad| {dgrad:.1e}"
            )
            steps["tq"] = functools.partial(tm.step, x, target)
        row = {"n": n, "batch": batch, **median_ms(steps, args.warmup, args.repeats)}
        rows.append(row)

    print()
    print(
        f"{'n_qubits':>8}  {'batch':>5}  {'qnas ms/step':>12}  {'torchquantum ms/step':>20}  {'speed-up':>8}"
    )
    for row in rows:
        tq_ms = f"{row['tq']:.2f}" if "tq" in row else "skipped"
        ratio = f"{row['tq'] / row['qnas']:.2f}x" if "tq" in row else "-"
        print(f"{row['n']:>8}  {row['batch']:>5}  {row['qnas']:>12.2f}  {tq_ms:>20}  {ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
