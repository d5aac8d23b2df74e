"""Routing cost of sampled layouts, their qubits in random order against a path through the group.

    python scripts/layout_order.py [--device fake_fez] [--qubits 10] [--blocks 2] [--layouts 48]

Draws `--layouts` layouts as a search does (half from the device's best calibrated groups,
half grown at random; `GenomeSpace.sample`), and transpiles the largest `--blocks`-block
u3cu3 circuit with the ryzxy encoder onto each group twice: its qubits in the drawn random
order (search.layout_order: random) and along a path through the group (path). Prints,
per order, the mean active qubits after routing, how many exceed 12 (the default
search.max_active_qubits: such a candidate fails), the mean two-qubit gate count and the
mean estimated success probability. Seeded; one core.
"""

from __future__ import annotations

import argparse

import numpy as np

from qnas.devices import calibrated_errors, get_device
from qnas.evolution.genome import GenomeSpace, best_layouts
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks.encoders import get_encoder, n_features_read
from qnas.transpiled import transpile_candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="fake_fez")
    parser.add_argument("--qubits", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--layouts", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = get_device(args.device)
    n = args.qubits
    edges = tuple(tuple(int(q) for q in e) for e in device.backend.coupling_map.get_edges())
    best = best_layouts(n, edges, *calibrated_errors(device), k=10)
    space = GenomeSpace(n, device.n_qubits, ((0,),), coupling=edges, preferred_layouts=tuple(best))
    sc = SuperCircuit(load_space("u3cu3"), n, args.blocks, seed=args.seed)
    encoder = get_encoder("ryzxy", n)
    circuit = sc.subcircuit(sc.largest()).to_qiskit(
        bound=True, encoder=encoder, n_inputs=n_features_read(encoder)
    )
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[tuple[int, int, float]]] = {"random": [], "path": []}
    for _ in range(args.layouts):
        drawn = space.sample(rng).layout
        for order, layout in (("random", drawn), ("path", space.path_through(drawn, rng))):
            candidate = transpile_candidate(circuit, device, layout, 2, args.seed)
            rows[order].append((len(candidate.active_qubits), candidate.n_2q, candidate.success_probability))
    print(f"{args.device}, {n} logical qubits, u3cu3 x {args.blocks} + ryzxy, {args.layouts} sampled layouts")
    print(f"{'order':8s} {'active':>7s} {'> 12':>6s} {'n_2q':>6s} {'success':>8s}")
    for order, values in rows.items():
        a = np.array(values, dtype=float)
        over = int((a[:, 0] > 12).sum())
        print(f"{order:8s} {a[:, 0].mean():7.1f} {over:6d} {a[:, 1].mean():6.1f} {a[:, 2].mean():8.3f}")


if __name__ == "__main__":
    main()
