"""Typed, validated run configuration: YAML files plus `--set key=value` overrides.

Everything a run needs is checked here, before any training starts: names of the task,
design space, device and objectives, and a search budget that adds up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from qnas import registry

# objective name -> direction; the search minimises or maximises it.
BUILTIN_OBJECTIVES: dict[str, str] = {
    "loss": "minimize",  # task loss (noisy when the search is noise-aware); VQE: the energy
    "calibrated_loss": "minimize",  # classification: loss after the best-fitting temperature
    "accuracy": "maximize",  # classification only
    "energy": "minimize",  # VQE only
    "n_2q": "minimize",  # transpiled two-qubit gates
    "depth": "minimize",  # transpiled depth
    "n_params": "minimize",
    "expressibility": "minimize",  # KL divergence from Haar: lower is more expressive
    "entangling_capability": "maximize",
    "success_probability": "maximize",
    # training-free proxies (qnas.proxies): cheap, no trained weights needed
    "clifford_noise_resilience": "maximize",  # Élivágar's CNR on the device's Pauli-twirled noise
    "representational_capacity": "maximize",  # Élivágar's RepCap (classification only)
    "elivagar_score": "maximize",  # RepCap x CNR^0.5
    "gradient_variance": "maximize",  # trainability: Var of the loss gradient over random angles
}
# Objectives that need neither trained weights nor a simulation of the task: what a screen
# and the training-free strategy may rank by.
TRAINING_FREE_OBJECTIVES = (
    "clifford_noise_resilience",
    "representational_capacity",
    "elivagar_score",
    "gradient_variance",
    "expressibility",
    "entangling_capability",
    "success_probability",
    "n_2q",
    "depth",
    "n_params",
)


def available_objectives() -> list[str]:
    """The built-in objectives, then the registered ones (`qnas.register_objective`)."""
    return [*BUILTIN_OBJECTIVES, *registry.names("objective")]


def objective_direction(name: str) -> str:
    """Return "minimize" or "maximize": the direction the search takes objective `name`."""
    if name in BUILTIN_OBJECTIVES:
        return BUILTIN_OBJECTIVES[name]
    found = registry.objective(name)
    if found is None:
        raise registry.unknown("objective", name, available_objectives())
    return found.direction


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1 where a number goes: `--set train.epochs=true` would train one epoch.
        kinds = _leaf_types(cls.model_fields[info.field_name].annotation)
        items = value if isinstance(value, list) else [value]
        if bool not in kinds and kinds & {int, float} and any(isinstance(v, bool) for v in items):
            raise ValueError("expected a number, not a boolean")
        return value


def _leaf_types(annotation: Any) -> set:
    """Return the types (and literal values) a field annotation is made of: int | list[float] -> {int, float}."""
    args = get_args(annotation)
    return set().union(*(_leaf_types(a) for a in args)) if args else {annotation}


class TaskConfig(_Strict):
    name: str = "digits4"
    max_train: int | None = Field(None, gt=0, description="subsample MNIST-style training sets")
    logit_scale: float = Field(4.0, gt=0, description="classification logits = logit_scale * <Z>")
    encoder: str | None = Field(
        None, description="classification: the encoder by name (None: the task's own)"
    )
    reupload: bool = Field(
        False, description="classification: the encoder again before every block (data re-uploading)"
    )
    mapping: Literal["mlp", "mps"] | None = Field(
        None, description="Quantum-Train: the mapping model, an MLP or a matrix product state (None: mlp)"
    )
    mapping_hidden: list[Annotated[int, Field(gt=0)]] | None = Field(
        None, description="Quantum-Train: hidden widths of the MLP mapping model (None: [8, 8])"
    )
    mapping_bond: int | None = Field(
        None, gt=0, description="Quantum-Train: bond dimension of the MPS mapping model (None: 4)"
    )
    shots: int | None = Field(
        None, gt=0, description="Quantum-Train: the probabilities come from this many shots (None: exact)"
    )
    standardize: Literal["unit", "tensor"] | None = Field(
        None,
        description="Quantum-Train: the generated weights standardized per output unit or per tensor (None: unit)",
    )
    label_smoothing: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Quantum-Train: label smoothing of the generated network's training loss (None: 0)",
    )


class SpaceConfig(_Strict):
    name: str = "u3cu3"
    max_blocks: int | None = Field(None, gt=0, description="fewer blocks than the space allows")


class TrainConfig(_Strict):
    epochs: int = Field(100, gt=0)
    batch_size: int = Field(32, gt=0)
    lr: float = Field(1e-2, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: int = Field(5, ge=0)
    sampler: Literal["uniform", "restricted", "sandwich"] = "restricted"
    limit_diff: int = Field(4, gt=0)


class ProxyConfig(_Strict):
    """How the training-free proxies are estimated (qnas.proxies; defaults from Élivágar)."""

    cnr_replicas: int = Field(32, gt=0, description="Clifford replicas per candidate")
    cnr_shots: int = Field(1024, gt=0, description="shots per replica, noiseless and noisy")
    repcap_samples_per_class: int = Field(16, gt=1, description="training samples per class")
    repcap_param_samples: int = Field(32, gt=0, description="random parameter draws")
    gradient_draws: int = Field(32, gt=1, description="random parameter draws for the gradient variance")
    gradient_samples: int = Field(16, gt=0, description="training samples in the loss")


class ScreenConfig(_Strict):
    """Rank each generation's new candidates by cheap objectives; only the best `keep` get the full score."""

    objectives: list[str] = ["elivagar_score"]
    keep: int = Field(10, gt=0)

    @model_validator(mode="after")
    def _cheap(self) -> ScreenConfig:
        costly = [o for o in self.objectives if o not in TRAINING_FREE_OBJECTIVES and o in BUILTIN_OBJECTIVES]
        unknown = [o for o in self.objectives if o not in available_objectives()]
        if unknown or costly or not self.objectives:
            raise ValueError(
                f"screen objectives {self.objectives}: each must be a training-free objective, one of "
                f"{', '.join(TRAINING_FREE_OBJECTIVES)} (or a registered one)"
            )
        return self


