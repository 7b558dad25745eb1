"""``template.yaml`` read as data: the Lambda functions it declares (logical id, code folder, handler,
environment), for ``nyanops invoke`` and the tests that check every function and event.

CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt``, ``!If``...) become their long form
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``) so the template can be walked as plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
TEMPLATE_FILE = "template.yaml"
# Lambda's own defaults where neither the function nor the Globals set a value.
LAMBDA_DEFAULT_TIMEOUT = 3
LAMBDA_DEFAULT_MEMORY = 128


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form intrinsic functions."""


def _intrinsic(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ("Base64", "Cidr", "And", "Equals", "If", "Not", "Or", "FindInMap", "GetAtt", "GetAZs",
             "ImportValue", "Join", "Select", "Split", "Sub", "Transform"):  # fmt: skip
    CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic(f"Fn::{_tag}"))
CloudFormationLoader.add_constructor("!Ref", _intrinsic("Ref"))
CloudFormationLoader.add_constructor("!Condition", _intrinsic("Condition"))


def load_template(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=CloudFormationLoader)
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return doc


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str  # e.g. functions/start_pipeline
    handler: str  # e.g. app.lambda_handler
    environment: dict[str, Any] = field(default_factory=dict)  # the function's own Variables (unresolved)
    timeout_seconds: int = LAMBDA_DEFAULT_TIMEOUT  # Timeout, the function's or the Globals'
    memory_mb: int = LAMBDA_DEFAULT_MEMORY  # MemorySize, the function's or the Globals'

    @property
    def code_dir(self) -> str:
        """The folder name under functions/ (``start_pipeline``)."""
        return self.code_uri.rstrip("/").rsplit("/", 1)[-1]


def _number(value: Any, default: int) -> int:
    """A literal number (an intrinsic such as ``!Ref`` cannot be resolved here: Lambda's default)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every ``AWS::Serverless::Function``, by logical id, with the Globals' handler, timeout and memory where
    it sets none."""
    glob = ((template.get("Globals") or {}).get("Function")) or {}
    out = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        props = resource.get("Properties") or {}
        env = ((props.get("Environment") or {}).get("Variables")) or {}
        out[logical_id] = FunctionSpec(
            logical_id,
            str(props.get("CodeUri", ".")),
            str(props.get("Handler") or glob.get("Handler") or ""),
            dict(env),
            _number(props.get("Timeout", glob.get("Timeout")), LAMBDA_DEFAULT_TIMEOUT),
            _number(props.get("MemorySize", glob.get("MemorySize")), LAMBDA_DEFAULT_MEMORY),
        )
    return out
