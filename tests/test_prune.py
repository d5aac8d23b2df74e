"""Iterative gate pruning: dropping identity gates leaves the state unchanged and the circuit smaller."""

import itertools
import math

import pytest
import torch
from qiskit.quantum_info import Statevector

from qnas import executors as X
from qnas import prune
from qnas.sim import run
from qnas.space import load_space
from qnas.supercircuit import SuperCircuit
from qnas.tasks import get_task

torch.set_num_threads(1)


def largest(space: str, blocks: int = 2):
    sc = SuperCircuit(load_space(space), 4, max_blocks=blocks, seed=2)
    return sc.subcircuit(sc.largest())


def state(sub, dtype=torch.complex128):
    return run(sub.layers, sub.n_wires, weights=sub.weights, dtype=dtype)[0]


def test_identity_distance_uses_4pi_for_controlled_rotation_angles():
    sub = largest("u3cu3", 1)
    theta = torch.full((sub.n_params,), 2 * math.pi - 0.1, dtype=torch.float64)
    distance = prune.identity_distance(sub, theta)
    periods = prune.identity_periods(sub)
    assert torch.allclose(distance[periods == 2 * math.pi], torch.tensor(0.1, dtype=torch.float64))
    assert torch.allclose(
        distance[periods == 4 * math.pi], torch.tensor(2 * math.pi - 0.1, dtype=torch.float64)
    )
    assert int((periods == 4 * math.pi).sum()) == 4  # the theta of each of the 4 CU3


@pytest.mark.parametrize("space", ["u3cu3", "zzry", "rxyz", "zxxx", "ibm_basis"])
@pytest.mark.parametrize("ratio", [0.3, 0.7, 1.0])
def test_dropped_gates_leave_the_masked_state_unchanged(space, ratio):
    sub = largest(space)
    theta = X.parameters_of(sub)
    pruned = prune.select_pruned(sub, theta, ratio)
    assert int(pruned.sum()) == round(ratio * sub.n_params)
    masked_theta = theta.clone()
    masked_theta[pruned] = 0.0
    masked = X.with_parameters(sub, masked_theta)
    smaller = prune.drop_pruned_gates(sub, theta, pruned)
    assert torch.allclose(state(smaller), state(masked), atol=1e-12)
    before, after = sub.n_gates(), smaller.n_gates()
    assert after["1q"] + after["2q"] < before["1q"] + before["2q"]
    assert len(smaller.to_qiskit().data) < len(sub.to_qiskit().data)
    exported = Statevector(smaller.to_qiskit()).reverse_qargs().data
    assert abs(abs(complex(torch.vdot(state(masked), torch.as_tensor(exported)))) - 1) < 1e-9


def test_u3_is_dropped_only_when_all_its_angles_are_pruned():
    sub = largest("u3cu3", 1)
    pruned = torch.zeros(sub.n_params, dtype=torch.bool)
    pruned[[0, 1]] = True  # two of the first U3's three angles
    assert prune.drop_pruned_gates(sub, X.parameters_of(sub), pruned).n_gates() == sub.n_gates()
    pruned[2] = True
    assert prune.drop_pruned_gates(sub, X.parameters_of(sub), pruned).n_gates()["1q"] == 3


def test_ratio_schedule_ramps_from_initial_to_target():
    ratios = prune.ratio_schedule(0.5, 6)
    assert ratios[0] == pytest.approx(0.05) and ratios[-1] == pytest.approx(0.5)
    assert all(a <= b for a, b in itertools.pairwise(ratios))
    assert prune.ratio_schedule(0.0, 3) == [0.0, 0.0, 0.0]


def test_select_pruned_keeps_what_was_pruned():
    sub = largest("zzry")
    theta = X.parameters_of(sub)
    first = prune.select_pruned(sub, theta, 0.25)
    theta[first] = 3.0  # far from the identity now, but pruned already
    second = prune.select_pruned(sub, theta, 0.5, already=first)
    assert bool((second & first).eq(first).all()) and int(second.sum()) == round(0.5 * sub.n_params)


def test_gate_granularity_prunes_whole_gates():
    sub = largest("u3cu3")
    pruned = prune.select_pruned(sub, X.parameters_of(sub), 0.25, granularity="gate")
    groups = prune.gate_groups(sub)
    assert sum(bool(pruned[g].all()) for g in groups) == round(0.25 * len(groups))
    assert all(bool(pruned[g].all()) or not bool(pruned[g].any()) for g in groups)
    smaller = prune.drop_pruned_gates(sub, X.parameters_of(sub), pruned)
    assert sum(smaller.n_gates().values()) == len(groups) - round(0.25 * len(groups))


def test_iterative_prune_holds_pruned_angles_at_zero_and_shrinks_the_circuit():
    task = get_task("digits4")
    sub = largest("u3cu3", 1)
    settings = prune.PruneSettings(epochs=3, batch_size=64, lr=0.01, granularity="gate")
    result = prune.iterative_prune(X.NoiselessExecutor(sub, task), task, 0.5, settings)
    assert [row["n_pruned"] for row in result.history][-1] == 3 * 4  # 4 of 8 gates, 3 angles each
    assert result.history[0]["ratio"] == pytest.approx(0.05)
    theta = result.subcircuit.weights[sub.parameter_indices()]
    assert torch.all(theta[result.pruned] == 0)
    counts = result.subcircuit.n_gates()
    assert counts["1q"] + counts["2q"] < sum(sub.n_gates().values())
    assert task.evaluate(result.subcircuit, "test")["accuracy"] > 0.3  # still a classifier