class SearchConfig(_Strict):
    strategy: Literal["evolution", "random", "training_free", "nsga2", "tpe", "gp", "auto"] = Field(
        "evolution",
        description="evolution: qnas's own; training_free: Élivágar-style, random calibration-guided "
        "candidates ranked by training-free objectives, no SuperCircuit training; nsga2, tpe, gp: "
        "Optuna's samplers; auto: the sampler Optuna picks",
    )
    screen: ScreenConfig | None = None
    encoders: list[str] | None = Field(
        None,
        description="classification: the encoder is a gene choosing among these; the features are the "
        "principal components the widest of them reads, and each reads the first it needs",
    )
    population: int = Field(40, gt=0)
    parents: int = Field(10, gt=0)
    mutants: int = Field(20, ge=0)
    mutation_prob: float = Field(0.4, gt=0, le=1)
    crossovers: int = Field(10, ge=0)
    iterations: int = Field(40, gt=0)
    objectives: list[str] = ["loss", "n_2q"]
    noise_aware: bool = True
    layout: list[int] | Literal["default"] | None = None  # "default": qiskit's layout per candidate
    preferred_layouts: int = Field(
        10, ge=0, description="half the sampled layouts come from the device's N least-error qubit groups"
    )
    layout_order: Literal["random", "path"] = Field(
        "random",
        description="how a sampled group of qubits is assigned to the logical qubits: at random, or along a "
        "path through the group (logical neighbours coupled; fewer swaps for chain and ring designs)",
    )
    arch: list[int] | None = None
    valid_samples: int = Field(300, gt=0)
    optimization_level: int = Field(2, ge=0, le=3)
    shots: int | None = Field(None, gt=0)
    idle_noise: bool = Field(
        True, description="schedule the transpiled circuit (ALAP) and let idle qubits relax (T1, T2)"
    )
    dynamical_decoupling: bool = Field(
        False,
        description="each active qubit's idle windows after its first gate hold X-X pulse pairs (scored and "
        "deployed so); needs idle_noise and the device's gate durations",
    )
    readout_noise: bool = Field(
        True,
        description="apply the device's readout error to the measured probabilities; false: gate and idle "
        "noise alone, what a perfect readout mitigation would give (the setting for a run deployed with "
        "readout mitigation)",
    )
    expressibility_samples: int = Field(1000, gt=0)
    head_refit_epochs: int = Field(
        0,
        ge=0,
        description="tasks with a classical head (Quantum-Train's mapping model): before a candidate's "
        "inherited-weight score, its head alone is re-fitted this many epochs to the candidate's own "
        "noiseless outputs (the SuperCircuit's one shared head otherwise scores every circuit)",
    )
    max_active_qubits: int = Field(
        12,
        gt=0,
        description="candidates whose routed circuit touches more physical qubits fail: trajectories cost 2^n "
        "(measured on fake_fez, 10 logical qubits: 2.4 s on 10 active qubits, 61 s on 14)",
    )
    noise_method: Literal["auto", "exact", "trajectories"] = Field(
        "auto",
        description="auto: exact density matrices up to exact_max_qubits active qubits, trajectories above",
    )
    exact_max_qubits: int = Field(
        8, gt=0, le=14, description="the exact engine's limit under noise_method auto"
    )
    trajectories: int = Field(32, gt=1, description="Monte-Carlo trajectories per sample (a multiple of 8)")
    memory_budget_gb: float = Field(
        2.0, gt=0, description="per candidate: larger states are simulated in chunks, or the candidate fails"
    )

    @model_validator(mode="after")
    def _budget(self) -> SearchConfig:
        known = available_objectives()
        unknown = [o for o in self.objectives if o not in known]
        if unknown:
            raise ValueError(f"unknown objective(s) {unknown}; allowed: {', '.join(known)}")
        if not self.objectives:
            raise ValueError("search.objectives is empty; give at least one of: " + ", ".join(known))
        if self.parents + self.mutants + self.crossovers != self.population:
            raise ValueError(
                f"search budget does not add up: parents ({self.parents}) + mutants ({self.mutants}) + "
                f"crossovers ({self.crossovers}) must equal population ({self.population})"
            )
        if self.trajectories % 8:
            raise ValueError(
                f"search.trajectories must be a multiple of 8 (8 groups give the standard error), got {self.trajectories}"
            )
        if self.strategy == "training_free":
            costly = [
                o for o in self.objectives if o not in TRAINING_FREE_OBJECTIVES and o in BUILTIN_OBJECTIVES
            ]
            if costly:
                raise ValueError(
                    f"strategy training_free scores no trained circuit, so it cannot rank by {costly}; "
                    f"use objectives from {', '.join(TRAINING_FREE_OBJECTIVES)} (e.g. [elivagar_score, n_2q])"
                )
        if self.screen is not None and self.screen.keep > self.population:
            raise ValueError(
                f"search.screen.keep ({self.screen.keep}) exceeds search.population ({self.population})"
            )
        if self.crossovers and self.parents < 2:
            raise ValueError(f"crossover needs at least 2 parents, got parents={self.parents}")
        if self.dynamical_decoupling and not self.idle_noise:
            raise ValueError(
                "search.dynamical_decoupling fills scheduled idle time: it needs search.idle_noise true"
            )
        return self


