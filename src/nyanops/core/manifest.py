"""The experiment manifest (v1): the one schema for what a data scientist drops into ``manifests/``.

```json
{
  "experiment": "cats",
  "dataset": "datasets/2026-11-28T064300Z",
  "comment": "epochs 10 + augmentation",
  "hyperparameters": {"epochs": 10, "batch-size": 8, "lr": 0.01, "momentum": 0.9, "augment": true}
}
```
A ``sweep`` asks for several trials in one upload, each with its values merged over ``hyperparameters``: an
object of lists is a grid (``"sweep": {"epochs": [5, 10, 15], "lr": [0.01, 0.05]}``: 6 trials), a list of
objects an explicit set (``"sweep": [{"epochs": 5}, {"arch": "efficientnet_lite0"}]``: 2 trials). At most
``limits.SWEEP_MAX_TRIALS`` trials; every trial's hyperparameters are validated whole, by the same schema,
before anything starts (``trial_hyperparameters``). Without a sweep, the manifest is a sweep of one.

Unknown keys, wrong types (``"10"`` for a number, ``true`` for a number) and out-of-range values are
refused with a message naming the field and the fix. The hyperparameters' names, types, ranges and
defaults come from one table, ``nyanops.core.hyperparameters`` (train.py's argparse is built from it
too); omitted ones take train.py's defaults and the values actually used are recorded with the trial.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from nyanops.core import hyperparameters, layout, limits, naming
from nyanops.core.rejection import Problem, UploadRejected

MAX_MANIFEST_BYTES = limits.MANIFEST_MAX_BYTES
MAX_COMMENT = 1000


ARCHES: tuple[str, ...] = hyperparameters.ARCHITECTURES
# ValueError texts in validators are "<what is wrong>|<how to fix it>".
_FIX_SEP = "|"


class _HyperparametersBase(BaseModel):
    """Hyperparameters passed to ``train.py`` as ``--name value``. All optional; names as in the seed."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=False)

    @model_validator(mode="after")
    def _freeze_within_epochs(self) -> Any:
        freeze, epochs = getattr(self, "freeze_epochs", None), getattr(self, "epochs", None)
        if freeze is not None and epochs is not None and freeze > epochs:
            raise ValueError(
                f"freeze-epochs ({freeze}) is larger than epochs ({epochs}){_FIX_SEP}make freeze-epochs at most epochs"
            )
        return self

    def given(self) -> dict[str, Any]:
        """The hyperparameters the manifest set, keyed by their ``train.py`` flag names."""
        return dict(self.model_dump(by_alias=True, exclude_none=True))


def _field(h: hyperparameters.Hyperparameter) -> tuple[Any, Any]:
    """The pydantic (type, Field) of one manifest-settable row of the hyperparameter table."""
    kind: Any = {"int": int, "float": float, "bool": bool, "str": str}[h.type]
    if h.choices:
        kind = Literal[h.choices]  # type: ignore[valid-type]
    bounds: dict[str, Any] = {}
    if h.minimum is not None:
        bounds["gt" if h.exclusive_minimum else "ge"] = h.minimum if h.type == "float" else int(h.minimum)
    if h.maximum is not None:
        bounds["le"] = h.maximum if h.type == "float" else int(h.maximum)
    alias = h.name if h.name != h.attr else None
    return (kind | None, Field(default=None, alias=alias, description=h.help, **bounds))


# Built from the one hyperparameter table (nyanops.core.hyperparameters): the manifest accepts exactly
# its manifest-settable rows, with their types and ranges.
Hyperparameters = create_model(  # type: ignore[call-overload]
    "Hyperparameters",
    __base__=_HyperparametersBase,
    __module__=__name__,
    **{h.attr: _field(h) for h in hyperparameters.manifest_rows()},
)


