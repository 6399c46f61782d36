"""``mllmu-vlm``: the suite's Hugging Face VLM backend for lm-eval.

Also registered as ``hf-multimodal-ll``: unlike stock ``hf-multimodal`` it
computes log-likelihoods with images (:meth:`MLLMUVisionLM.loglikelihood`),
so multiple-choice tasks with images (the ``mllmu-ll`` group) score options
by log P(option | image, prompt).

lm-eval's ``hf-multimodal`` cannot take text-only and image+text requests in
one run (it unpacks three request arguments from every request and fails on
the two of a text-only request). The whole MLLMU suite mixes both, so this
backend splits the requests: image+text ones go through ``hf-multimodal``'s
batched path, text-only ones through the plain ``hf`` path of the same model
(no ``pixel_values``), and the answers come back in request order. All
``hf-multimodal`` model arguments work unchanged.

Registered lazily under the name ``mllmu-vlm`` by
:func:`mllmu_tasks.backend_registry.register` (called by ``mllmu-eval``).
"""

from __future__ import annotations

import contextlib
import functools
import gc

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM
from lm_eval.models.huggingface import HFLM
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

from .sources import SettingsError
from .prefix_lm import images_first, is_prefix_lm, text_prefix
from .special_tokens import OneBOS, plain_image_string


def has_images(request: Instance) -> bool:
    """Whether a ``generate_until`` request carries at least one image (``args[2]["visual"]``)."""
    return len(request.args) >= 3 and bool((request.args[2] or {}).get("visual"))


