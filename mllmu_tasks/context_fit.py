"""Before any model loads: does every prompt of the selected tasks fit the model's context?

A few-shot prompt (demonstrations, their images, the question) that is
longer than the context is silently left-truncated by lm-eval's stock
backends on text-only tasks (the first demonstrations lost while the
results JSON still claims them) and crashes image+text ones after the model
has loaded. :func:`check_prompts_fit` counts every prompt's tokens with the
checkpoint's own tokenizer and processor (no weights loaded) and compares
them with the context the backend will use, so ``mllmu-eval`` refuses such a
run in one line before minutes of model loading.

The context is resolved as the backend resolves it: ``max_length`` in
``--model_args``, else lm-eval's :func:`~lm_eval.models.utils.resolve_max_length`
(the text model's ``max_position_embeddings``, then the tokenizer's
``model_max_length``, then 2048) for the Hugging Face backends; the vLLM
backends are checked only when ``max_length``/``max_model_len`` is given
(vLLM derives its own length otherwise). Prompts rendered with
``--apply_chat_template`` are not counted here (the backend renders them);
``mllmu-vlm`` refuses an overflowing prompt at run time in every mode
(:func:`mllmu_tasks.backend.check_fits`).

Counting: a text-only prompt is ``len(tokenizer(prompt))``, as lm-eval's
``hf`` path encodes it. An image+text prompt is first estimated as the
prompt's tokens with one image token per image, plus each image's expansion
(the processor run once per distinct image size on a bare image token);
only a prompt whose estimate exceeds the limit is encoded exactly, with its
images, before it is refused.
"""

from __future__ import annotations

import math

from .backend import ContextOverflowError
from .prompts import IMAGE_PLACEHOLDER

#: lm-eval's backends whose context is resolved from the checkpoint's config and tokenizer.
HF_BACKENDS = ("hf", "hf-auto", "huggingface", "hf-multimodal", "mllmu-vlm", "hf-multimodal-ll")
VLLM_BACKENDS = ("vllm", "vllm-vlm")
#: lm-eval's ``max_gen_toks`` when neither the task nor ``--gen_kwargs`` sets one (HFLM/VLLM 0.4.13).
DEFAULT_MAX_GEN_TOKS = 256
#: ``hf-multimodal``'s ``max_images`` when ``--model_args`` sets none (lm-eval 0.4.13).
DEFAULT_MAX_IMAGES = 999


def backend_max_length(model: str, model_args: dict, config, tokenizer) -> int | None:
    """The context (tokens) the backend ``model`` will use, or ``None`` where it cannot be known before loading."""
    explicit = model_args.get("max_length") or (model_args.get("max_model_len") if model in VLLM_BACKENDS else None)
    if explicit:
        return int(explicit)
    if model in HF_BACKENDS:
        from lm_eval.models.utils import resolve_max_length

        return resolve_max_length(config, tokenizer, default=2048)
    return None


