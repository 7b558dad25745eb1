"""The FrameworkImage mapping is what the SageMaker SDK says today (scripts/gen_image_map.py)."""

from __future__ import annotations

import importlib.util

import gen_image_map
import pytest


def test_mapping_block_parses_and_is_used(template, template_text):
    block = gen_image_map.current_block(template_text)
    mapping = template["Mappings"]["FrameworkImage"]
    assert len(mapping) >= 20 and "us-east-1" in mapping
    for region, pair in mapping.items():
        assert set(pair) == {"cpu", "gpu"}
        assert f".dkr.ecr.{region}." in pair["cpu"] and "-cpu-" in pair["cpu"] and "-gpu-" in pair["gpu"]
        assert f"    {region}:" in block


def test_gpu_condition_covers_every_gpu_instance(template):
    allowed = template["Parameters"]["TrainingInstanceType"]["AllowedValues"]
    gpu = {t for t in allowed if t.split(".")[1][0] in "gp"}
    in_condition = {eq["Fn::Equals"][1] for eq in template["Conditions"]["GpuTraining"]["Fn::Or"]}
    assert in_condition == gpu


@pytest.mark.skipif(
    importlib.util.find_spec("sagemaker") is None,
    reason="the sagemaker SDK (v2: pip install 'sagemaker>=2.257,<3' 'setuptools<81') is not installed",
)
def test_mapping_is_not_stale(template_text):
    expected = gen_image_map.render(gen_image_map.image_map())
    assert gen_image_map.current_block(template_text) == expected, "run: python scripts/gen_image_map.py --write"
