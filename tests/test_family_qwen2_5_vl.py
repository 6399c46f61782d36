"""Tests of the tiny Qwen2.5-VL builder (:mod:`mllmu_tasks.mini.families.qwen2_5_vl`).

The checks are those of ``test_family_qwen2_vl`` (imported, so pytest collects them here too), run on this
module's ``tiny`` fixture, which builds Qwen2.5-VL.
"""

from __future__ import annotations

from family_support import family_fixture
from test_family_qwen2_vl import (  # noqa: F401
    test_chat_template_image_prompt_encodes_and_runs,
    test_generation_config_is_greedy_with_hub_eos,
    test_image_changes_continuation_logprob,
    test_merger_lives_inside_the_vision_tower,
    test_parameter_count_is_tiny,
    test_reloads_as_family,
    test_text_only_prompt_runs,
)

tiny = family_fixture("qwen2_5_vl")


def test_vision_tower_is_windowed_qwen2_5(tiny):
    vision = tiny.model.config.vision_config
    assert vision.model_type == "qwen2_5_vl_vision" and list(vision.fullatt_block_indexes) == [1]
    assert "model.visual.merger.ln_q.bias" not in dict(tiny.model.named_parameters())  # RMSNorm merger
