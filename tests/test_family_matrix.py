"""The family matrix (issue 12): scoring and unlearning on a tiny checkpoint of every VLM architecture.

Per family (``mllmu_tasks.mini.families``): image+text and text-only questions scored through
``mllmu-vlm``, plain and under the hub chat template, where changing the image changes the answer's
log-probability; under the chat template the training prompt is token for token the prompt the scorer
sends, with one BOS, and the labels are exactly the answer plus the template's end of turn; one GradDiff
step with LoRA, full fine-tuning (the projector changes, the vision tower does not) and text-only, each
checkpoint reloading and scoring.
"""

import functools

import pytest
import torch
from PIL import Image
from lm_eval.api.instance import Instance
from safetensors.torch import load_file

from mllmu_tasks import docs
from mllmu_tasks.backend import MLLMUVisionLM
from mllmu_tasks.mini import families
from mllmu_tasks.sources import resolve_source
from family_support import forward_logits
from unlearners import api
from unlearners.collator import IGNORE_INDEX, AnswerOnlyCollator, chat_content
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
from unlearners.data import Example
from unlearners.model import PROJECTOR_PARTS, VISION_PARTS, _in_part

GEN = {"until": ["ASSISTANT:"], "do_sample": False, "max_gen_toks": 3}
#: What a plain prompt's ``<image>`` becomes per family (the family's own image sequence, by hand from the
#: hub templates and processors).
PLAIN_IMAGE = {"llava": "<image>", "llava_next": "<image>", "idefics2": "<image>", "idefics3": "<image>",
               "qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>",
               "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>", "mllama": "<|image|>",
               "paligemma": "<image>", "gemma3": "<start_of_image>", "internvl": "<IMG_CONTEXT>", "mistral3": "[IMG]"}
#: Families whose hub checkpoints ship no chat template (scored plain only; trained through their own API).
NO_CHAT_TEMPLATE = {"paligemma"}


def _available() -> list[str]:
    import importlib.util

    return [name for name in families.FAMILIES
            if importlib.util.find_spec(f"mllmu_tasks.mini.families.{name}") is not None]


FAMILIES = _available()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@functools.lru_cache(maxsize=None)
def _build(name: str, root) -> str:
    return str(families.build_family(name, root / name))


@functools.lru_cache(maxsize=None)
def _lm(path: str) -> MLLMUVisionLM:
    return MLLMUVisionLM(pretrained=path, device="cpu", batch_size=2)


def retain_docs(modality: str, n: int = 2):
    return list(docs.build_docs("retain", "gen", modality, resolve_source("mini"), 10).select(range(n)))


def images(n=2):
    red = Image.new("RGB", (40, 40), (220, 30, 30))
    checks = Image.new("RGB", (40, 40), (255, 255, 255))
    for x in range(0, 40, 8):
        for y in range(0, 40, 8):
            if (x + y) // 8 % 2:
                checks.paste((0, 0, 0), (x, y, x + 8, y + 8))
    return red, checks


def prompt(lm, body: str, chat: bool, kind_prompt: str) -> str:
    if chat:
        return lm.apply_chat_template([{"role": "user", "content": body}])
    return kind_prompt


def score(lm, chat: bool, sent: list | None = None) -> list[str]:
    """Two image+text and two text-only generation questions, answered in one call; ``sent`` receives the
    contexts as the backend rewrote them (what ``--log_samples`` shows)."""
    reqs = []
    for modality in ("img", "txt"):
        for doc in retain_docs(modality):
            args = (prompt(lm, docs.doc_to_body(doc), chat, docs.doc_to_released_prompt(doc)), dict(GEN))
            if modality == "img":
                args += ({"visual": docs.doc_to_image(doc)},)
            reqs.append(Instance("generate_until", doc, args, 0))
    answers = lm.generate_until(reqs, True)
    if sent is not None:
        sent.extend(r.args[0] for r in reqs)
    return answers


def image_logprob(lm, chat: bool, image) -> float:
    body = "<image>\nWhat is the name of this person?"
    context = prompt(lm, body, chat, f"USER: {body}\nASSISTANT:")
    [(logprob, _)] = lm.loglikelihood([Instance("loglikelihood", {}, (context, " This person", {"visual": [image]}),
                                                0)], True)
    return logprob


