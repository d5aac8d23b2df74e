import itertools

import numpy as np
import pytest

from qnas.evolution.engine import EvolutionSettings, evolve
from qnas.evolution.genome import Genome, GenomeSpace, best_layouts, check_layout
from qnas.evolution.operators import Mutation, UniformCrossover
from qnas.evolution.pareto import (
    crowding_distance,
    hypervolume,
    non_dominated_fronts,
    nsga2_select,
    pareto_front,
)


def test_fronts_and_selection():
    values = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [6, 6], [np.inf, np.inf]], dtype=float)
    assert non_dominated_fronts(values[:5]) == [[0, 1, 2], [3], [4]]
    assert pareto_front(values) == [0, 1, 2]
    assert nsga2_select(values, 4) == [0, 1, 2, 3]
    assert 5 not in nsga2_select(values, 5)
    # the boundary points of a front are kept first when it must be cut
    assert set(nsga2_select(values[:3], 2)) == {0, 2}
    assert np.isinf(crowding_distance(values[:3])[[0, 2]]).all()


def test_nsga2_picks_one_copy_of_a_repeated_point():
    values = np.array([[0, 2], [0, 2], [0, 2], [2, 0]], dtype=float)
    # the three copies of [0, 2] as one candidate, and as three with the same scores
    for keys in (None, ["a", "a", "a", "d"], ["a", "b", "c", "d"]):
        chosen = nsga2_select(values, 2, keys)
        assert sorted(values[chosen].tolist()) == [[0, 2], [2, 0]], keys
    # only one copy of a boundary vector is a boundary point
    assert np.isinf(crowding_distance(values)).tolist() == [True, False, False, True]
    # a repeated key fills a place only once the distinct keys are used up, best first
    assert nsga2_select(values, 3, ["a", "a", "a", "d"]) == [0, 3, 1]
    assert nsga2_select(values[[3, 0, 1, 2]], 4, ["d", "a", "a", "a"]) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="3 keys for 4 rows"):
        nsga2_select(values, 2, ["a", "b", "c"])


def _canonical(genome):
    # arch = (width of block 0, width of block 1, active blocks): block 1's width counts only when active
    w0, w1, blocks = genome.arch
    return genome.layout, (w0, w1 if blocks == 2 else 0, blocks)


def _canonical_score(genomes, generation):
    # wide active circuits against a layout near qubit 0: a front of many points, and many copies
    return np.array([[-sum(_canonical(g)[1][:2]), sum(g.layout)] for g in genomes], dtype=float)


def test_engine_picks_distinct_candidates_as_parents():
    space = GenomeSpace(2, 4, ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2)))
    settings = EvolutionSettings(population=12, parents=4, mutants=6, crossovers=2, iterations=8, seed=3)
    history = evolve(space, settings, _canonical_score, key=_canonical)
    copies = 0
    for (population, _), (following, _) in itertools.pairwise(history):
        keys = [_canonical(g) for g in population]
        copies += len(keys) - len(set(keys))
        parents = [_canonical(g) for g in following[: settings.parents]]
        assert len(set(parents)) == min(settings.parents, len(set(keys))), parents
    assert copies > 10  # the populations did repeat candidates, so the check meant something


def test_hypervolume_of_known_fronts():
    ref = np.array([4.0, 4.0])
    assert hypervolume(np.array([[1.0, 1.0]]), ref) == pytest.approx(9.0)
    assert hypervolume(np.array([[1.0, 3.0], [3.0, 1.0]]), ref) == pytest.approx(5.0)
    # a dominated point adds nothing
    assert hypervolume(np.array([[1.0, 3.0], [3.0, 1.0], [3.5, 3.5]]), ref) == pytest.approx(5.0)
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), np.array([2.0, 3.0, 4.0])) == pytest.approx(6.0)


def test_hypervolume_of_a_3d_front_by_inclusion_exclusion():
    points = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 2.0], [3.0, 3.0, 1.0]])
    # Boxes up to (4, 4, 4): A 3*2*1 = 6, B 2*3*2 = 12, C 1*1*3 = 3; A&B 2*2*1 = 4, A&C 1,
    # B&C 1*1*2 = 2, A&B&C 1: 6 + 12 + 3 - 4 - 1 - 2 + 1 = 15.
    assert hypervolume(points, np.array([4.0, 4.0, 4.0])) == pytest.approx(15.0)


