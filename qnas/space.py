"""Design spaces, loaded from `search_spaces/*.yaml`, and their architecture genes.

A design space is a block of layers repeated up to `max_blocks` times (QuantumNAS,
Wang et al. HPCA 2022). Each layer is one gate kind placed by a pattern (every wire, a
ring, a chain, alternating pairs). Front sharing: a layer of width k applies its gate to
its first k positions only. The architecture genome is one width per layer of every block
followed by the number of active blocks; it knows nothing about devices or noise.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from qnas.sim import gate_spec

PATTERNS = ("wires", "ring", "chain", "alternating")


def _default_space_dir() -> Path:
    """Return $QNAS_SPACES, else the shipped spaces (in the installed package, or in the checkout)."""
    if "QNAS_SPACES" in os.environ:
        return Path(os.environ["QNAS_SPACES"])
    package = Path(__file__).resolve().parent
    # A wheel installs the repository's top-level search_spaces/ as qnas/search_spaces/
    # (setup.py's package_dir); a checkout or an editable install has only the top-level folder.
    installed = package / "search_spaces"
    return installed if installed.is_dir() else package.parent / "search_spaces"


def positions(pattern: str, gate_qubits: int, n_wires: int) -> list[tuple[int, ...]]:
    """Return the wires of every position of a layer laid out by `pattern` on n_wires."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; allowed: {', '.join(PATTERNS)}")
    if gate_qubits == 1:
        if pattern != "wires":
            raise ValueError(f"a 1-qubit gate takes pattern 'wires', not {pattern!r}")
        return [(w,) for w in range(n_wires)]
    if pattern == "wires":
        raise ValueError("a 2-qubit gate takes pattern 'ring', 'chain' or 'alternating', not 'wires'")
    if n_wires < 2:
        raise ValueError(f"a 2-qubit layer needs at least 2 wires, got n_wires={n_wires}")
    chain = [(w, w + 1) for w in range(n_wires - 1)]
    if pattern == "chain":
        return chain
    if pattern == "ring":
        return [*chain, (n_wires - 1, 0)] if n_wires > 2 else chain
    return chain[0::2] + chain[1::2]


@dataclass(frozen=True)
class LayerSpec:
    gate: str
    pattern: str
    fixed: bool = False


@dataclass(frozen=True)
class DesignSpace:
    """A repeated block of layers with front-shared widths."""

    name: str
    layers: tuple[LayerSpec, ...]
    max_blocks: int
    min_blocks: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        for layer in self.layers:
            spec = gate_spec(layer.gate)
            positions(layer.pattern, spec.n_qubits, max(2, spec.n_qubits))
        if not 1 <= self.min_blocks <= self.max_blocks:
            raise ValueError(
                f"space {self.name}: need 1 <= min_blocks <= max_blocks, got {self.min_blocks}, {self.max_blocks}"
            )

    def layer_positions(self, n_wires: int) -> list[list[tuple[int, ...]]]:
        """Wires of every position of each layer of a block."""
        return [positions(ly.pattern, gate_spec(ly.gate).n_qubits, n_wires) for ly in self.layers]

    def gene_choices(self, n_wires: int, max_blocks: int | None = None) -> list[list[int]]:
        """Allowed values of each architecture gene: widths of every layer of every block, then blocks."""
        n_blocks = self._blocks(max_blocks)
        widths = []
        for ly, pos in zip(self.layers, self.layer_positions(n_wires), strict=True):
            widths.append([len(pos)] if ly.fixed else list(range(1, len(pos) + 1)))
        return [w for _ in range(n_blocks) for w in widths] + [list(range(self.min_blocks, n_blocks + 1))]

    def _blocks(self, max_blocks: int | None) -> int:
        if max_blocks is None:
            return self.max_blocks
        if not 1 <= max_blocks <= self.max_blocks:
            raise ValueError(f"space {self.name}: max_blocks={max_blocks} outside 1..{self.max_blocks}")
        return max_blocks

    def validate(self, genes: Sequence[int], n_wires: int, max_blocks: int | None = None) -> tuple[int, ...]:
        """Return `genes` as a tuple, or raise naming the gene that is out of its choices."""
        choices = self.gene_choices(n_wires, max_blocks)
        if len(genes) != len(choices):
            raise ValueError(f"space {self.name}: genome needs {len(choices)} genes, got {len(genes)}")
        for i, (g, allowed) in enumerate(zip(genes, choices, strict=True)):
            if int(g) not in allowed:
                what = (
                    "blocks"
                    if i == len(choices) - 1
                    else f"width of block {i // len(self.layers)} layer {i % len(self.layers)}"
                )
                raise ValueError(f"{what} = {g} not allowed; allowed: {allowed}")
        return tuple(int(g) for g in genes)

    def largest(self, n_wires: int, max_blocks: int | None = None) -> tuple[int, ...]:
        """The genome of the whole SuperCircuit."""
        return tuple(c[-1] for c in self.gene_choices(n_wires, max_blocks))

    def fixed_blocks(self, n_blocks: int, n_wires: int, max_blocks: int | None = None) -> tuple[int, ...]:
        """The genome of `n_blocks` full-width blocks (the human baseline circuits)."""
        genes = list(self.largest(n_wires, max_blocks))
        genes[-1] = n_blocks
        return self.validate(genes, n_wires, max_blocks)

    def sample(
        self, rng: np.random.Generator, n_wires: int, max_blocks: int | None = None
    ) -> tuple[int, ...]:
        """A genome drawn uniformly, gene by gene."""
        return tuple(int(rng.choice(c)) for c in self.gene_choices(n_wires, max_blocks))


def load_space(name_or_path: str, space_dir: Path | None = None) -> DesignSpace:
    """Return the design space named `name_or_path` (a file in search_spaces/) or at that YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        directory = space_dir or _default_space_dir()
        path = directory / f"{name_or_path}.yaml"
        if not path.exists():
            known = available_spaces(directory)
            close = difflib.get_close_matches(name_or_path, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown space {name_or_path!r}{hint}; allowed: {', '.join(known)}")
    data = yaml.safe_load(path.read_text())
    try:
        layers = tuple(LayerSpec(**ly) for ly in data["layers"])
        return DesignSpace(
            name=data.get("name", path.stem),
            layers=layers,
            max_blocks=int(data["max_blocks"]),
            min_blocks=int(data.get("min_blocks", 1)),
            description=data.get("description", ""),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: malformed design space ({err}); see search_spaces/u3cu3.yaml") from err


def available_spaces(space_dir: Path | None = None) -> list[str]:
    """Names of the design spaces shipped in search_spaces/."""
    return sorted(p.stem for p in (space_dir or _default_space_dir()).glob("*.yaml"))