@pytest.mark.parametrize("family", FAMILIES)
def test_scoring_plain_and_chat(family, root):
    lm = _lm(_build(family, root))
    red, checks = images()
    modes = [False] if family in NO_CHAT_TEMPLATE else [False, True]
    for chat in modes:
        if chat:
            lm.chat_applied = True
        sent = []
        answers = score(lm, chat, sent)
        assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
        if not chat:  # the family's own image sequence, where the released prompt had <image>
            image_prompts, text_prompts = sent[:2], sent[2:]
            assert all(PLAIN_IMAGE[family] in p for p in image_prompts), (family, image_prompts)
            if family == "paligemma":  # prefix format: images, then BOS, the prompt, a newline
                assert all(p.startswith("<image>USER: ") for p in image_prompts), image_prompts
                assert all(p.startswith("<bos>USER: ") and p.endswith("\n") for p in text_prompts), text_prompts
        a, b = image_logprob(lm, chat, red), image_logprob(lm, chat, checks)
        assert abs(a - b) > 1e-3, (family, chat, a, b)
    lm.chat_applied = False


def one_example(image=True) -> Example:
    red, _ = images()
    return Example("001", "What is the name of this person?", "This person is Ann Lee.", red if image else None)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in NO_CHAT_TEMPLATE])
def test_training_prompt_is_the_scoring_prompt(family, root):
    """Chat template: the collator's prompt ids equal the ids mllmu-vlm sends for the same question; one BOS;
    labels = the answer + what the template writes after it."""
    lm = _lm(_build(family, root))
    processor, tokenizer = lm.processor, lm.tokenizer
    collate = AnswerOnlyCollator(processor)
    for image in (True, False):
        example = one_example(image)
        batch = collate.encode([example])
        ids, labels = batch["input_ids"][0], batch["labels"][0]
        n_prompt = int((labels == IGNORE_INDEX).sum())
        body = f"<image>\n{example.question}" if image else example.question
        lm.chat_applied = True
        context = lm.apply_chat_template([{"role": "user", "content": body}])
        if image:
            sent = lm.tok_batch_multimodal_encode([context], [[example.image]])["input_ids"][0]
        else:
            sent = lm.tok_batch_encode([context])[0][0]
        lm.chat_applied = False
        assert ids[:n_prompt].tolist() == sent.tolist(), family
        if tokenizer.bos_token_id is not None:
            assert ids.tolist().count(tokenizer.bos_token_id) <= 1, family
        user = {"role": "user", "content": chat_content(body)}
        asked = processor.apply_chat_template([user], add_generation_prompt=True)
        full = processor.apply_chat_template([user, {"role": "assistant", "content": [
            {"type": "text", "text": example.answer}]}])
        assert full.startswith(asked), family
        labelled = tokenizer.decode(ids[n_prompt:])
        assert labelled == full[len(asked):] and labelled.lstrip().startswith(example.answer), (family, labelled)


def train(family_path, out, *, lora=True, modality="image+text"):
    args = UnlearnTrainingArguments(output_dir=str(out), use_cpu=True, max_steps=1, learning_rate=5e-2,
                                    disable_tqdm=True, seed=0, per_device_train_batch_size=2, logging_steps=1)
    return api.run("grad_diff", ModelArguments(model=family_path, lora=lora, save_adapter=lora),
                   DataArguments(source="mini", forget_ratio=10, modality=modality), args)