# Gradient engines that need only the circuit's outputs, so they train through the noisy simulation too.
NOISY_ENGINES = ("parameter_shift", "spsa", "finite_difference")


class FinetuneConfig(_Strict):
    # As long as training alone: inherited weights are a poor start for many subcircuits
    # (digits4, a 2-block full-width u3cu3 circuit inherits 36% valid accuracy; 100 epochs
    # at lr 0.005 bring it to 72%, 300 at 0.01 to 83%, as trained alone).
    epochs: int = Field(300, ge=0)
    engine: Literal["backprop", "parameter_shift", "spsa", "finite_difference"] = "backprop"
    noise_aware: bool = Field(False, description="train through the device's noisy simulation")
    finalists: int = Field(
        8, gt=0, description="depths whose best and full-width candidates are fine-tuned before choosing"
    )
    lr: float = Field(1e-2, gt=0)
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: int = Field(0, ge=0)
    gradient_pruning: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="QOC: skip this share of the angles on 2 of every 3 steps (an engine that runs circuits)",
    )

    @model_validator(mode="after")
    def _engine_runs_noisy(self) -> FinetuneConfig:
        if self.noise_aware and self.engine not in NOISY_ENGINES:
            # backprop differentiates the torch simulation; the noisy executor has no gradient.
            raise ValueError(
                f"noise_aware needs an engine that trains through the noisy simulation, not "
                f"{self.engine!r}: set finetune.engine to one of {', '.join(NOISY_ENGINES)}"
            )
        if self.gradient_pruning is not None and self.engine not in NOISY_ENGINES:
            # Pruning saves circuit executions; backprop runs none per angle.
            raise ValueError(
                f"gradient_pruning needs an engine that runs circuits per angle, not {self.engine!r}: "
                f"set finetune.engine to one of {', '.join(NOISY_ENGINES)}"
            )
        return self


class Config(_Strict):
    seed: int = 0
    device: str = "fake_quito"
    task: TaskConfig = TaskConfig()
    space: SpaceConfig = SpaceConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    proxies: ProxyConfig = ProxyConfig()


def parse_yaml(text: str, source: str) -> Any:
    """Return the YAML document `text`; a syntax error is a ValueError naming `source` and where in it."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: {_yaml_problem(err)}; fix the YAML syntax") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """Return what is wrong and where, on one line (yaml's own message spans several, about "<unicode string>")."""
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return f"not valid YAML ({err})".replace("\n", " ")
    mark = err.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
    if err.context and err.context_mark is not None:
        where += f" ({err.context} from line {err.context_mark.line + 1})"
    return where


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return `data` with each "a.b=value" override set (value parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. train.epochs=10)")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = parse_yaml(value, f"override {item!r}")
    return data


def load_config(path: Path | str | None, overrides: list[str] | None = None) -> Config:
    """Return the validated config from a YAML file (None: defaults) with overrides applied."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        data = parse_yaml(path.read_text(), str(path)) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config is a mapping of sections, got {type(data).__name__}")
    return validate_config(apply_overrides(data, overrides or []))


def validate_config(data: dict) -> Config:
    """Return the Config of a mapping of sections; the first problem is a ValueError naming the key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        bad = first.get("input")
        # A whole section as "input" (from a cross-field check) says nothing the message doesn't.
        shown = "" if isinstance(bad, dict) else f" (got {bad!r})"
        raise ValueError(f"{where}: {message}{shown}") from None


def dump_config(config: Config) -> str:
    """The resolved config as YAML, as written into a run directory."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False)
