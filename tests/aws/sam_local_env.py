"""The environment ``sam local invoke FUNCTION --env-vars FILE`` gives a function, computed the way SAM CLI
does it (samcli 1.x: ``commands/local/lib/local_lambda.py`` ``_make_env_vars``, ``local/lambdafn/env_vars.py``
``EnvironmentVariables.resolve`` and ``lib/intrinsic_resolver``):

- the variables are the Globals' ``Environment.Variables`` merged with the function's (the function wins);
- intrinsics are resolved with the template's parameter defaults, its ``Mappings`` and SAM's pseudo
  parameters (``AWS::Region`` us-east-1, ``AWS::AccountId`` 123456789012, ...); ``Ref`` to a resource gives its
  *logical id* (why a bare template resolves ``BUCKET_NAME=DataBucket``); ``Fn::If`` follows the template's
  conditions; anything left unresolved (a dict or list) becomes "";
- then, per variable: the shell's value if the variable is set there, then the env-vars file's
  ``Parameters`` block, then its block for the function (by logical id), highest last; only variables
  the template defines are taken from the file;
- True/False become "true"/"false", other scalars ``str()``.

``tests/infra/test_sam_local_env.py`` checks this against SAM CLI itself when its virtualenv is present.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "local",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/local/51af3dc0-da77-11e4-872e-1234567db123",
    "AWS::URLSuffix": "localhost",
}


class Unresolved(Exception):
    pass


class Resolver:
    def __init__(self, template: Mapping[str, Any]) -> None:
        self.template = template
        self.parameters = {
            name: spec.get("Default")
            for name, spec in (template.get("Parameters") or {}).items()
            if isinstance(spec, Mapping) and "Default" in spec
        }
        self.resources = template.get("Resources") or {}
        self.conditions = template.get("Conditions") or {}

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            value = self.parameters[name]
            if isinstance(value, float):  # SAM's symbol table keeps str, list, bool and int values only
                raise Unresolved(name)
            return value
        if name in self.resources:
            return name  # SAM's symbol table: a resource's Ref is its logical id
        raise Unresolved(name)

    def condition(self, name: str) -> bool:
        return bool(self.value(self.conditions[name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, Mapping):
            return node
        (key, arg), *more = node.items()
        if more or not (key in ("Ref", "Condition") or key.startswith("Fn::")):
            return {k: self.value(v) for k, v in node.items()}
        if key == "Ref":
            return self.ref(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            a, b = (self.value(v) for v in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.value(arg[0])
        if key == "Fn::And":
            return all(self.value(v) for v in arg)
        if key == "Fn::Or":
            return any(self.value(v) for v in arg)
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(str(self.value(v)) for v in items)
        if key == "Fn::Sub" and isinstance(arg, str):
            out, rest = "", arg
            while "${" in rest:
                head, _, tail = rest.partition("${")
                name, _, rest = tail.partition("}")
                out += head + str(self.ref(name))
            return out + rest
        if key == "Fn::FindInMap":  # RecordResults' MODEL_IMAGE (the FrameworkImage mapping)
            mapping, top, second = (self.value(v) for v in arg)
            return self.template["Mappings"][mapping][top][second]
        raise Unresolved(key)  # Fn::GetAtt, ... (none in the functions' environments)


def _stringify(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)) or value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def function_environment(
    template: Mapping[str, Any],
    logical_id: str,
    env_vars_file: Mapping[str, Any] | None = None,
    shell: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The non-AWS_* variables SAM CLI sets for ``logical_id`` (AWS_* are SAM's own: credentials, region)."""
    resolver = Resolver(template)
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    props = (template["Resources"][logical_id].get("Properties")) or {}
    variables = {**(globals_env.get("Variables") or {}), **((props.get("Environment") or {}).get("Variables") or {})}
    overrides: dict[str, Any] = {}
    overrides.update((env_vars_file or {}).get("Parameters") or {})
    overrides.update((env_vars_file or {}).get(logical_id) or {})
    shell = shell or {}
    out = {}
    for name, raw in variables.items():
        try:
            value = resolver.value(raw)
        except Unresolved:
            value = raw
        if name in shell:
            value = shell[name]
        if name in overrides:
            value = overrides[name]
        out[name] = _stringify(value)
    return out


# -- the README's list of example invocations --------------------------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"
EVENTS = README.parent / "events"
ROW = re.compile(r"^\| `(?P<function>\w+)` \| `(?P<event>events/[^`]+\.json)` \| `(?P<result>[^`]+)` \|\s*$")


@dataclass(frozen=True)
class Invocation:
    function: str  # the logical id in template.yaml
    event: str  # events/<file>.json
    result: str  # a fragment of the handler's JSON result, e.g. "outcome": "started"


def readme_invocations(text: str | None = None) -> list[Invocation]:
    """The rows of the README's table of example events (function, event file, expected result)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [Invocation(**m.groupdict()) for line in text.splitlines() if (m := ROW.match(line))]


def load_env_vars_file() -> dict[str, Any]:
    return json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
