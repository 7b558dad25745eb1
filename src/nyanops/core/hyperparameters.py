"""train.py's flags in one table: names, types, ranges, defaults, help, and who may set them.

Standard library only, Python >= 3.9: imported by the core (the manifest schema is built from it, the
comparison table takes its run-mechanics list from it) and copied into the SageMaker code bundle
(``ml_code/hyperparameters.py`` is a symlink to this file; train.py builds its argparse from it). The
tables in docs/manifest.md and ml_code/README.md are rendered from it (``scripts/hyperparameter_docs.py``)
and a test keeps them equal.

Two roles:

``recipe``     what the model learns from; a manifest may set it; differing values are comparison columns.
``mechanics``  how a job runs (threads, GPUs, paths, checks); never a comparison column. A few of them
               (``workers``, ``test-batch-size``) may be set in a manifest; the others (paths, weights,
               expected dataset hashes, checkpoints) are set only by the pipeline or by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The most classes one model supports end to end (num-classes' range; the pipeline checks datasets too).
MAX_CLASSES = 1000
MAX_EPOCHS = 1000
RECIPE = "recipe"
MECHANICS = "mechanics"
FIT_ON = ("train+val", "train")
ARCHITECTURES = ("efficientnet_lite2", "efficientnet_lite1", "efficientnet_lite0", "resnet18")
VIEW_SETS = ("centre", "flip")  # ml_code/views.py defines them (a test keeps the two equal)


@dataclass(frozen=True)
class Hyperparameter:
    """One ``--name value`` flag of train.py."""

    name: str  # the flag without ``--`` (also the manifest key and the SageMaker hyperparameter name)
    type: str  # "int", "float", "bool" or "str"
    default: Any  # None: resolved at run time (see ``default_text``)
    help: str  # one line
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # (minimum, maximum] instead of [minimum, maximum]
    choices: tuple[str, ...] = ()
    role: str = RECIPE
    in_manifest: bool = True  # a manifest may set it (always true for the recipe)
    default_text: str = ""  # how docs show the default when it is not a constant
    zero_means: str = ""  # an int whose 0 is a sentinel outside [minimum, maximum] (train.py only)
    env: tuple[str, ...] = ()  # environment variables that supply the default (SageMaker's SM_*)
    container_default: str = ""  # path default inside a SageMaker container (its parent exists there)
    local_default: str = ""  # path default outside a container
    allowed: str = ""  # how docs describe the allowed values when no range or choices say it

    @property
    def attr(self) -> str:
        """The Python attribute name (``batch-size`` -> ``batch_size``)."""
        return self.name.replace("-", "_")

    @property
    def compared(self) -> bool:
        return self.role == RECIPE

    def allowed_text(self, manifest: bool = False) -> str:
        """The allowed values in words, as the docs show them (``manifest``: without train.py's 0 sentinel)."""
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.type == "bool":
            return "true / false"
        if self.allowed or (self.minimum is None and self.maximum is None):
            return self.allowed or ("path" if self.type == "str" else "")
        low = _number(self.minimum)
        high = _number(self.maximum)
        text = f"> {low}, ≤ {high}" if self.exclusive_minimum else f"{low}..{high}"
        return f"0 ({self.zero_means}) or {text}" if self.zero_means and not manifest else text

    def default_shown(self) -> str:
        if self.default_text:
            return self.default_text
        if self.type == "bool":
            return "true" if self.default else "false"
        if self.default == "":
            return '""'
        return f"`{self.default}`" if self.type == "str" else _number(self.default)

    def check(self, value: Any) -> Any:
        """``value`` converted to this flag's type and checked; ValueError with a one-line reason."""
        if self.type == "bool":
            return str_to_bool(value)
        if self.type == "str":
            text = str(value)
            if self.choices and text not in self.choices:
                raise ValueError(f"invalid choice {text!r} (choose from {', '.join(self.choices)})")
            return text
        kind = int if self.type == "int" else float
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {self.type}, got {value!r}") from None
        if self.zero_means and number == 0:
            return number
        if self.minimum is not None and (number <= self.minimum if self.exclusive_minimum else number < self.minimum):
            sign = ">" if self.exclusive_minimum else ">="
            extra = f" (or 0: {self.zero_means})" if self.zero_means else ""
            raise ValueError(f"must be {sign} {_number(self.minimum)}{extra}, got {value}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"must be <= {_number(self.maximum)}, got {value}")
        return number


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int) and value >= 2**31 - 1:
        return "2^31-1"
    return str(value)


def str_to_bool(value: Any) -> bool:
    """SageMaker's string hyperparameters as booleans: true/false/1/0/yes/no/on/off (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off"):
        return False
    raise ValueError(f"expected true/false/1/0, got {value!r}")


H = Hyperparameter
TABLE: tuple[Hyperparameter, ...] = (
    # -- the recipe ----------------------------------------------------------------------------------
    H("epochs", "int", 15, "total epochs (classifier-only epochs first, then any fine-tuning)", 1, MAX_EPOCHS),
    H(
        "freeze-epochs",
        "int",
        MAX_EPOCHS,
        "first epochs train only the classifier on cached backbone features (capped at epochs; the rest "
        "fine-tune the whole network)",
        0,
        MAX_EPOCHS,
        default_text=f"{MAX_EPOCHS} (= all epochs)",
    ),
    H("batch-size", "int", 16, "training mini-batch size", 1, 1024),
    H("lr", "float", 0.05, "classifier learning rate; fine-tuning runs at lr / 100 with cosine decay", 0, 10, True),
    H("momentum", "float", 0.9, "SGD momentum", 0, 0.999),
    H(
        "num-classes",
        "int",
        0,
        "expected number of classes; must equal the class folders",
        2,
        MAX_CLASSES,
        zero_means="from the class folders",
        default_text="0 (the dataset's class count)",
    ),
    H("arch", "str", "efficientnet_lite2", "backbone (resnet18 is the seed's model)", choices=ARCHITECTURES),
    H("pretrained", "bool", True, "start from ImageNet weights (never silently falls back to random)"),
    H(
        "augment",
        "bool",
        True,
        "train on a random view of each image per epoch (see views); fine-tuning: the seed's crop / flips / affine",
    ),
    H("image-size", "int", 288, "network input side in pixels", 32, 1024),
    H(
        "fit-on",
        "str",
        "train+val",
        "train+val: fit both splits for the fixed epochs, keep the last; train: keep the best-val epoch",
        choices=FIT_ON,
    ),
    H(
        "views",
        "str",
        "flip",
        "views of each image the frozen classifier trains on (one at random per epoch, with augment) and "
        "scoring averages (with tta): centre = the centre crop; flip = it and its mirror image",
        choices=VIEW_SETS,
    ),
    H("tta", "bool", True, "scoring (val, evaluation, inference) averages the class probabilities of all views"),
    H("seed", "int", 0, "seed for initialisation, shuffling and augmentation", 0, 2**31 - 1),
    # -- run mechanics -------------------------------------------------------------------------------
    H("test-batch-size", "int", 16, "batch size of the feature / scoring passes", 1, 1024, role=MECHANICS),
    H("workers", "int", 0, "image decoding threads (0 = CPU count)", 0, 64, role=MECHANICS),
    H(
        "num-gpus",
        "int",
        None,
        "GPUs to use (0 = CPU); one GPU is used, with mixed precision",
        0,
        64,
        role=MECHANICS,
        in_manifest=False,
        env=("SM_NUM_GPUS",),
        default_text="SM_NUM_GPUS, else all",
    ),
    H("dry-run", "bool", False, "one epoch of one batch: checks the pipeline only", role=MECHANICS, in_manifest=False),
    H(
        "weights",
        "str",
        "",
        "ImageNet state_dict file to use instead of the package's / the torch hub cache",
        role=MECHANICS,
        in_manifest=False,
    ),
    H(
        "model-dir",
        "str",
        None,
        "where model.pth and model_meta.json go",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_MODEL_DIR",),
        container_default="/opt/ml/model",
        local_default="model",
        default_text="SM_MODEL_DIR, /opt/ml/model in a container, else ./model",
    ),
    H(
        "data-dir",
        "str",
        None,
        "one folder holding train/ and val/ (the seed's training channel)",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_CHANNEL_TRAINING",),
        default_text="SM_CHANNEL_TRAINING",
    ),
    H(
        "train-dir",
        "str",
        None,
        "ImageFolder root of the train split",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_CHANNEL_TRAIN",),
        default_text="SM_CHANNEL_TRAIN, else DATA_DIR/train",
    ),
    H(
        "val-dir",
        "str",
        None,
        "ImageFolder root of the val split",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_CHANNEL_VAL",),
        default_text="SM_CHANNEL_VAL, else DATA_DIR/val",
    ),
    H(
        "output-data-dir",
        "str",
        None,
        "where training_history.json goes",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_OUTPUT_DATA_DIR",),
        default_text="SM_OUTPUT_DATA_DIR",
    ),
    H(
        "checkpoint-dir",
        "str",
        None,
        "feature cache and per-epoch checkpoints; a restarted job resumes from them",
        role=MECHANICS,
        in_manifest=False,
        env=("SM_CHECKPOINT_DIR",),
        container_default="/opt/ml/checkpoints",
        default_text="SM_CHECKPOINT_DIR (the local runner), /opt/ml/checkpoints in a container, else none",
    ),
    H(
        "failure-file",
        "str",
        None,
        "where the one-line failure reason goes",
        role=MECHANICS,
        in_manifest=False,
        default_text="SM_OUTPUT_DIR/failure, /opt/ml/output/failure in a container",
    ),
    H(
        "expected-train-hash",
        "str",
        "",
        "content hash the train split was sealed with; a mismatch fails the job (empty = no check)",
        role=MECHANICS,
        in_manifest=False,
        allowed="64 hex digits (sha256), or empty",
    ),
    H(
        "expected-val-hash",
        "str",
        "",
        "content hash the val split was sealed with; a mismatch fails the job (empty = no check)",
        role=MECHANICS,
        in_manifest=False,
        allowed="64 hex digits (sha256), or empty",
    ),
)

BY_NAME: dict[str, Hyperparameter] = {h.name: h for h in TABLE}
RECIPE_NAMES: tuple[str, ...] = tuple(h.name for h in TABLE if h.role == RECIPE)
MECHANICS_NAMES: frozenset[str] = frozenset(h.name for h in TABLE if h.role == MECHANICS)
MANIFEST_NAMES: tuple[str, ...] = tuple(h.name for h in TABLE if h.in_manifest)
# What train.py records with the model (and so with the trial): everything but paths and hashes.
RECORDED_NAMES: tuple[str, ...] = tuple(
    h.name
    for h in TABLE
    if h.role == RECIPE or h.name in ("test-batch-size", "workers", "num-gpus", "dry-run", "weights")
)


def defaults() -> dict[str, Any]:
    """The constant defaults of the recipe, keyed by flag name."""
    return {h.name: h.default for h in TABLE if h.role == RECIPE}


def manifest_rows() -> list[Hyperparameter]:
    return [h for h in TABLE if h.in_manifest]


def markdown_table(rows: Iterable[Hyperparameter], *, roles: bool = False, manifest: bool = False) -> str:
    """The docs' table (name, type, allowed, default, meaning[, role]) as GitHub markdown; ``manifest``:
    the values a manifest accepts (no train.py-only sentinels)."""
    head = ["name", "type", "allowed", "default", "meaning"] + (["role"] if roles else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for h in rows:
        cells = [f"`{h.name}`", h.type, h.allowed_text(manifest), h.default_shown(), h.help]
        if roles:
            cells.append(h.role if h.in_manifest or h.role == RECIPE else f"{h.role} (not in manifests)")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


DOC_BEGIN = "<!-- hyperparameter table: begin (generated from src/nyanops/core/hyperparameters.py) -->"
DOC_END = "<!-- hyperparameter table: end -->"


def render_docs(text: str, table: str) -> str:
    """``text`` with the part between DOC_BEGIN and DOC_END replaced by ``table``."""
    start = text.index(DOC_BEGIN) + len(DOC_BEGIN)
    end = text.index(DOC_END)
    return text[:start] + "\n" + table + "\n" + text[end:]


def resolve(given: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """The recipe a trial trains with: train.py's defaults, the manifest's values over them, ``num-classes`` from
    the dataset, ``freeze-epochs`` capped at ``epochs`` (as train.py caps it); run-mechanics values the manifest
    gave are kept too. Keyed by flag name, in table order."""
    values = {**defaults(), "num-classes": num_classes, **given}
    values["freeze-epochs"] = min(int(values["freeze-epochs"]), int(values["epochs"]))
    return {h.name: values[h.name] for h in TABLE if h.name in values}


def recipe_identity(values: dict[str, Any]) -> dict[str, Any] | None:
    """The part of ``values`` that decides what a model learns (the recipe, run mechanics left out), each value in
    its row's type, ``freeze-epochs`` capped at ``epochs``: two trials with the same identity (and the same data
    and code) train the same model. None when a recipe value is missing or not valid (nothing to match)."""
    out: dict[str, Any] = {}
    for name in RECIPE_NAMES:
        if name not in values:
            return None
        try:
            out[name] = BY_NAME[name].check(values[name])
        except ValueError:
            return None
    out["freeze-epochs"] = min(out["freeze-epochs"], out["epochs"])
    return out
