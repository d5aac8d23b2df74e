"""The first noisy score of a candidate in a fresh process on a big device: full noise model against lazy errors.

    python scripts/bench_noise_model.py --device fake_fez

Each side runs in a process of its own (the errors are cached per process, as in a Ray
worker): "full" builds qiskit-aer's whole noise model of the device first (what qnas did
before errors were built one instruction at a time), "lazy" builds only the errors the
candidate's gates need. Both then compile the same 10-qubit circuit's noisy program; the
script checks the two programs agree and prints the seconds and their ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from qiskit import QuantumCircuit
from qnas.devices import get_device
from qnas.noise import compile_program
from qnas.transpiled import transpile_candidate

device_name, mode = sys.argv[1], sys.argv[2]
device = get_device(device_name)
circuit = QuantumCircuit(10)
for layer in range(3):
    for q in range(10):
        circuit.ry(0.1 * (q + layer), q)
    for q in range(9):
        circuit.cx(q, q + 1)
candidate = transpile_candidate(circuit, device, None, 1, seed=0)
start = time.perf_counter()
if mode == "full":
    _ = device.noise_model  # the whole model, as before
    from qnas import noise_model
    noise_model._calibration.cache_clear()
    noise_model._calibration = lambda device: None  # read the full model's tables
program = compile_program(candidate, device, False)
seconds = time.perf_counter() - start
digest = float(sum(np.abs(s.tensor).sum() for s in program if s.tensor is not None))
print(json.dumps({"mode": mode, "seconds": seconds, "steps": len(program), "digest": digest}))
"""


def run(device: str, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, device, mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="fake_fez")
    args = parser.parse_args()
    full, lazy = run(args.device, "full"), run(args.device, "lazy")
    assert full["steps"] == lazy["steps"] and abs(full["digest"] - lazy["digest"]) < 1e-9 * full["digest"]
    print(f"{args.device}: first noisy program of a 10-qubit candidate in a fresh process")
    print(f"  full noise model first: {full['seconds']:.2f} s")
    print(f"  errors built lazily:    {lazy['seconds']:.2f} s")
    print(f"  ratio: {full['seconds'] / lazy['seconds']:.1f}x (the two programs agree)")


if __name__ == "__main__":
    main()