class Manifest(BaseModel):
    """An experiment manifest: which experiment, which dataset, a comment, hyperparameters."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    experiment: str = Field(min_length=1, max_length=naming.MAX_EXPERIMENT_NAME)
    dataset: str = Field(min_length=1, max_length=layout.MAX_KEY_LENGTH)
    comment: str = Field(default="", max_length=MAX_COMMENT)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    code: str | None = Field(default=None, description="code/<sha256>: a ml_code bundle in this bucket")
    sweep: Any = Field(
        default=None,
        description="several trials: an object of lists (a grid) or a list of objects (an explicit set), each "
        "trial's values merged over hyperparameters",
    )
    force: bool = Field(
        default=False,
        description="train even when a completed trial had the same dataset, code and hyperparameters "
        "(otherwise that trial's results are reused)",
    )

    @field_validator("experiment")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not naming.is_valid_experiment_name(value):
            raise ValueError(
                "is not a valid SageMaker experiment name"
                f"{_FIX_SEP}use only letters, digits and hyphens, starting and ending with a letter or digit, "
                "at most 120 characters (e.g. cats-v2)"
            )
        return value

    @field_validator("dataset")
    @classmethod
    def _dataset_ref(cls, value: str) -> str:
        dataset_id_from_ref(value)
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep_shape(cls, value: Any) -> Any:
        grid = isinstance(value, dict) and all(isinstance(v, list) for v in value.values())
        explicit = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        if value is not None and not grid and not explicit:
            raise ValueError(f"is neither an object of lists nor a list of objects{_FIX_SEP}{_SWEEP_FIX}")
        return value

    @field_validator("code")
    @classmethod
    def _code_ref(cls, value: str | None) -> str | None:
        if value is not None:
            code_hash_from_ref(value)
        return value

    @property
    def dataset_id(self) -> str:
        return dataset_id_from_ref(self.dataset)

    @property
    def code_hash(self) -> str | None:
        return code_hash_from_ref(self.code) if self.code else None


def dataset_id_from_ref(ref: str) -> str:
    """``datasets/<id>`` (a trailing slash is fine) → ``<id>``; anything that leaves the layout is refused."""
    if "://" in ref:  # s3://, https://, file://: any URI
        raise ValueError(f"is a URI; datasets are read only from this bucket{_FIX_SEP}{_DATASET_FIX}")
    if ref.startswith("/"):
        raise ValueError(f"is an absolute path{_FIX_SEP}{_DATASET_FIX}")
    parts = ref.rstrip("/").split("/")
    if ".." in parts or "." in parts:
        raise ValueError(f"contains '..' or '.' and would leave the datasets/ prefix{_FIX_SEP}{_DATASET_FIX}")
    if len(parts) != 2 or parts[0] + "/" != layout.DATASETS_PREFIX:
        raise ValueError(f"is not one folder directly under datasets/{_FIX_SEP}{_DATASET_FIX}")
    if not layout.is_dataset_id(parts[1]):
        raise ValueError(
            f"has an invalid dataset id{_FIX_SEP}use letters, digits, '.', '_' and '-' (at most 128), "
            "starting with a letter or digit"
        )
    return parts[1]


_DATASET_FIX = "write datasets/<dataset-id>, e.g. datasets/2026-11-28T064300Z"


def code_hash_from_ref(ref: str) -> str:
    """``code/<sha256>`` (optionally ``/`` or ``/sourcedir.tar.gz`` after it) → the hash."""
    parts = ref.rstrip("/").split("/")
    if parts and parts[-1] == layout.CODE_BUNDLE:
        parts = parts[:-1]
    if len(parts) != 2 or parts[0] + "/" != layout.CODE_PREFIX or not layout.is_code_hash(parts[1]):
        raise ValueError(
            "is not a code bundle in this bucket's code/ prefix (code from anywhere else is never run)"
            f"{_FIX_SEP}write code/<64-hex sha256> as printed by `nyanops code push`, or leave it out"
        )
    return parts[1]


def parse_manifest(raw: bytes) -> Manifest:
    """Decode and validate a manifest file, raising ``UploadRejected`` with every problem found."""
    if len(raw) == 0:
        raise UploadRejected.one("(file)", "the manifest is empty", "upload a JSON object like docs/manifest.md shows")
    check_manifest_size(len(raw))
    if raw.startswith(b"\xef\xbb\xbf"):
        raise UploadRejected.one(
            "(file)", "the manifest starts with a UTF-8 byte order mark (BOM)", "save it as UTF-8 without BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadRejected.one(
            "(file)", f"the manifest is not UTF-8 text (byte {exc.start})", "save it as UTF-8 JSON"
        ) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UploadRejected.one(
            "(file)",
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "fix the JSON syntax (a linter such as `python -m json.tool FILE` shows where)",
        ) from None
    except _NonFiniteNumber as exc:
        raise UploadRejected.one("(file)", f"{exc.args[0]} is not a valid JSON number", "use a finite number") from None
    return validate_manifest(data)


def check_manifest_size(size: int | None) -> None:
    """Refuse a manifest over the limit from its size alone (the event's, or a HEAD's), before reading it."""
    if size is not None and size > MAX_MANIFEST_BYTES:
        raise UploadRejected.one(
            "(file)",
            f"the manifest is {size} bytes, larger than the {MAX_MANIFEST_BYTES} byte limit",
            "a manifest only names the experiment, dataset, comment and hyperparameters; keep it small",
        )


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFiniteNumber(name)


def validate_manifest(data: Any) -> Manifest:
    """Validate already-decoded JSON against the schema (through Powertools' parser)."""
    if not isinstance(data, dict):
        raise UploadRejected.one(
            "(file)",
            f"the manifest must be a JSON object, got a {_json_type(data)}",
            'wrap it as {"experiment": ..., "dataset": ..., "hyperparameters": {...}}',
        )
    try:
        manifest = parse(event=data, model=Manifest)
    except ValidationError as exc:  # Powertools' parse raises pydantic's error as it is
        raise UploadRejected([_problem(err) for err in exc.errors()]) from None
    trial_hyperparameters(manifest)  # every trial of a sweep, validated whole before anything starts
    return manifest


def trial_hyperparameters(manifest: Manifest) -> list[dict[str, Any]]:
    """The hyperparameters each trial of the manifest sets (flag names; the sweep's values over
    ``hyperparameters``), in the sweep's order: one trial without a sweep. Every trial is validated whole by the
    ``Hyperparameters`` schema; refusals name ``sweep.<name>`` (a grid) or ``sweep[i].<name>`` (a list)."""
    base = manifest.hyperparameters.given()
    sweep = manifest.sweep
    if sweep is None:
        return [base]
    combos, where = _expand(sweep)
    problems: list[Problem] = []
    trials: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, combo in enumerate(combos):
        merged = {**base, **combo}
        try:
            trials.append(Hyperparameters.model_validate(merged).given())
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(_sweep_problem(err, combo, where(index), sweep))
            continue
        identity = json.dumps(trials[-1], sort_keys=True)
        if identity in seen and isinstance(sweep, list):
            problems.append(Problem(
                where(index), f"is the same trial as sweep[{seen[identity]}] ({_show(combo)})",
                "remove the duplicate: each trial of a sweep must differ from the others",
            ))
        seen.setdefault(identity, index)
    if problems:
        unique = list({(p.field, p.problem): p for p in problems}.values())
        raise UploadRejected(unique)
    return trials


_SWEEP_FIX = (
    'write an object of lists ({"epochs": [5, 10]}: every combination) or a list of objects '
    '([{"epochs": 5}, {"lr": 0.01}])'
)


def _expand(sweep: dict[str, list[Any]] | list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    """The sweep's combinations, and how to name the one at an index in a refusal; refuses the sweep's own shape
    (empty, unknown names, repeated values, more than ``limits.SWEEP_MAX_TRIALS`` trials)."""
    allowed = [h.name for h in hyperparameters.manifest_rows()]
    problems: list[Problem] = []

    def check_names(names: Any, field: str) -> None:
        for name in names:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                problems.append(Problem(f"{field}.{name}", "unknown hyperparameter",
                                        f"{hint}allowed names: {', '.join(allowed)}"))

    if isinstance(sweep, dict):
        if not sweep:
            raise UploadRejected.one("sweep", "is empty", f"{_SWEEP_FIX}, or leave it out for one trial")
        check_names(sweep, "sweep")
        for name, values in sweep.items():
            if not values:
                problems.append(Problem(f"sweep.{name}", "is an empty list", "give it at least one value"))
            shown = [json.dumps(v, sort_keys=True) for v in values]
            repeated = sorted({v for v in shown if shown.count(v) > 1})
            if repeated:
                problems.append(Problem(f"sweep.{name}", f"repeats {', '.join(repeated)}",
                                        "give each value once (the same value twice would be the same trial)"))
        count = math.prod(len(v) for v in sweep.values())
    else:
        if not sweep:
            raise UploadRejected.one("sweep", "is an empty list", f"{_SWEEP_FIX}, or leave it out for one trial")
        for index, item in enumerate(sweep):
            if not item:
                problems.append(Problem(f"sweep[{index}]", "is empty",
                                        "give each trial at least one hyperparameter that differs"))
            check_names(item, f"sweep[{index}]")
        count = len(sweep)
    if count > limits.SWEEP_MAX_TRIALS:
        problems.append(Problem(
            "sweep", f"asks for {count} trials, more than the {limits.SWEEP_MAX_TRIALS} one manifest may start",
            f"sweep fewer values (at most {limits.SWEEP_MAX_TRIALS} trials), or split it over several manifests",
        ))
    if problems:
        raise UploadRejected(problems)
    if isinstance(sweep, dict):
        names = list(sweep)
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(sweep[n] for n in names))]
        return combos, lambda index: "sweep"
    return [dict(item) for item in sweep], lambda index: f"sweep[{index}]"