def _grid_hypervolume(points: np.ndarray, reference: np.ndarray) -> int:
    """Unit cells of the box below integer `reference` that some integer point dominates."""
    cells = np.array(list(itertools.product(*[range(int(r)) for r in reference])))
    return int(np.any(np.all(points[None, :, :] <= cells[:, None, :], axis=2), axis=1).sum())


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_equals_a_grid_count(m, seed):
    # Integer points, some dominated, repeated or beyond the reference: the dominated region
    # is a union of unit cells, so counting them is exact.
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 7, size=(int(rng.integers(1, 10)), m)).astype(float)
    reference = np.full(m, 6.0)
    expected = _grid_hypervolume(points, reference)
    assert expected > 0 or not np.any(np.all(points < reference, axis=1))
    assert hypervolume(points, reference) == pytest.approx(expected)


def test_layout_repair_and_operators_keep_genomes_legal():
    space = GenomeSpace(4, 7, ((1, 2, 3, 4), (1, 2)))
    rng = np.random.default_rng(0)
    assert space.repair([3, 3, 3, 1], rng)[:1] == (3,)
    for _ in range(200):
        a, b = space.sample(rng), space.sample(rng)
        for child in (Mutation(0.9).mutate(a, space, rng), UniformCrossover().crossover(a, b, space, rng)):
            check_layout(child.layout, 4, 7)
            assert all(g in c for g, c in zip(child.arch, space.arch_choices, strict=True))


def test_fixed_parts_never_change():
    space = GenomeSpace(2, 5, ((1, 2), (1, 2, 3)), fixed_layout=(4, 0))
    rng = np.random.default_rng(1)
    assert {Mutation(1.0).mutate(space.sample(rng), space, rng).layout for _ in range(20)} == {(4, 0)}
    with pytest.raises(ValueError, match=r"qubits \[5\] out of range 0..4"):
        GenomeSpace(2, 5, ((1, 2),), fixed_layout=(5, 0))
    with pytest.raises(ValueError, match=r"qubits \[1\] repeated"):
        check_layout((1, 1), 2, 5)


def _toy_score(genomes, generation):
    # two objectives in tension: the sum of the arch genes, and the distance of the layout from qubit 0
    return np.array([[-sum(g.arch), sum(g.layout)] for g in genomes], dtype=float)


def test_evolution_is_deterministic_and_improves():
    space = GenomeSpace(2, 6, ((1, 2, 3, 4),) * 4)
    settings = EvolutionSettings(population=12, parents=4, mutants=6, crossovers=2, iterations=6, seed=7)
    first = evolve(space, settings, _toy_score)
    second = evolve(space, settings, _toy_score)
    assert [p for p, _ in first] == [p for p, _ in second]
    best_first = min(v[:, 0].min() for _, v in first[:1])
    best_last = first[-1][1][:, 0].min()
    assert best_last < best_first
    randomized = evolve(space, EvolutionSettings(**{**settings.__dict__, "strategy": "random"}), _toy_score)
    assert sum(len(p) for p, _ in randomized) == sum(len(p) for p, _ in first)


def test_genome_params_roundtrip():
    g = Genome((3, 0, 2), (1, 4, 2))
    assert Genome.from_params(g.params()) == g


def test_layouts_stay_connected_on_a_coupling_map():
    # a 30-qubit line: a uniformly drawn 4-qubit layout would almost never be connected
    line = tuple((q, q + 1) for q in range(29))
    space = GenomeSpace(4, 30, ((1, 2),), coupling=line)
    rng = np.random.default_rng(0)

    def connected(layout):
        return max(layout) - min(layout) == len(layout) - 1

    samples = [space.sample(rng) for _ in range(50)]
    assert all(connected(g.layout) for g in samples)
    mutants = [Mutation(0.3).mutate(g, space, rng) for g in samples]
    # a mutated gene moves next to the other three, so the group stays within reach
    assert all(max(g.layout) - min(g.layout) <= 6 for g in mutants)
    assert len({g.layout for g in samples}) > 20


