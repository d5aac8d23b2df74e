import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qnas.sim import run
from qnas.space import available_spaces, load_space
from qnas.supercircuit import ArchSampler, SuperCircuit


def test_the_quantumnas_spaces_ship():
    assert {"u3cu3", "zzry", "rxyz", "zxxx", "ibm_basis"} <= set(available_spaces())


@pytest.mark.parametrize("name", ["u3cu3", "zzry", "rxyz", "zxxx", "ibm_basis"])
def test_subcircuit_to_qiskit_is_the_same_state(name):
    space = load_space(name)
    sc = SuperCircuit(space, 4, max_blocks=3, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        genes = space.sample(rng, 4, 3)
        sub = sc.subcircuit(genes)
        psi = run(sub.layers, 4, weights=sc.weights.detach(), dtype=torch.complex128)[0].numpy()
        qc_state = Statevector(sub.to_qiskit(bound=True)).reverse_qargs().data
        assert abs(np.vdot(psi, qc_state)) ** 2 > 1 - 1e-6
        free = sub.to_qiskit(bound=False)
        assert free.num_parameters == sub.n_params


def test_front_sharing_and_weight_sharing():
    space = load_space("u3cu3")
    sc = SuperCircuit(space, 4, max_blocks=2)
    # block 0: U3 on 2 wires, CU3 on 3 ring pairs; block 1: inactive
    sub = sc.subcircuit((2, 3, 4, 4, 1))
    assert sub.layers[0].wires == ((0,), (1,))
    assert sub.layers[1].wires == ((0, 1), (1, 2), (2, 3))
    assert sub.weights is sc.weights  # a view, not a copy
    bigger = sc.subcircuit((4, 4, 4, 4, 2))
    assert set(sub.parameter_indices()) < set(bigger.parameter_indices())
    # genomes that differ only in the inactive block are the same circuit
    assert sc.subcircuit((2, 3, 1, 1, 1)).layers == sub.layers
    assert sc.canonical((2, 3, 1, 1, 1)) == sc.canonical((2, 3, 4, 4, 1))


def test_bad_genes_name_the_value_and_the_choices():
    space = load_space("u3cu3")
    sc = SuperCircuit(space, 4, max_blocks=2)
    with pytest.raises(
        ValueError, match=r"width of block 0 layer 0 = 5 not allowed; allowed: \[1, 2, 3, 4\]"
    ):
        sc.subcircuit((5, 4, 4, 4, 2))
    with pytest.raises(ValueError, match=r"blocks = 3 not allowed; allowed: \[1, 2\]"):
        sc.subcircuit((4, 4, 4, 4, 3))


def test_unknown_space_lists_close_matches(tmp_path):
    with pytest.raises(ValueError, match=r"unknown space 'u3cu' \(did you mean u3cu3\?\); allowed: .*zzry"):
        load_space("u3cu")


def test_a_new_space_is_a_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nmax_blocks: 2\nlayers:\n  - {gate: rx, pattern: wires}\n  - {gate: crz, pattern: chain}\n"
    )
    space = load_space(str(path))
    sc = SuperCircuit(space, 3)
    assert sc.gene_choices == [[1, 2, 3], [1, 2], [1, 2, 3], [1, 2], [1, 2]]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmax_blocks: 2\nlayers:\n  - {gate: foo, pattern: wires}\n")
    with pytest.raises(ValueError, match="unknown gate 'foo'"):
        load_space(str(bad))


def test_restricted_sampler_changes_at_most_limit_diff_genes():
    choices = load_space("u3cu3").gene_choices(4)
    sampler = ArchSampler(choices, "restricted", limit_diff=2, seed=3)
    prev = sampler.sample()
    changed = []
    for _ in range(200):
        genes = sampler.sample()
        changed.append(sum(a != b for a, b in zip(prev, genes, strict=True)))
        prev = genes
    assert max(changed) <= 2 and max(changed) >= 1
    uniform = ArchSampler(choices, "uniform", seed=3)
    a, b = uniform.sample(), uniform.sample()
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 2


def test_sandwich_sampler_alternates_with_the_largest():
    choices = load_space("u3cu3").gene_choices(4, 3)
    sampler = ArchSampler(choices, "sandwich", limit_diff=2, seed=0)
    draws = [sampler.sample() for _ in range(6)]
    largest = tuple(c[-1] for c in choices)
    assert draws[1] == draws[3] == draws[5] == largest
    assert draws[0] != largest