def _sweep_problem(err: Any, combo: dict[str, Any], where: str, sweep: Any) -> Problem:
    """One trial's schema error, named where the value came from: the sweep (``sweep.epochs``,
    ``sweep[1].arch``) or the manifest's ``hyperparameters``; an error of the whole combination names the trial."""
    loc = tuple(err.get("loc", ()))
    problem = _problem({**err, "loc": ("hyperparameters", *loc)})
    if not loc:  # a rule across values (freeze-epochs within epochs)
        return Problem(where, f"the trial {_show(combo)}: {problem.problem}", problem.fix)
    name = str(loc[0])
    flag = Hyperparameters.model_fields[name].alias or name if name in Hyperparameters.model_fields else name
    if flag in combo:
        field = f"sweep.{flag}" if isinstance(sweep, dict) else f"{where}.{flag}"
        return Problem(field, problem.problem, problem.fix)
    return problem


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(file)"


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Hyperparameters if loc[:1] in (("hyperparameters",), ("sweep",)) else Manifest
    return [f.alias or name for name, f in model.model_fields.items()]


def _problem(err: Any) -> Problem:
    """Turn one pydantic error into a sentence naming the field, what is wrong and how to fix it."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    given = err.get("input")
    name = _field_name(loc)
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return Problem(name, "unknown field", f"{hint}allowed fields here: {', '.join(allowed)}")
    if kind == "missing":
        return Problem(name, "required field is missing", f'add "{loc[-1]}" to the manifest')
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return Problem(name, f"must be a whole number, got {_show(given)}", "write an integer without quotes, e.g. 10")
    if kind in ("float_type", "float_parsing", "finite_number"):
        return Problem(name, f"must be a finite number, got {_show(given)}", "write a number without quotes, e.g. 0.01")
    if kind in ("bool_type", "bool_parsing"):
        return Problem(name, f"must be true or false, got {_show(given)}", "write true or false without quotes")
    if kind in ("string_type",):
        return Problem(name, f"must be a string, got {_show(given)}", "put the value in double quotes")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return Problem(name, f"must be a JSON object, got {_show(given)}", 'write it as {"name": value, ...}')
    if kind in ("enum", "literal_error"):
        return Problem(name, f"unknown value {_show(given)}", f"use one of: {ctx.get('expected', '')}")
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return Problem(
            name, f"must be {words} {ctx.get(key)}, got {_show(given)}", f"use a value {words} {ctx.get(key)}"
        )
    if kind == "string_too_short":
        return Problem(name, "must not be empty", "fill it in")
    if kind == "string_too_long":
        return Problem(name, f"is too long (at most {ctx.get('max_length')} characters)", "shorten it")
    if kind == "value_error":
        what, _, fix = str(ctx.get("error") or err.get("msg", "invalid value")).partition(_FIX_SEP)
        shown = "" if isinstance(given, dict) else f"{_show(given)} "
        return Problem(name, f"{shown}{what}", fix or "see docs/manifest.md")
    return Problem(name, str(err.get("msg", "invalid value")), "see docs/manifest.md for the allowed values")


def _show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