def test_best_layouts_avoid_bad_qubits_and_stay_connected():
    # a line 0-1-2-3-4-5 whose qubit 2 reads out at a coin flip and whose 4-5 coupling is poor
    line = [(i, i + 1) for i in range(5)]
    readout = {q: 0.02 for q in range(6)} | {2: 0.5}
    pairs = {edge: 0.01 for edge in line} | {(5, 4): 0.2}  # found in either direction
    assert best_layouts(2, line, readout, pairs, k=3) == [(0, 1), (3, 4), (4, 5)]
    assert best_layouts(3, line, readout, pairs, k=2) == [(3, 4, 5), (0, 1, 2)]  # ties by qubit number


def test_preferred_layouts_come_from_the_device_calibration():
    from qnas.devices import calibrated_errors, get_device

    device = get_device("fake_cusco")
    readout, pairs = calibrated_errors(device)
    edges = device.backend.coupling_map.get_edges()
    best = best_layouts(4, edges, readout, pairs, k=10)
    assert len(set(best)) == 10
    space = GenomeSpace(4, device.n_qubits, ((1, 2),), coupling=tuple(edges), preferred_layouts=tuple(best))
    neighbors = space.neighbors
    for group in best:  # connected: every qubit has a coupled partner in the group
        assert all(neighbors[q] & set(group) for q in group)
    # better than the typical qubit: the groups' worst readout beats the device's median
    assert max(readout[q] for q in best[0]) < np.median(list(readout.values()))
    rng = np.random.default_rng(0)
    drawn = [tuple(sorted(space.sample(rng).layout)) in best for _ in range(400)]
    assert 0.4 < np.mean(drawn) < 0.7  # half from the pool (and a few random ones land in it)


def test_path_layouts_put_logical_neighbours_on_coupled_qubits():
    from qnas.devices import calibrated_errors, get_device

    line = tuple((i, i + 1) for i in range(7))
    space = GenomeSpace(4, 8, ((0,),), coupling=line, layout_order="path")
    rng = np.random.default_rng(0)
    for group in [(1, 2, 3, 4), (5, 3, 4, 6), (7, 6, 5, 4)]:
        walk = space.path_through(group, rng)
        assert sorted(walk) == sorted(group)
        assert all(
            abs(a - b) == 1 for a, b in itertools.pairwise(walk)
        )  # a line's groups are paths: all coupled
    # Heavy-hex (fake_fez), 10 logical qubits: most logical neighbours coupled, unlike random order.
    device = get_device("fake_fez")
    edges = tuple(tuple(int(q) for q in e) for e in device.backend.coupling_map.get_edges())
    best = best_layouts(10, edges, *calibrated_errors(device), k=10)
    coupled = {}
    for order in ("random", "path"):
        space = GenomeSpace(
            10, device.n_qubits, ((0,),), coupling=edges, preferred_layouts=tuple(best), layout_order=order
        )
        rng = np.random.default_rng(0)
        layouts = [space.sample(rng).layout for _ in range(40)]
        pairs = [(a, b) for layout in layouts for a, b in itertools.pairwise(layout)]
        coupled[order] = np.mean([b in space.neighbors[a] for a, b in pairs])
    assert coupled["path"] > 0.75 and coupled["random"] < 0.4, coupled
    with pytest.raises(ValueError, match="layout order 'spiral'; allowed: random, path"):
        GenomeSpace(4, 8, ((0,),), coupling=line, layout_order="spiral")


@pytest.mark.parametrize(("name", "n"), [("fake_fez", 10), ("fake_brisbane", 12)])
def test_calibration_ranked_layouts_on_heavy_hex_for_wide_circuits(name, n):
    """10-12 logical qubits on Heron and Eagle: connected groups, better calibrated than the device's typical qubits."""
    from qnas.devices import calibrated_errors, get_device

    device = get_device(name)
    readout, pairs = calibrated_errors(device)
    edges = tuple(tuple(int(q) for q in e) for e in device.backend.coupling_map.get_edges())
    best = best_layouts(n, edges, readout, pairs, k=10)
    assert len(set(best)) == 10 and all(len(set(g)) == n for g in best)
    neighbors = GenomeSpace(n, device.n_qubits, ((0,),), coupling=edges).neighbors
    for group in best:  # connected: a walk from one qubit reaches all of them
        reached, frontier = {group[0]}, [group[0]]
        while frontier:
            q = frontier.pop()
            for p in neighbors[q] & set(group) - reached:
                reached.add(p)
                frontier.append(p)
        assert reached == set(group)
    mean_readout = np.mean([readout[q] for q in best[0]])
    assert mean_readout < np.median(list(readout.values()))
