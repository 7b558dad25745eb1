"""The FrameworkImage mapping is what AWS's published Deep Learning Container tables give
(scripts/gen_image_map.py), and the evaluation never runs a GPU image on a CPU instance."""

from __future__ import annotations

import gen_image_map


def test_mapping_block_parses_and_is_used(template, template_text):
    block = gen_image_map.current_block(template_text)
    mapping = template["Mappings"]["FrameworkImage"]
    assert len(mapping) >= 30 and "us-east-1" in mapping
    for region, pair in mapping.items():
        assert set(pair) == {"cpu", "gpu"}
        assert f".dkr.ecr.{region}." in pair["cpu"] and f"    {region}:" in block
        assert pair["cpu"].endswith("/pytorch:2.14-cpu-amzn2023-sagemaker")
        assert pair["gpu"].endswith("/pytorch:2.14-cu133-amzn2023-sagemaker")


def test_mapping_is_not_stale(template_text):
    expected = gen_image_map.render(gen_image_map.image_map())
    assert gen_image_map.current_block(template_text) == expected, "run: python scripts/gen_image_map.py --write"


def test_a_patched_deep_learning_container_is_used():
    """PyTorch 2.8's images were patched until 2026-08-06; the Amazon Linux 2023 line is the patched one."""
    major, minor = (int(x) for x in gen_image_map.PYTORCH_VERSION.split("."))
    assert (major, minor) >= (2, 11)
    assert gen_image_map.REPOSITORY == "pytorch" and "amzn2023" in gen_image_map.TAGS["cpu"]


def test_gpu_condition_covers_every_gpu_instance(template):
    allowed = template["Parameters"]["TrainingInstanceType"]["AllowedValues"]
    gpu = {t for t in allowed if t.split(".")[1][0] in "gp"}
    in_condition = {eq["Fn::Equals"][1] for eq in template["Conditions"]["GpuTraining"]["Fn::Or"]}
    assert in_condition == gpu


def test_the_evaluation_image_follows_the_processing_instance(template, resources):
    """Evaluate and EvaluateChampion run on ProcessingInstanceType: the CPU image unless it is a GPU type."""
    processing_gpu = {t for t in template["Parameters"]["ProcessingInstanceType"]["AllowedValues"]
                      if t.split(".")[1][0] in "gp"}
    assert template["Conditions"]["GpuProcessing"] == {"Fn::Equals": [{"Ref": "ProcessingInstanceType"},
                                                                       *sorted(processing_gpu)]}
    image = resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]["ProcessingImage"]
    assert image == {"Fn::If": ["UseMappedEvaluationImage",
                                {"Fn::If": ["GpuProcessing",
                                            {"Fn::FindInMap": ["FrameworkImage", {"Ref": "AWS::Region"}, "gpu"]},
                                            {"Fn::FindInMap": ["FrameworkImage", {"Ref": "AWS::Region"}, "cpu"]}]},
                                {"Ref": "EvaluationImage"}]}


def test_the_processing_states_use_the_processing_image(asl):
    states = asl["States"]["Trials"]["ItemProcessor"]["States"]  # the per-trial states: inside the sweep's Map
    for name in ("Evaluate", "EvaluateChampion"):
        assert states[name]["Parameters"]["AppSpecification"]["ImageUri"] == "${ProcessingImage}"
    assert states["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"] == "${TrainingImage}"
