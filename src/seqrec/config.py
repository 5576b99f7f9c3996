"""The typed, immutable run configuration: YAML in, frozen dataclasses out, YAML back.

A config has five sections: ``data``, ``model``, ``training``, ``evaluation``, ``output``. Unknown
keys anywhere are errors that name the key and list the valid ones; values are checked against the
field types, and numeric fields against the range declared next to them (``metadata=above(0)``),
all by one function, ``check_ranges``. ``model`` holds ``name`` plus that model's own config
fields, checked against the model's config dataclass (data-derived fields such as ``n_items`` are
filled in at build time); its integer fields must be at least 1 unless they declare a range.

YAML is read with the YAML 1.2 core schema, in files and in overrides alike: ``1e-3`` is a number
(PyYAML's default YAML 1.1 reads it as text), ``012`` is twelve, ``yes`` is text, and a key given
twice in one mapping is an error. Overrides use dotted keys, ``training.lr=0.001``, with the value
parsed as a YAML scalar. The resolved config (every default filled in) is what ``save_config``
writes, and ``load_config(save_config(c)) == c``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seqrec.errors import ConfigError, first_line

__all__ = ["Config", "ConfigError", "check_ranges", "load_config", "save_config"]

# model config fields that come from the data, not the user
DERIVED_MODEL_FIELDS = ("n_items", "n_users", "item_feature_spec", "user_feature_spec")


# ---------------------------------------------------------------- ranges of numeric fields


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts; a bound of None is no bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: ``low`` itself is excluded
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {_num(self.low)}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return " and ".join(part for part in (low, high) if part)


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


# A model's integer fields are sizes, counts and lengths: at least 1, unless the model's config
# declares another range for the field (``field(metadata=at_least(0))``).
MODEL_INT_RANGE = Range(1)


def above(low: float) -> dict[str, Range]:
    """Field metadata: values strictly greater than ``low``."""
    return {"range": Range(low, low_open=True)}


def at_least(low: float, high: float | None = None) -> dict[str, Range]:
    """Field metadata: ``low <= value`` (and ``<= high`` when given)."""
    return {"range": Range(low, high)}


def between(low: float, high: float) -> dict[str, Range]:
    """Field metadata: ``low < value < high``."""
    return {"range": Range(low, high, low_open=True, high_open=True)}


def check_ranges(
    cls: type, values: Mapping[str, Any], where: str, int_default: Range | None = None
) -> None:
    """Every value whose field declares a ``range`` (in its metadata) lies in it.

    Works on any dataclass, including a model's config, so a new field only declares its range.
    None passes (optional fields); a tuple is checked element by element. A float must be finite
    (NaN and infinity are errors) whether or not its field declares a range. ``int_default`` is
    the range of integer values whose field declares none.
    """
    for f in dataclasses.fields(cls):
        rule = f.metadata.get("range")
        value = values.get(f.name)
        for v in value if isinstance(value, tuple | list) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{where}.{f.name}: expected a finite number, got {v!r}")
            numeric = isinstance(v, int | float) and not isinstance(v, bool)
            if rule is None and isinstance(v, int) and not isinstance(v, bool):
                rule = int_default
            if rule is not None and numeric and not rule.holds(v):
                kind = "an integer" if isinstance(v, int) else "a number"
                null = ", or null" if _accepts_none(cls, f.name) else ""
                raise ConfigError(
                    f"{where}.{f.name}: expected {kind} {rule.describe()}{null}, got {v!r}"
                )


def _accepts_none(cls: type, name: str) -> bool:
    tp = typing.get_type_hints(cls)[name]
    return type(None) in typing.get_args(tp)


@dataclass(frozen=True)
class Columns:
    """Source column names of the canonical roles; None keeps the reader's default."""

    user: str | None = None
    item: str | None = None
    timestamp: str | None = None
    rating: str | None = None
    label: str | None = None

    def mapping(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ClickLabelsConfig:
    """Click labels from the data, for click-through models and the ``labelled`` protocol.

    ``column`` (e.g. ``rating`` or ``label``; None: no labels) gives each interaction its label:
    with a ``threshold``, 1 where the value is at least the threshold and 0 below it (RecBole's
    ``threshold: {rating: 4}``); without one, the column must hold 0 and 1 only. Every
    interaction stays in the sequences whatever its label: a label says whether a shown item was
    clicked, not whether it happened. DIN and DIEN then train on each training interaction
    with its own label instead of sampled non-clicks, and the ``labelled`` protocol scores every
    held-out interaction as one impression with its label (AUC, GAUC, LogLoss). Other models
    train as without labels, and the ranking protocols rank every held-out interaction whatever
    its label (filter with ``min_rating`` to rank liked items only).
    """

    column: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.column is None:
            raise ConfigError("data.click_labels.threshold: applies with data.click_labels.column")


@dataclass(frozen=True)
class SplitConfig:
    """How to hold out validation and test targets.

    ``leave_one_out``: last item test, second-to-last validation. ``temporal``: global cut-offs
    given as times (``test_time``/``valid_time``) or as shares of interactions
    (``test_quantile``/``valid_quantile``). ``ratio``: per user in time order, the newest
    ``ratios[2]`` share of the interactions is test, the ``ratios[1]`` share before it
    validation, the rest training (RecBole's ``RS`` split grouped by user, ordered by time, with
    its rounding). ``file``: the data's ``column`` says train/valid/test.
    ``train_on_validation`` moves the validation targets into training and leaves no validation
    set, as the BERT4Rec authors train their final model (then train a fixed number of steps).
    """

    kind: Literal["leave_one_out", "temporal", "ratio", "file"] = "leave_one_out"
    ratios: tuple[float, ...] = field(default=(0.8, 0.1, 0.1), metadata=at_least(0))
    test_quantile: float | None = field(default=None, metadata=between(0, 1))
    valid_quantile: float | None = field(default=None, metadata=between(0, 1))
    test_time: float | None = None
    valid_time: float | None = None
    targets: Literal["next", "all"] = "next"
    column: str = "split"
    train_on_validation: bool = False

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or not self.ratios[0] > 0:
            raise ConfigError(
                f"data.split.ratios: expected [train, valid, test] shares with train > 0, got "
                f"{list(self.ratios)}"
            )
        if self.kind != "temporal":
            return
        if (self.test_quantile is None) == (self.test_time is None):
            raise ConfigError(
                "data.split: a temporal split needs exactly one of test_quantile, test_time"
            )
        if self.valid_quantile is not None and self.valid_time is not None:
            raise ConfigError("data.split: give valid_quantile or valid_time, not both")
        for valid, test in (("valid_quantile", "test_quantile"), ("valid_time", "test_time")):
            v, t = getattr(self, valid), getattr(self, test)
            if v is not None and t is not None and v > t:
                raise ConfigError(f"data.split.{valid}: {v:g} is after {test} {t:g}")


@dataclass(frozen=True)
class FeatureConfig:
    """Where item (or user) side features come from; see ``seqrec.data.features``.

    ``path`` None takes the data's own features: a named data set's ``.item`` / ``.user`` file,
    the ``.item`` / ``.user`` file beside an atomic ``.inter`` file, or else the interaction
    file's extra columns named in ``fields`` (each id's first row gives its value). A ``path`` is
    an atomic ``.item`` / ``.user`` file or a CSV / TSV / Parquet side table keyed by
    ``id_column`` (default ``item_id`` / ``user_id``). ``fields`` None loads every field of a
    feature file. ``kinds`` sets a field's kind (token, token_seq, float, float_seq) where the
    file does not (CSV text is token otherwise); list kinds in text are split on ``separator``.
    ``max_tokens`` caps list widths; tokens carried by fewer than ``min_count`` ids share one
    "unknown" code.
    """

    fields: tuple[str, ...] | None = None
    path: str | None = None
    id_column: str | None = None
    kinds: dict[str, Literal["token", "token_seq", "float", "float_seq"]] = field(
        default_factory=dict
    )
    separator: str = " "
    max_tokens: int | None = field(default=None, metadata=at_least(1))
    min_count: int = field(default=1, metadata=at_least(1))


@dataclass(frozen=True)
class DataConfig:
    """Where the interactions come from and how they are filtered and split.

    ``format`` None takes the format from the file's suffix (``.inter`` atomic, ``.csv``,
    ``.tsv``, ``.parquet``, ``.txt`` for ``user item`` lines). ``duplicates`` says what to do with
    rows identical to an earlier row in every column: ``keep`` them (the count is reported),
    ``drop`` them (reported as a filter step) or stop with an ``error`` naming the first.
    ``streaming`` preprocesses a Parquet file (or a folder of Parquet part files) larger than
    memory with polars' streaming engine into memory-mapped arrays under ``cache_dir`` (default
    ``$SEQREC_HOME/corpora``), rebuilt when a file or a preprocessing setting changes; see
    ``seqrec.data.streaming``.
    """

    dataset: str  # a named data set (see ``seqrec data fetch``) or a file path
    format: Literal["atomic", "csv", "tsv", "parquet", "txt"] | None = None
    columns: Columns = field(default_factory=Columns)
    min_rating: float | None = None
    min_user_interactions: int = field(default=0, metadata=at_least(0))
    min_item_interactions: int = field(default=0, metadata=at_least(0))
    max_len: int | None = field(default=None, metadata=at_least(1))  # newest max_len per user
    duplicates: Literal["keep", "drop", "error"] = "keep"
    click_labels: ClickLabelsConfig = field(default_factory=ClickLabelsConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    item_features: FeatureConfig = field(default_factory=FeatureConfig)
    user_features: FeatureConfig = field(default_factory=FeatureConfig)
    streaming: bool = False
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.streaming:
            if self.cache_dir is not None:
                raise ConfigError("data.cache_dir: applies with data.streaming: true")
            return
        if self.format not in (None, "parquet"):
            raise ConfigError(f"data.streaming: reads Parquet, not data.format {self.format!r}")
        if self.split.kind == "file":
            raise ConfigError(
                "data.streaming: a split from a file column needs data.streaming: false"
            )
        if self.click_labels.column is not None:
            raise ConfigError("data.click_labels: labels from a column need data.streaming: false")
        for which in ("item_features", "user_features"):
            cfg = getattr(self, which)
            if cfg.fields and cfg.path is None:
                raise ConfigError(
                    f"data.{which}: features from the interaction file's columns need "
                    f"data.streaming: false; give data.{which}.path"
                )


@dataclass(frozen=True)
class ModelConfig:
    """The registered model ``name`` and its own config fields (all of them, once resolved)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


CONFIG_FILE = "config.yaml"  # the resolved config in every run folder
SEED_RANGE = at_least(0, 2**32 - 1)  # what NumPy's and Lightning's seeding accept


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, validation and the training windows.

    ``max_steps`` trains exactly that many optimizer steps, whatever ``epochs`` says (the
    learning-rate decay then ends there). ``steps_from`` (an earlier run folder that validated
    on the same data set) sets ``max_steps`` to the steps that run had taken at its best
    validation: the final model of the BERT4Rec authors' protocol trains on the validation
    items too (``data.split.train_on_validation``), so a validation run picks its length.
    ``schedule_steps`` is the length of the learning rate's linear decay (default: the run's
    own, so it ends at 0 with the last step; with ``steps_from``, the validation run's, so the
    final run follows that run's learning rate step for step and stops where it was best).
    ``max_minutes`` stops training after that much wall time (checked between steps; the epoch
    then ends there and is validated).
    ``steps_per_epoch`` ends an epoch (and so validates) after that many steps, each epoch a
    fresh shuffle: a long recipe (the BERT4Rec authors' 10 masked copies of every window) gets a
    learning curve. ``precision`` ``bf16-mixed`` (Lightning's name; the default is ``32-true``)
    runs training steps under bfloat16 autocast (evaluation always runs in float32). ``seeds``
    (e.g. ``[1, 2, 3]``) trains one model per seed into one run folder instead of one with
    ``seed``, and reports each metric's mean and spread across them. ``patience`` counts
    validations (every ``eval_every`` epochs) without improvement of ``early_stopping_metric``
    on the validation set; ``eval_every`` 0 never validates (RecBole's ``eval_step`` 0): all
    ``epochs`` train and the last weights are kept. ``window_step`` None gives one window per
    user (the newest ``train_seq_len`` items); a step adds older windows ending every ``step``
    items back.
    ``dupe_factor`` repeats every window per epoch (masked differently each time).
    ``length_buckets`` batches windows of similar length, each batch only as wide as it needs
    and holding about ``batch_size`` windows' worth of items (more rows of short windows).
    ``last_item_copy`` adds one copy of every window per epoch trained on its newest item only
    (the BERT4Rec authors' data generation). ``clip_grad_norm`` null turns clipping off.
    ``accelerator`` is ``auto``, ``cpu``, ``gpu``, ``cuda`` or ``mps``; training checks that the
    machine has it. ``devices`` processes per machine (``auto``: every GPU, or one process on a
    CPU) on ``num_nodes`` machines train one model data-parallel with ``strategy`` ``ddp``
    (``auto`` picks it for more than one process): Lightning starts the other processes of a
    machine itself, or joins those torchrun or SLURM started, and reduces gradients over gloo on
    CPUs, NCCL on GPUs. ``batch_size`` is per process: a step sees ``devices * num_nodes *
    batch_size`` windows. ``progress_bar`` draws a bar when the output is a terminal; otherwise
    (or with false) one line is printed per epoch. ``release_memory_every`` hands the allocator's
    free pages back to the system after that many batches (glibc's ``malloc_trim``; 0 never), so
    fragmentation cannot grow the peak memory of a long run step by step (``allocator.py``).
    """

    epochs: int = field(default=50, metadata=at_least(1))
    max_steps: int | None = field(default=None, metadata=at_least(1))
    schedule_steps: int | None = field(default=None, metadata=at_least(1))
    steps_from: str | None = None
    max_minutes: float | None = field(default=None, metadata=above(0))
    steps_per_epoch: int | None = field(default=None, metadata=at_least(1))
    batch_size: int = field(default=128, metadata=at_least(1))
    lr: float = field(default=1e-3, metadata=above(0))
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    warmup_steps: int = field(default=0, metadata=at_least(0))
    clip_grad_norm: float | None = field(default=5.0, metadata=above(0))
    seed: int = field(default=42, metadata=SEED_RANGE)
    seeds: tuple[int, ...] = field(default=(), metadata=SEED_RANGE)
    eval_every: int = field(default=1, metadata=at_least(0))
    early_stopping_metric: str = "NDCG@10"
    patience: int = field(default=5, metadata=at_least(1))
    window_step: int | None = field(default=None, metadata=at_least(1))
    dupe_factor: int = field(default=1, metadata=at_least(1))
    length_buckets: bool = False
    last_item_copy: bool = False
    num_workers: int = field(default=0, metadata=at_least(0))
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = field(default=1, metadata=at_least(1))
    num_nodes: int = field(default=1, metadata=at_least(1))
    strategy: Literal["auto", "ddp"] = "auto"
    precision: Literal["32-true", "bf16-mixed"] = "32-true"
    progress_bar: bool = True
    tensorboard: bool = False
    release_memory_every: int = field(default=50, metadata=at_least(0))

    def __post_init__(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"training.seeds: expected distinct seeds, got {list(self.seeds)}")
        if self.schedule_steps and self.max_steps and self.schedule_steps < self.max_steps:
            raise ConfigError(
                f"training.schedule_steps {self.schedule_steps} is shorter than the run's "
                f"{self.max_steps} steps: the learning rate would be 0 for the rest"
            )


@dataclass(frozen=True)
class BootstrapConfig:
    """The user bootstrap behind every confidence interval: resamples, level and seed."""

    resamples: int = field(default=1000, metadata=at_least(1))
    level: float = field(default=0.95, metadata=between(0, 1))
    seed: int = field(default=0, metadata=SEED_RANGE)


@dataclass(frozen=True)
class EvaluationConfig:
    """Protocols and metrics for validation and test.

    ``valid_protocol`` (default: the first of ``protocols``) drives early stopping.
    ``exclude_history`` False turns ``full`` into ``full-keep-history``. ``negatives_seed``
    draws the negatives of the sampled protocols (the BERT4Rec authors' 12345 by default); runs
    compared on a sampled protocol need the same one.
    """

    protocols: tuple[str, ...] = ("full",)
    metrics: tuple[str, ...] = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
    batch_size: int = field(default=256, metadata=at_least(1))
    exclude_history: bool = True
    valid_protocol: str | None = None
    negatives_seed: int = field(default=12345, metadata=SEED_RANGE)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)

    def __post_init__(self) -> None:
        for name in ("protocols", "metrics"):
            if not getattr(self, name):
                raise ConfigError(f"evaluation.{name}: give at least one")


@dataclass(frozen=True)
class OutputConfig:
    """``dir`` None makes ``runs/<model>-<dataset>-<time>-<suffix>`` when the run starts."""

    dir: str | None = None


@dataclass(frozen=True)
class Config:
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# ---------------------------------------------------------------- building from plain data


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


_NO_MATCH = object()


def _convert_container(value: Any, tp: Any, origin: Any, where: str) -> Any:
    """Lists/tuples, string-keyed mappings and nested dataclasses; ``_NO_MATCH`` otherwise."""
    if origin is dict and isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        item = typing.get_args(tp)[1]
        return {k: _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple and isinstance(value, list | tuple):
        item = typing.get_args(tp)[0]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    return _NO_MATCH


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (dict, tuple) or dataclasses.is_dataclass(tp):
        converted = _convert_container(value, tp, origin, where)
        if converted is not _NO_MATCH:
            return converted
    elif tp is Any or (tp is type(None) and value is None):
        return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, raw: Any, where: str) -> Any:
    """A dataclass from a mapping; an unknown or missing key is an error naming it."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys: {', '.join(fields)}"
        )
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in raw:
            values[name] = _convert(raw[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key '{key}'")
    check_ranges(cls, values, where)
    return cls(**values)


def _model_config(raw: Any) -> ModelConfig:
    """``name`` plus the model's fields, checked against and completed from its config class."""
    from seqrec import models  # models import torch: only when a config is built

    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ConfigError("model: expected a mapping with a 'name' (the registered model)")
    params = {k: v for k, v in raw.items() if k != "name"}
    if raw["name"] not in models.MODELS:
        known = ", ".join(sorted(models.MODELS))
        raise ConfigError(f"model.name: unknown model {raw['name']!r}; registered: {known}")
    cls = models.MODELS[raw["name"]][1]
    settable = {f.name: f for f in dataclasses.fields(cls) if f.name not in DERIVED_MODEL_FIELDS}
    unknown = sorted(set(params) - set(settable))
    if unknown:
        raise ConfigError(
            f"unknown config key 'model.{unknown[0]}' for model {raw['name']!r}; "
            f"valid keys: {', '.join(['name', *settable])}"
        )
    hints = typing.get_type_hints(cls)
    resolved = {}
    for name, f in settable.items():
        if name in params:
            resolved[name] = _convert(params[name], hints[name], f"model.{name}")
        elif f.default is not dataclasses.MISSING:
            resolved[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            resolved[name] = f.default_factory()
        else:
            raise ConfigError(f"missing config key 'model.{name}' for model {raw['name']!r}")
    check_ranges(cls, resolved, "model", int_default=MODEL_INT_RANGE)
    return ModelConfig(raw["name"], tuple(resolved.items()))


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A checked ``Config`` from plain data (as read from YAML)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    sections = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; valid keys: {', '.join(sections)}")
    if "model" not in raw:
        raise ConfigError("missing config key 'model'")
    hints = typing.get_type_hints(Config)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        if f.name == "model":
            continue
        if f.name in raw:
            values[f.name] = _build(hints[f.name], raw[f.name] or {}, f.name)
        elif f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key '{f.name}'")
    values["model"] = _model_config(raw["model"])  # last: it imports the model registry
    return Config(**values)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for YAML: tuples become lists, the model's params sit beside its name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, ModelConfig):
            out[f.name] = {"name": value.name, **{k: _plain(v) for k, v in value.params}}
        else:
            out[f.name] = _plain(dataclasses.asdict(value))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- YAML 1.2 core schema

_CORE_SCHEMA = (  # (tag, pattern, first characters): the YAML 1.2 core schema's plain scalars
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
)


def _use_core_schema(cls: type) -> type:
    """Replace the YAML 1.1 implicit types of a PyYAML loader or dumper by the core schema."""
    cls.yaml_implicit_resolvers = {}
    for tag, pattern, first in _CORE_SCHEMA:
        cls.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
    return cls


@_use_core_schema
class _Loader(yaml.SafeLoader):
    """Core-schema scalars; a key given twice in one mapping is an error, not a silent last-wins."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self.flatten_mapping(node)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {seen[key]})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = self.construct_scalar(node)
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text, 10)  # 012 is 12


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


@_use_core_schema
class _Dumper(yaml.SafeDumper):
    """Quotes exactly the strings ``_Loader`` would read as something else (e.g. ``1e3``)."""


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line: where (line, column) and what, without PyYAML's multi-line snippet."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or first_line(error)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_yaml(text: str) -> Any:
    """YAML text with the core schema (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------- files and overrides


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=c`` -> ("a.b", c) with ``c`` parsed as a YAML value (``1e-3`` is a float)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected key.path=value, e.g. training.lr=0.001")
    try:
        parsed = parse_yaml(value) if value.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: not a YAML value: {_yaml_problem(error)}") from error
    return key, parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted key set; intermediate mappings are created as needed."""
    out = _plain_copy(raw)
    for key, value in overrides:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r}: '{part}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _plain_copy(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: _plain_copy(v) for k, v in raw.items()}
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file; every problem is a ``ConfigError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such config file: {path}")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(error)}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, ...)")
    return raw


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``a.b=c`` overrides and check everything."""
    raw = apply_overrides(read_yaml(path), [parse_override(o) for o in overrides])
    try:
        return config_from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (readable back with ``load_config``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(
        config_to_dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False
    )
    path.write_text(text, encoding="utf-8")
    return path
