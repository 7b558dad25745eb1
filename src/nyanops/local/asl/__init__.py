"""Local executor for Amazon States Language (JSONPath) state machines.

``load_state_machine(path_or_dict, substitutions)`` validates a definition (refusing what it cannot run
faithfully) and ``StateMachine.run(...)`` executes it with Task resources served by a ``TaskRunner``.
"""

from .definition import SUPPORTED_STATE_TYPES, Definition, MissingSubstitution, apply_substitutions, load_definition
from .errors import (
    DefinitionError,
    InvalidDefinition,
    StatesError,
    TaskFailed,
    UnsupportedDefinition,
)
from .executor import (
    ExecutionResult,
    StateMachine,
    TaskContext,
    TaskRunner,
    load_state_machine,
    retry_delay,
)
from .intrinsics import SUPPORTED_FUNCTIONS
from .listener import ExecutionListener, NullListener, Serialized

__all__ = [
    "SUPPORTED_FUNCTIONS",
    "SUPPORTED_STATE_TYPES",
    "Definition",
    "DefinitionError",
    "ExecutionListener",
    "ExecutionResult",
    "InvalidDefinition",
    "MissingSubstitution",
    "NullListener",
    "Serialized",
    "StateMachine",
    "StatesError",
    "TaskContext",
    "TaskFailed",
    "TaskRunner",
    "UnsupportedDefinition",
    "apply_substitutions",
    "load_definition",
    "load_state_machine",
    "retry_delay",
]