class MLLMUVisionLM(HFMultimodalLM):
    """``hf-multimodal`` that also answers text-only requests in the same run.

    Generation skips two of lm-eval's costs, with the same answers: the
    ``gc.collect()`` after every batch (:func:`no_per_batch_gc`) and the
    per-step decoding of the batch for stop strings (:func:`token_level_stop_strings`).

    Raises (at load):
        ValueError: the checkpoint takes no images (:func:`check_takes_images`).
    """

    def __init__(self, pretrained, **kwargs):
        check_takes_images(pretrained, revision=kwargs.get("revision", "main"),
                           trust_remote_code=bool(kwargs.get("trust_remote_code", False)))
        super().__init__(pretrained, **kwargs)
        if not kwargs.get("image_string"):
            self.image_token = plain_image_string(self.processor, self.image_token)
        self.prefix_lm = is_prefix_lm(getattr(self.config, "model_type", None))

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy/sampled generation for a mix of image+text and text-only requests, in request order.

        Plain prompts are rewritten in place to what the model receives (the
        family's image sequence for ``<image>``; a prefix-LM's own framing,
        :mod:`mllmu_tasks.prefix_lm`), so ``--log_samples`` shows it.
        """
        for request in requests:
            self._show_sent_context(request)
        image_idx = [i for i, r in enumerate(requests) if has_images(r)]
        text_idx = [i for i, r in enumerate(requests) if not has_images(r)]
        answers: list[str | None] = [None] * len(requests)
        with no_per_batch_gc(), token_level_stop_strings():
            if image_idx:
                outs = HFMultimodalLM.generate_until(self, [requests[i] for i in image_idx], disable_tqdm)
                for i, out in zip(image_idx, outs):
                    answers[i] = out
            if text_idx:
                text_requests = [_text_only(requests[i]) for i in text_idx]
                outs = HFLM.generate_until(self, text_requests, disable_tqdm)
                for i, out in zip(text_idx, outs):
                    answers[i] = out
        return answers

    def _show_sent_context(self, request: Instance) -> None:
        """Replace a plain request's context with the text the processor will receive (idempotent)."""
        if self.chat_applied:
            return
        context = request.args[0]
        if has_images(request):
            context = self._with_image_tokens(images_first(context) if self.prefix_lm else context)
        elif self.prefix_lm:
            context = text_prefix(context, self.tokenizer.bos_token)
        request.arguments = (context, *request.args[1:])

    def tok_batch_multimodal_encode(self, strings, images, padding_side="left", left_truncate_len=None,
                                    truncation=False):
        """lm-eval's batch encoding, refusing to cut a prompt that does not fit the context.

        lm-eval left-truncates ``input_ids`` to ``max_length - max_gen_toks``
        without the image tensors (a crash, or a prompt that silently loses
        its first demonstrations).

        Text that starts with the BOS string (a chat template that renders
        it) is encoded without the tokenizer's own BOS: one BOS, as lm-eval's
        text-only path and training send (:mod:`mllmu_tasks.special_tokens`).

        Raises:
            ContextOverflowError: a prompt longer than ``left_truncate_len`` tokens.
        """
        processor = self.processor
        self.processor = OneBOS(processor, self.tokenizer)
        try:
            encoding = super().tok_batch_multimodal_encode(strings, images, padding_side, None, truncation)
        finally:
            self.processor = processor
        check_fits(encoding["input_ids"].shape[1], left_truncate_len, self.max_length)
        return encoding

    def tok_batch_encode(self, strings, padding_side="left", left_truncate_len=None, truncation=False):
        """lm-eval's text-only batch encoding, refusing to cut a prompt (see :meth:`tok_batch_multimodal_encode`)."""
        ids, mask = super().tok_batch_encode(strings, padding_side, None, truncation)
        check_fits(ids.shape[1], left_truncate_len, self.max_length)
        return ids, mask

    def _model_multimodal_generate(self, inputs, max_length, stop, **generation_kwargs):
        """lm-eval's image+text generation with the token limit passed as ``max_new_tokens``.

        lm-eval passes only ``max_length`` (prompt + ``max_gen_toks``), and
        transformers lets a checkpoint's ``generation_config.max_new_tokens``
        take precedence over it, so a task's limit (the released 5 tokens of
        Idefics2 text-only classification, ``--gen_kwargs max_gen_toks=N``)
        would be silently replaced by the checkpoint's. The released code
        passes ``max_new_tokens`` explicitly; so does this backend.
        """
        generation_kwargs.setdefault("max_new_tokens", max_length - inputs["input_ids"].shape[1])
        return super()._model_multimodal_generate(inputs, max_length, stop, **generation_kwargs)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        """lm-eval's text-only generation, the token limit passed as ``max_new_tokens`` (see above)."""
        generation_kwargs.setdefault("max_new_tokens", max_length - context.shape[1])
        return super()._model_generate(context, max_length, stop, **generation_kwargs)

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """``(log P(continuation | images, context), is_greedy)`` per request, in request order.

        ``args`` = ``(context, continuation)`` or ``(context, continuation, {"visual": [PIL images]})``.
        Log-probabilities are summed over the continuation's tokens (nats);
        ``is_greedy`` is whether every continuation token is the argmax.
        """
        from tqdm import tqdm

        return [self._continuation_logprob(r.args[0], r.args[1], r.args[2].get("visual", []) if len(r.args) > 2 else [])
                for r in tqdm(requests, disable=disable_tqdm or self.rank != 0, desc="loglikelihood with images")]

    def _encode_pair(self, context: str, continuation: str, images: list):
        """``(context ids: (n,), encoding of context + continuation (batch 1), end)``: the continuation's
        tokens are ``input_ids[0, n:end]``.

        A prefix-LM (PaliGemma) takes the continuation as its processor's ``suffix`` (after the prefix's
        closing newline; the ``<eos>`` it appends is not scored), text-only through the tokenizer.
        """
        if not (self.prefix_lm and not self.chat_applied):
            full = self._encode(context + continuation, images)
            return self._encode(context, images)["input_ids"][0], full, full["input_ids"].shape[1]
        if images:
            kwargs = dict(text=[images_first(context)], images=[self._rgb(images)], return_tensors="pt")
            ctx = self.processor(**kwargs)["input_ids"][0]
            full = self.processor(**kwargs, suffix=[continuation])
            full.pop("labels", None)
            end = full["input_ids"].shape[1] - 1
        else:
            text = text_prefix(context, self.tokenizer.bos_token)
            ctx = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
            full = self.tokenizer(text, text_pair=continuation, add_special_tokens=False, return_tensors="pt",
                                  return_token_type_ids=True)
            end = full["input_ids"].shape[1]
        return ctx, full.to(self.device, self.model.dtype), end

    def _with_image_tokens(self, text: str) -> str:
        """A plain prompt's ``<image>`` placeholders (at most ``max_images``) as the family's image string."""
        from lm_eval.models.hf_vlms import DEFAULT_IMAGE_PLACEHOLDER
        from lm_eval.models.utils import replace_placeholders

        return replace_placeholders(text, DEFAULT_IMAGE_PLACEHOLDER, self.image_token, self.max_images)

    def _rgb(self, images: list) -> list:
        """The first ``max_images`` images, in RGB."""
        return [img.convert("RGB") for img in images[: self.max_images]]

    def _encode(self, text: str, images: list):
        if not self.chat_applied:
            text = self._with_image_tokens(text)
        images = self._rgb(images) if images else None
        return OneBOS(self.processor, self.tokenizer)(text=[text], images=[images] if images else None,
                                                      return_tensors="pt").to(self.device, self.model.dtype)

    @torch.no_grad()
    def _continuation_logits(self, context: str, continuation: str, images: list
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One request encoded as :meth:`loglikelihood` encodes it (context and context + continuation with the
        same images): ``(logits predicting each continuation token (tokens, vocab), float32; those tokens)``.

        Raises:
            ValueError: the context's tokens are not a prefix of the full text's tokens.
        """
        ctx, full, end = self._encode_pair(context, continuation, images)
        ids = full["input_ids"][0]
        n = ctx.shape[0]
        if n >= end or not torch.equal(ids[:n], ctx):
            raise ValueError(f"the context's tokens are not a prefix of context + continuation ({continuation!r})")
        return self.model(**full).logits[0, n - 1:end - 1].float(), ids[n:end]

    @staticmethod
    def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p of each target token (tokens,), float32 as lm-eval's likelihoods."""
        return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def continuation_logprobs(self, context: str, continuation: str, images: list) -> torch.Tensor:
        """log p(x_t | x_<t, images) of each continuation token (tokens,), float32; one request encoded as
        :meth:`loglikelihood` encodes it, without the vocabulary moments of :meth:`continuation_token_stats`.

        Raises:
            ValueError: the context's tokens are not a prefix of the full text's tokens.
        """
        return self._token_logprobs(*self._continuation_logits(context, continuation, images))

    def continuation_token_stats(self, context: str, continuation: str, images: list) -> dict[str, torch.Tensor]:
        """Per continuation token: its log-probability and the model's own log-probability moments there.

        One request, encoded as :meth:`loglikelihood` encodes it. Returns
        tensors of shape (continuation tokens,): ``logp`` = log p(x_t | x_<t,
        images) (float32, as lm-eval's likelihoods); ``mean`` = E_{z ~ p}[log p(z)]
        and ``std`` = its standard deviation over the vocabulary at that position
        (float64; the statistics of Min-K%++, Zhang et al. 2024, Eq. 2);
        ``greedy``: whether each token is the argmax (bool).

        Raises:
            ValueError: the context's tokens are not a prefix of the full text's tokens.
        """
        logits, targets = self._continuation_logits(context, continuation, images)
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        mean = (log_probs.exp() * log_probs).sum(-1)
        std = ((log_probs.exp() * log_probs ** 2).sum(-1) - mean ** 2).clamp(min=0).sqrt()
        return {"logp": self._token_logprobs(logits, targets), "mean": mean, "std": std,
                "greedy": logits.argmax(-1) == targets}

    def _continuation_logprob(self, context: str, continuation: str, images: list) -> tuple[float, bool]:
        """One request's ``(summed log-probability, all tokens greedy)`` (no vocabulary moments: the hot path)."""
        logits, targets = self._continuation_logits(context, continuation, images)
        return float(self._token_logprobs(logits, targets).sum()), bool((logits.argmax(-1) == targets).all())


@contextlib.contextmanager
def no_per_batch_gc():
    """Skip the ``gc.collect()`` that lm-eval 0.4.13's ``hf-multimodal`` runs after every batch.

    A full collection costs about 0.2 s with torch and transformers loaded
    (measured on 2 CPU cores: two thirds of the time at batch size 1); it
    frees nothing the next batch needs: tensors are freed by reference
    counting, and Python's automatic collector still finds cycles. The same
    code path runs otherwise, so the answers are identical.
    """
    collect = gc.collect
    gc.collect = lambda *args, **kwargs: 0
    try:
        yield
    finally:
        gc.collect = collect


@functools.lru_cache(maxsize=8)
def _stop_string_matcher(tokenizer, stop_strings: tuple[str, ...]) -> StopStringCriteria:
    """One ``StopStringCriteria`` per tokenizer (by identity) and stop strings, reused by every batch.

    Building one reads, sorts and hashes the whole vocabulary to find
    transformers' cached tables (about 11 ms for a 32k vocabulary on 2 CPU
    cores); the criterion keeps no state between calls.
    """
    return StopStringCriteria(tokenizer, list(stop_strings))


class GeneratedStopStrings(StoppingCriteria):
    """Per-row stop on any stop string in the *generated* tokens, matched on token ids (no decoding).

    Wraps transformers' ``StopStringCriteria`` (built once per tokenizer and
    stop strings, :func:`_stop_string_matcher`) and hides the prompt from it,
    so a stop string spanning the prompt's end never stops a row.

    ``__call__(input_ids: (batch, seq), scores) -> (batch,) bool``.
    """

    def __init__(self, tokenizer, stop_strings: list[str], prompt_len: int):
        self.inner = _stop_string_matcher(tokenizer, tuple(stop_strings))
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        width = self.inner.maximum_token_len
        generated = input_ids[:, self.prompt_len:][:, -width:]
        # Prompt positions (and the room before a short answer) become an id past the vocabulary,
        # which StopStringCriteria maps to an entry that matches no stop string.
        tail = generated.new_full((input_ids.shape[0], width), torch.iinfo(generated.dtype).max)
        if generated.shape[1]:
            tail[:, -generated.shape[1]:] = generated
        return self.inner(tail, scores)


def generated_stop_strings_criteria(tokenizer, stop_sequences: list[str], initial_decoder_input_length: int,
                                    batch_size: int) -> StoppingCriteriaList:
    """Drop-in for lm-eval's ``stop_sequences_criteria`` (same arguments) without per-step decoding.

    lm-eval's criterion decodes the last tokens of every row at every step,
    once per stop string, and stops the batch only when every row holds the
    same stop string. This one matches token ids per row (finished rows are
    padded by ``generate``). The answers are the same: lm-eval cuts every
    answer at its first stop string afterwards, and a row is stopped here
    only once its generated text holds one, so the tokens it no longer
    generates are cut anyway.
    """
    stops = [s for s in stop_sequences if s]
    if not stops:
        return StoppingCriteriaList()
    return StoppingCriteriaList([GeneratedStopStrings(tokenizer, stops, initial_decoder_input_length)])


@contextlib.contextmanager
def token_level_stop_strings():
    """Use :func:`generated_stop_strings_criteria` in lm-eval's ``hf`` and ``hf-multimodal`` generation.

    Their stop-string check decodes the batch at every step (about 0.6 ms a
    step per stop string on 2 CPU cores, measured in the issue-6 trial).
    """
    import lm_eval.models.hf_vlms as hf_vlms
    import lm_eval.models.huggingface as huggingface

    saved = hf_vlms.stop_sequences_criteria, huggingface.stop_sequences_criteria
    hf_vlms.stop_sequences_criteria = huggingface.stop_sequences_criteria = generated_stop_strings_criteria
    try:
        yield
    finally:
        hf_vlms.stop_sequences_criteria, huggingface.stop_sequences_criteria = saved


def check_takes_images(pretrained, revision: str = "main", trust_remote_code: bool = False) -> None:
    """Fail at once, before loading weights, when ``pretrained`` names a model that takes no images.

    A checkpoint takes images when its ``model_type`` has an
    image-text-to-text architecture in transformers (``AutoModelForImageTextToText``).
    Remote-code models and live model objects are not checked.

    Raises:
        ValueError: the message says to score such a model with ``--model hf --tasks mllmu-txt``.
    """
    if not isinstance(pretrained, str) or trust_remote_code:
        return
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = AutoConfig.from_pretrained(pretrained, revision=revision).model_type
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ValueError(
            f"{pretrained!r} is a {model_type!r} model, which takes no images, so it cannot answer image+text "
            f"MLLMU tasks. Score its text-only tasks with `--model hf --tasks mllmu-txt`.")


class ContextOverflowError(SettingsError):
    """A prompt (with its demonstrations and image tokens) longer than the model's context allows.

    A :class:`~mllmu_tasks.sources.SettingsError`: ``mllmu-eval`` prints it as one line (exit 2).
    """


def check_fits(prompt_tokens: int, limit: int | None, max_length: int) -> None:
    """Raise when a batch's longest prompt exceeds ``limit`` = ``max_length`` - the new-token budget.

    Raises:
        ContextOverflowError: the message gives both lengths and what to change.
    """
    if limit and prompt_tokens > limit:
        raise ContextOverflowError(
            f"a prompt of {prompt_tokens} tokens (image tokens included) does not fit the model's context: "
            f"max_length {max_length} minus the new-token budget leaves {limit}; lm-eval would cut its start "
            f"(the first demonstrations) silently. Raise --model_args max_length=N if the model allows it, or "
            f"score the zero-shot variant (--tasks mllmu-zs)")


def _text_only(request: Instance) -> Instance:
    """The request with only (context, gen_kwargs), as the text path expects."""
    if len(request.args) == 2:
        return request
    return Instance(request_type=request.request_type, doc=request.doc, arguments=request.args[:2],
                    idx=request.idx, metadata=request.metadata)
