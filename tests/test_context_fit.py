"""mllmu-eval refuses, before the model loads, prompts that do not fit the context (issue 13, item 7)."""

import json
import subprocess
import sys

import pytest
from transformers import AutoProcessor

from mllmu_tasks import cli, context_fit
from mllmu_tasks.backend import ContextOverflowError
from mllmu_tasks.backend_registry import register
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

TASKS = ["mllmu_retain_gen_img", "mllmu_retain_gen_txt", "mllmu_retain_cls_img"]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-fit"), size="test", seed=2)


@pytest.fixture(scope="module")
def leaves(tiny_vlm):
    register()
    return cli.prebuild_suite_tasks("mllmu-vlm", TASKS, {"pretrained": str(tiny_vlm), "source": "mini"})


def prompts(task, limit):
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    out = [(r.args[0], r.args[1], (r.args[2]["visual"] if len(r.args) > 2 else [])) for r in task.instances]
    task._instances = None
    return out


def test_counts_equal_the_processors(tiny_vlm, leaves):
    """Every few-shot prompt's estimate (one processor call per image size) equals the processor's own count."""
    processor = AutoProcessor.from_pretrained(tiny_vlm)
    config, tokenizer, _ = context_fit.load_counting_tools(str(tiny_vlm), {})
    counter = context_fit.PromptCounter(tokenizer, processor, "<image>", 999)
    most_images = 0
    for name in TASKS:
        for prompt, _, images in prompts(leaves[name], 3):
            by_processor = processor(text=[prompt], images=[im.convert("RGB") for im in images] or None,
                                     return_tensors="pt")["input_ids"].shape[1]
            assert (counter.estimate(prompt, images) if images else counter.text_tokens(prompt)) == by_processor
            assert prompt.count("<image>") == len(images)
            most_images = max(most_images, len(images))
    assert most_images > 1  # classification: one image per demonstration question, then the question's


def test_the_limit_is_exact(tiny_vlm, leaves):
    """max_length = longest prompt + answer budget passes; one token less is refused, naming the task."""
    longest = {}
    processor = AutoProcessor.from_pretrained(tiny_vlm)
    for name in TASKS:
        for prompt, kwargs, images in prompts(leaves[name], 2):
            n = processor(text=[prompt], images=[im.convert("RGB") for im in images] or None,
                          return_tensors="pt")["input_ids"].shape[1]
            longest[name] = max(longest.get(name, 0), n + kwargs["max_gen_toks"])
    for name, need in longest.items():
        args = {"pretrained": str(tiny_vlm), "max_length": need}
        context_fit.check_prompts_fit({name: leaves[name]}, "mllmu-vlm", args, limit=2)
        with pytest.raises(ContextOverflowError, match=rf"^{name}, document \d: the prompt is \d+ tokens.* leaves "
                                                       rf"{need - 1 - 50};"):
            context_fit.check_prompts_fit({name: leaves[name]}, "hf-multimodal", {**args, "max_length": need - 1},
                                          limit=2)
    # --gen_kwargs max_gen_toks beats the task's 50 tokens
    name = TASKS[1]
    context_fit.check_prompts_fit({name: leaves[name]}, "hf", {"pretrained": str(tiny_vlm),
                                                               "max_length": longest[name] - 40},
                                  limit=2, gen_kwargs={"max_gen_toks": 10})


def test_without_max_length_the_models_own_context_is_used(tiny_vlm, leaves):
    """No max_length: lm-eval's rule (text config's max_position_embeddings, 2048 here) fits every prompt; a vLLM
    backend without max_model_len is not checked (vLLM derives its own)."""
    context_fit.check_prompts_fit(leaves, "mllmu-vlm", {"pretrained": str(tiny_vlm)}, limit=2)
    context_fit.check_prompts_fit(leaves, "vllm-vlm", {"pretrained": str(tiny_vlm)}, limit=2)
    with pytest.raises(ContextOverflowError):
        context_fit.check_prompts_fit(leaves, "vllm-vlm", {"pretrained": str(tiny_vlm), "max_model_len": 64}, limit=2)


def test_mllmu_eval_refuses_before_loading(tiny_vlm, tmp_path):
    """One line, exit 2, before the model loads (the weights file is removed: loading would fail otherwise)."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_vlm, model)
    (model / "model.safetensors").unlink()
    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", "hf", "--model_args",
                           f"pretrained={model},max_length=120", "--tasks", "mllmu_retain_gen_txt", "--limit", "2",
                           "--metadata", json.dumps({"source": "mini"})],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert last.startswith("mllmu-eval: error: mllmu_retain_gen_txt, document ") and "leaves 70;" in last


def test_a_checkpoints_max_new_tokens_is_refused_for_stock_hf_backends(tiny_vlm, leaves, tmp_path):
    """lm-eval's hf/hf-multimodal pass only max_length: the checkpoint's max_new_tokens would win over the tasks'."""
    import shutil

    from mllmu_tasks.sources import SettingsError

    model = tmp_path / "model"
    shutil.copytree(tiny_vlm, model)
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "max_new_tokens": 20}))
    args = {"pretrained": str(model)}
    with pytest.raises(SettingsError, match=r"max_new_tokens=20, which lm-eval's --model hf-multimodal lets override "
                                            r"the tasks' answer limit \(50 tokens\)"):
        context_fit.check_answer_budget(leaves, "hf-multimodal", args)
    context_fit.check_answer_budget(leaves, "mllmu-vlm", args)  # passes max_new_tokens itself
    context_fit.check_answer_budget(leaves, "hf", args, gen_kwargs={"max_gen_toks": 20})  # same limit
    context_fit.check_answer_budget(leaves, "hf", {"pretrained": str(tiny_vlm)})  # none set


def test_likelihood_requests_count_context_and_continuation(tiny_vlm):
    """A multiple-choice (likelihood) request generates nothing: context + option must fit, no answer budget."""
    register()
    name = "mllmu-ll_retain_letter_txt"
    leaves = cli.prebuild_suite_tasks("mllmu-vlm", [name], {"pretrained": str(tiny_vlm), "source": "mini"})
    task = leaves[name]
    task.build_all_requests(limit=2, rank=0, world_size=1)
    config, tokenizer, _ = context_fit.load_counting_tools(str(tiny_vlm), {})
    counter = context_fit.PromptCounter(tokenizer, None, None, 999)
    need = max(counter.text_tokens(r.args[0] + r.args[1]) for r in task.instances)
    task._instances = None
    context_fit.check_prompts_fit(leaves, "mllmu-vlm", {"pretrained": str(tiny_vlm), "max_length": need}, limit=2)
    with pytest.raises(ContextOverflowError, match=rf"minus the 0-token answer budget leaves {need - 1};"):
        context_fit.check_prompts_fit(leaves, "mllmu-vlm", {"pretrained": str(tiny_vlm), "max_length": need - 1},
                                      limit=2)
