"""Fixtures for the infrastructure tests: template.yaml and the ASL file, read as data.

``template.yaml`` uses CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt``, ``!If``, ...); the
tiny loader below turns each into the long form (``{"Fn::Sub": ...}``) so tests can walk plain data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "training_pipeline.asl.json"

try:
    import nyanops  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form intrinsic functions."""


def _intrinsic(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ("Base64", "Cidr", "And", "Equals", "If", "Not", "Or", "FindInMap", "GetAtt", "GetAZs",
             "ImportValue", "Join", "Select", "Split", "Sub", "Transform", "Condition"):
    CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic("Condition" if _tag == "Condition" else f"Fn::{_tag}"))
CloudFormationLoader.add_constructor("!Ref", _intrinsic("Ref"))


def load_template(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=CloudFormationLoader)


@pytest.fixture(scope="session")
def template_text() -> str:
    return TEMPLATE.read_text()


@pytest.fixture(scope="session")
def template(template_text: str) -> dict[str, Any]:
    return load_template(template_text)


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def asl_text() -> str:
    return ASL.read_text()


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)