def load_counting_tools(pretrained: str, model_args: dict):
    """``(config, tokenizer, processor or None)`` of a checkpoint, read offline where cached; ``None`` if absent.

    Remote code is never run here (a ``trust_remote_code`` checkpoint is not counted).
    """
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    revision = model_args.get("revision", "main")
    try:
        config = AutoConfig.from_pretrained(pretrained, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(pretrained, revision=revision)
    except (OSError, ValueError, KeyError):
        return None
    try:
        processor = AutoProcessor.from_pretrained(pretrained, revision=revision)
    except (OSError, ValueError, KeyError, ImportError):
        processor = None
    if processor is not None and getattr(processor, "image_processor", None) is None:
        processor = None  # a text-only checkpoint: AutoProcessor gave its tokenizer
    return config, tokenizer, processor


def image_token_string(model: str, config, tokenizer, processor, model_args: dict) -> str | None:
    """The string the backend puts where a prompt says ``<image>``: ``image_string`` if given, else lm-eval's
    rule (the token ``config.image_token_id`` names), which ``mllmu-vlm`` refines to the family's own
    sequence (:func:`mllmu_tasks.special_tokens.plain_image_string`)."""
    if model_args.get("image_string"):
        return str(model_args["image_string"])
    token_id = model_args.get("image_token_id") or getattr(config, "image_token_id", None) \
        or getattr(config, "image_token_index", None)
    stock = None if token_id is None else tokenizer.decode([int(token_id)], skip_special_tokens=False)
    if model in ("mllmu-vlm", "hf-multimodal-ll") and processor is not None:
        from .special_tokens import plain_image_string

        return plain_image_string(processor, stock)
    return stock


class PromptCounter:
    """Token counts of prompts as a backend encodes them, without the model.

    ``count(prompt, images) -> int`` (tokens, image tokens included).
    """

    def __init__(self, tokenizer, processor, image_token: str | None, max_images: int):
        self.tokenizer, self.processor = tokenizer, processor
        self.image_token, self.max_images = image_token, max_images
        self._expansion: dict[tuple[int, int], int] = {}

    def text_tokens(self, text: str) -> int:
        """``len(tokenizer(text))``, BOS added unless the text already starts with it (lm-eval's ``hf`` rule)."""
        bos = getattr(self.tokenizer, "bos_token", None)
        special = not (bos and text.startswith(bos))
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _with_image_tokens(self, text: str) -> str:
        from lm_eval.models.utils import replace_placeholders

        return replace_placeholders(text, IMAGE_PLACEHOLDER, self.image_token, self.max_images)

    def expansion(self, size: tuple[int, int]) -> int:
        """Extra tokens one image of ``size`` (width, height) adds beyond its single image token."""
        if size not in self._expansion:
            from PIL import Image

            blank = Image.new("RGB", size)
            ids = self.processor(text=[self.image_token], images=[blank], return_tensors="pt")["input_ids"]
            self._expansion[size] = int(ids.shape[1]) - self.text_tokens(self.image_token)
        return self._expansion[size]

    def estimate(self, prompt: str, images: list) -> int:
        """Tokens of an image+text prompt: one token per image plus each image's expansion."""
        images = images[: self.max_images]
        return self.text_tokens(self._with_image_tokens(prompt)) + sum(self.expansion(im.size) for im in images)

    def exact(self, prompt: str, images: list) -> int:
        """Tokens the processor makes of the prompt with its images (lm-eval's ``hf-multimodal`` encoding)."""
        images = [im.convert("RGB") for im in images[: self.max_images]]
        ids = self.processor(text=[self._with_image_tokens(prompt)], images=images, return_tensors="pt")["input_ids"]
        return int(ids.shape[1])


#: Stock lm-eval backends that pass only ``max_length`` to ``generate`` (a checkpoint's
#: ``generation_config.max_new_tokens`` then wins over the tasks' ``max_gen_toks``).
MAX_LENGTH_ONLY_BACKENDS = ("hf", "hf-auto", "huggingface", "hf-multimodal")


def check_answer_budget(leaves: dict, model: str, model_args: dict, gen_kwargs: dict | None = None) -> None:
    """Refuse a stock ``hf``/``hf-multimodal`` run whose checkpoint would override the tasks' token limits.

    lm-eval 0.4.13's Hugging Face backends pass ``generate`` only
    ``max_length``; transformers lets a checkpoint's
    ``generation_config.max_new_tokens`` take precedence, so the answers
    would run to the checkpoint's limit while the results JSON records the
    task's (``mllmu-vlm`` passes ``max_new_tokens`` explicitly, as the
    released code does).

    Raises:
        SettingsError: names the checkpoint's and the tasks' limits and ``--model mllmu-vlm``.
    """
    pretrained = model_args.get("pretrained")
    if model not in MAX_LENGTH_ONLY_BACKENDS or not isinstance(pretrained, str):
        return
    from transformers import GenerationConfig

    try:
        own = GenerationConfig.from_pretrained(pretrained, revision=model_args.get("revision", "main")).max_new_tokens
    except (OSError, ValueError):
        return
    if own is None:
        return
    wanted = {int((gen_kwargs or {}).get("max_gen_toks") or (task.config.generation_kwargs or {}).get(
        "max_gen_toks") or DEFAULT_MAX_GEN_TOKS) for task in leaves.values()}
    if wanted - {own}:
        from .sources import SettingsError

        raise SettingsError(
            f"{pretrained}: its generation_config sets max_new_tokens={own}, which lm-eval's --model {model} lets "
            f"override the tasks' answer limit ({', '.join(map(str, sorted(wanted)))} tokens): the answers would "
            f"run past it while the results record it. Score with --model mllmu-vlm (it passes the limit "
            f"explicitly), or remove max_new_tokens from a copy's generation_config.json")


def sample_count(n_docs: int, limit: float | int | None) -> int:
    """How many documents lm-eval scores under ``--limit`` (a count, or a fraction below 1)."""
    if limit is None:
        return n_docs
    limit = float(limit)
    return min(n_docs, int(math.ceil(n_docs * limit)) if limit < 1.0 else int(limit))


def check_prompts_fit(leaves: dict, model: str, model_args: dict, *, limit=None,
                      gen_kwargs: dict | None = None) -> None:
    """Refuse, before the model loads, a run whose longest prompt plus its new-token budget exceeds the context.

    Args:
        leaves: task name -> built lm-eval task (the suite's leaves).
        model: the backend name (``--model``).
        model_args: parsed ``--model_args`` (``pretrained``, ``max_length``, ``max_images``...).
        limit: ``--limit`` (documents per task, or a fraction below 1).
        gen_kwargs: ``--gen_kwargs`` as parsed (its ``max_gen_toks`` beats the tasks').

    Raises:
        ContextOverflowError: names the task, the document, both token counts and what to change.
    """
    pretrained = model_args.get("pretrained")
    if not isinstance(pretrained, str) or model_args.get("trust_remote_code") in (True, "True", "true"):
        return
    tools = load_counting_tools(pretrained, model_args)
    if tools is None:
        return
    config, tokenizer, processor = tools
    max_length = backend_max_length(model, model_args, config, tokenizer)
    if not max_length:
        return
    counter = PromptCounter(tokenizer, processor, image_token_string(model, config, tokenizer, processor, model_args),
                            int(model_args.get("max_images") or DEFAULT_MAX_IMAGES))
    for name, task in sorted(leaves.items()):
        _check_task(name, task, counter, max_length, limit, gen_kwargs or {})


def _check_task(name: str, task, counter: PromptCounter, max_length: int, limit, gen_kwargs: dict) -> None:
    n = sample_count(len(task.eval_docs), limit)
    task.build_all_requests(limit=n, rank=0, world_size=1)
    try:
        for instance in task.instances:
            prompt, second = instance.args[0], instance.args[1]
            if instance.request_type == "generate_until":
                budget = int(gen_kwargs.get("max_gen_toks") or (second or {}).get("max_gen_toks")
                             or DEFAULT_MAX_GEN_TOKS)
            else:  # a likelihood request: the context and the scored continuation, nothing generated
                prompt, budget = prompt + second, 0
            room = max_length - budget
            images = ((instance.args[2] or {}).get("visual") or []) if len(instance.args) > 2 else []
            if images and (counter.processor is None or counter.image_token is None):
                return
            tokens = counter.estimate(prompt, images) if images else counter.text_tokens(prompt)
            if tokens > room and images:
                tokens = counter.exact(prompt, images)
            if tokens > room:
                raise ContextOverflowError(
                    f"{name}, document {instance.doc_id}: the prompt is {tokens} tokens"
                    f"{' (image tokens included)' if images else ''} "
                    f"and the model's context of {max_length} minus the {budget}-token answer budget leaves "
                    f"{room}; lm-eval would cut its start (the first demonstrations) or fail after loading the "
                    f"model. Raise --model_args max_length=N if the model allows it, or score the zero-shot "
                    f"variant (--tasks mllmu-zs)")
    finally:
        task._instances = None
