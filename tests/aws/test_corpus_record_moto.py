"""Every case of the record corpus (``tests/reliability/corpus_record.py``) under moto: versioned S3, Step
Functions, SNS and SageMaker Experiments (with AWS's limits), the real handlers."""

from __future__ import annotations

from typing import Any

import pytest
from reliability.corpus_record import CASES, Case

from .conftest import World
from .side_moto import MotoSide


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_record_case_on_aws(case: Case, world: World, lambda_context: Any) -> None:
    world.put_code()
    case.run(MotoSide(world, lambda_context))