def assert_adapter_is_the_merged_model(base: str, out) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    enc = AutoProcessor.from_pretrained(out).tokenizer(["Where was Ann Lee born?"], return_tensors="pt")
    merged = forward_logits(AutoModelForImageTextToText.from_pretrained(out).eval(), enc, text_only=True)
    adapted = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base), out / "adapter").eval()
    assert torch.allclose(forward_logits(adapted, enc, text_only=True), merged, atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_unlearning_lora_full_text_only(family, root):
    base = _build(family, root)
    before = load_file(f"{base}/model.safetensors")
    for lora, modality in ((True, "image+text"), (False, "image+text"), (True, "text-only")):
        out = root / f"{family}-{'lora' if lora else 'full'}-{modality}"
        train(base, out, lora=lora, modality=modality)
        lm = MLLMUVisionLM(pretrained=str(out), device="cpu", batch_size=2)
        assert len(score(lm, False)) == 4
        if lora:  # the kept adapter on the base model is the merged checkpoint (a text-only forward)
            assert_adapter_is_the_merged_model(base, out)
        if not lora:
            after = load_file(f"{out}/model.safetensors")
            projector = [k for k in before if _in_part(k, PROJECTOR_PARTS) and before[k].is_floating_point()]
            tower = [k for k in before if _in_part(k, VISION_PARTS) and not _in_part(k, PROJECTOR_PARTS)]
            assert projector and tower, family
            assert any(not torch.equal(before[k], after[k]) for k in projector), family
            assert all(torch.equal(before[k], after[k]) for k in tower), family


@pytest.mark.parametrize("family", FAMILIES)
def test_activation_and_mask_methods_on_every_family(family, root):
    """RMU (full: only the chosen down-projections change), MMUnlearner (LoRA) and MANU (only down-projection
    columns zeroed) on a few examples of each architecture; each checkpoint reloads."""
    from transformers import AutoModelForImageTextToText

    from unlearners.data import load_examples

    base = _build(family, root)
    before = load_file(f"{base}/model.safetensors")
    forget = load_examples("mini", "forget", "image+text", forget_ratio=10)[:4]
    retain = load_examples("mini", "retain", "image+text", forget_ratio=10)[:4]
    for method, lora in (("rmu", False), ("mmunlearner", True), ("manu", False)):
        out = root / f"{family}-{method}"
        args = UnlearnTrainingArguments(output_dir=str(out), use_cpu=True, max_steps=1, learning_rate=5e-2,
                                        disable_tqdm=True, seed=0, per_device_train_batch_size=2, report_to=[])
        api.run(method, ModelArguments(model=base, lora=lora), {"forget": forget, "retain": retain}, args)
        after = load_file(f"{out}/model.safetensors")
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert changed, (family, method)
        if method != "mmunlearner":
            assert all(k.endswith("mlp.down_proj.weight") and not _in_part(k, VISION_PARTS) for k in changed), \
                (family, method, changed)
        if method == "manu":
            assert all(((after[k] == 0).all(dim=0) | (after[k] == before[k]).all(dim=0)).all() for k in changed)
        AutoModelForImageTextToText.from_pretrained(out)


def test_prefix_lm_labels_are_the_answer_and_eos(root):
    """PaliGemma (no chat template): prefix = image tokens, one BOS, the question, a newline; labels = the answer
    and <eos>, through the processor's suffix API (image+text) or the tokenizer (text-only)."""
    from transformers import AutoProcessor

    from unlearners.collator import PrefixSuffixCollator, make_collator

    processor = AutoProcessor.from_pretrained(_build("paligemma", root))
    tok = processor.tokenizer
    collate = make_collator(processor, "paligemma")
    assert isinstance(collate, PrefixSuffixCollator)
    for image in (True, False):
        example = one_example(image)
        batch = collate.encode([example])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0]
        assert tok.decode(labels[labels != IGNORE_INDEX]) == example.answer + tok.eos_token
        n_image = ids.count(tok.convert_tokens_to_ids("<image>"))
        assert (n_image > 0) is image and ids.count(tok.bos_token_id) == 1 and ids[n_image] == tok.bos_token_id
        prefix = tok.decode(ids[n_image + 1:int((labels == IGNORE_INDEX).sum())])
        assert prefix == example.question + "\n", prefix


def test_a_template_without_a_stop_token_warns(root, caplog):
    """LLaVA-1.5's hub template ends the assistant turn with a space, not </s>: training would never teach the
    model to stop, so the collator says so (once); Qwen2-VL's <|im_end|> is a stop id: no warning."""
    import logging

    from transformers import AutoProcessor, GenerationConfig

    for family, warns in (("llava", True), ("qwen2_vl", False)):
        path = _build(family, root)
        collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(path),
                                     stop_ids=GenerationConfig.from_pretrained(path).eos_token_id)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="unlearners.collator"):
            collate.encode([one_example()])
            collate.encode([one_example()])
        messages = [r.getMessage() for r in caplog.records if "no stop token" in r.getMessage()]
        assert len(messages) == (1 if warns else 0), (family, messages)


def test_chat_template_asked_of_a_family_without_one_fails_before_loading(root):
    from mllmu_tasks.cli import check_local_model_path
    from mllmu_tasks.sources import SettingsError

    with pytest.raises(SettingsError, match="has no chat template"):
        check_local_model_path(f"pretrained={_build('paligemma', root)}", needs_chat_template=True)
    check_local_model_path(f"pretrained={_build('gemma3', root)}", needs_chat_template=True)
