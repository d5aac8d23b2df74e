"""Pareto dominance, NSGA-II selection and hypervolume, for objectives to be minimised.

Non-dominated sorting and crowding distance follow NSGA-II (Deb, Pratap, Agarwal and
Meyarivan, IEEE TEC 2002). Callers flip the sign of objectives they maximise.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when `a` is no worse than `b` everywhere and better somewhere."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_fronts(values: np.ndarray) -> list[list[int]]:
    """Return the indices of `values` (n, m) grouped into successive non-dominated fronts."""
    n = len(values)
    dominated_by = [[] for _ in range(n)]
    counts = np.zeros(n, dtype=int)
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(values[i], values[j]):
                dominated_by[i].append(j)
                counts[j] += 1
            elif dominates(values[j], values[i]):
                dominated_by[j].append(i)
                counts[i] += 1
    fronts, current = [], [i for i in range(n) if counts[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                counts[j] -= 1
                if counts[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front (boundary points: inf).

    Copies of one objective vector count once, as Fortin and Parizeau (GECCO 2013) amend
    NSGA-II (Deb et al., IEEE TEC 2002): the first copy gets the vector's distance among
    the distinct vectors, the others 0. Otherwise the copies of a boundary vector all rank
    as boundary points and crowd out the rest of the front.
    """
    _, first = np.unique(values, axis=0, return_index=True)
    distance = np.zeros(len(values))
    distance[first] = _distinct_crowding(values[first])
    return distance


def _distinct_crowding(values: np.ndarray) -> np.ndarray:
    """Crowding distance of points that are all different (Deb et al. 2002)."""
    n, m = values.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(values[:, k], kind="stable")
        span = values[order[-1], k] - values[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[order[2:], k] - values[order[:-2], k]) / span
    return distance


def nsga2_select(values: np.ndarray, k: int, keys: Sequence[Hashable] | None = None) -> list[int]:
    """Indices of the `k` best rows: whole fronts first, the last one cut by crowding distance.

    NSGA-II (Deb et al., IEEE TEC 2002). Rows holding inf or nan (failed candidates) come
    last. With `keys` (one per row), only the first row of each key competes; repeated
    keys fill the places left only when there are fewer than `k` distinct ones. In a
    search the same candidate comes back as a surviving parent, an unchanged mutant or
    under another genome of the same circuit, and its copies would take several parent
    places and collapse the population's diversity.
    """
    values = np.where(np.isfinite(values), values, np.inf)
    if keys is None:
        return _select(values, k)
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys for {len(values)} rows")
    first: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    distinct = list(first.values())
    repeated = sorted(set(range(len(values))) - set(distinct))
    chosen = [distinct[i] for i in _select(values[distinct], k)]
    return chosen + [repeated[i] for i in _select(values[repeated], k - len(chosen))]


def _select(values: np.ndarray, k: int) -> list[int]:
    chosen: list[int] = []
    if k <= 0:
        return chosen
    for front in non_dominated_fronts(values):
        if len(chosen) + len(front) <= k:
            chosen.extend(front)
            continue
        crowd = crowding_distance(values[front])
        order = sorted(range(len(front)), key=lambda i: (-crowd[i], front[i]))
        chosen.extend(front[i] for i in order[: k - len(chosen)])
        break
    return chosen


def pareto_front(values: np.ndarray) -> list[int]:
    """Indices of the non-dominated rows (finite ones only)."""
    finite = [i for i in range(len(values)) if np.all(np.isfinite(values[i]))]
    if not finite:
        return []
    return [finite[i] for i in non_dominated_fronts(values[finite])[0]]


def hypervolume(values: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by `values` (n, m) and bounded by `reference` (exact; for small fronts)."""
    pts = np.asarray([v for v in values if np.all(v < reference)], dtype=float)
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_front(pts)]
    if pts.shape[1] == 1:
        return float(reference[0] - pts[:, 0].min())
    # Slice along the last objective: the volume is a sum of (m-1)-dimensional slabs.
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else reference[-1]
        height = upper - pts[i, -1]
        if height > 0:
            volume += height * hypervolume(pts[: i + 1, :-1], reference[:-1])
    return float(volume)
