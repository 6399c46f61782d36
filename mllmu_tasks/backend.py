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

Registered lazily under the name ``mllmu-vlm`` by :func:`register` (called
by ``mllmu-eval``).
"""

from __future__ import annotations

import contextlib
import gc

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM
from lm_eval.models.huggingface import HFLM

BACKEND_NAME = "mllmu-vlm"
#: Every name the backend answers to.
BACKEND_NAMES = (BACKEND_NAME, "hf-multimodal-ll")


def has_images(request: Instance) -> bool:
    """Whether a ``generate_until`` request carries at least one image (``args[2]["visual"]``)."""
    return len(request.args) >= 3 and bool((request.args[2] or {}).get("visual"))


class MLLMUVisionLM(HFMultimodalLM):
    """``hf-multimodal`` that also answers text-only requests in the same run.

    Raises (at load):
        ValueError: the checkpoint takes no images (:func:`check_takes_images`).
    """

    def __init__(self, pretrained, **kwargs):
        check_takes_images(pretrained, revision=kwargs.get("revision", "main"),
                           trust_remote_code=bool(kwargs.get("trust_remote_code", False)))
        super().__init__(pretrained, **kwargs)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy/sampled generation for a mix of image+text and text-only requests, in request order."""
        image_idx = [i for i, r in enumerate(requests) if has_images(r)]
        text_idx = [i for i, r in enumerate(requests) if not has_images(r)]
        answers: list[str | None] = [None] * len(requests)
        if image_idx:
            with no_per_batch_gc():
                outs = HFMultimodalLM.generate_until(self, [requests[i] for i in image_idx], disable_tqdm)
            for i, out in zip(image_idx, outs):
                answers[i] = out
        if text_idx:
            text_requests = [_text_only(requests[i]) for i in text_idx]
            outs = HFLM.generate_until(self, text_requests, disable_tqdm)
            for i, out in zip(text_idx, outs):
                answers[i] = out
        return answers


    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """``(log P(continuation | images, context), is_greedy)`` per request, in request order.

        ``args`` = ``(context, continuation)`` or ``(context, continuation, {"visual": [PIL images]})``.
        Log-probabilities are summed over the continuation's tokens (nats);
        ``is_greedy`` is whether every continuation token is the argmax.
        """
        from tqdm import tqdm

        return [self._continuation_logprob(r.args[0], r.args[1], r.args[2].get("visual", []) if len(r.args) > 2 else [])
                for r in tqdm(requests, disable=disable_tqdm or self.rank != 0, desc="loglikelihood with images")]

    def _encode(self, text: str, images: list):
        from lm_eval.models.hf_vlms import DEFAULT_IMAGE_PLACEHOLDER
        from lm_eval.models.utils import replace_placeholders

        if not self.chat_applied:
            text = replace_placeholders(text, DEFAULT_IMAGE_PLACEHOLDER, self.image_token, self.max_images)
        images = [img.convert("RGB") for img in images[: self.max_images]] if images else None
        return self.processor(text=[text], images=[images] if images else None,
                              return_tensors="pt").to(self.device, self.model.dtype)

    @torch.no_grad()
    def _continuation_logprob(self, context: str, continuation: str, images: list) -> tuple[float, bool]:
        """One request: encode context and context + continuation with the same images; score the suffix.

        Raises:
            ValueError: the context's tokens are not a prefix of the full text's tokens.
        """
        ctx = self._encode(context, images)["input_ids"][0]
        full = self._encode(context + continuation, images)
        ids = full["input_ids"][0]
        n = ctx.shape[0]
        if n >= ids.shape[0] or not torch.equal(ids[:n], ctx):
            raise ValueError(f"the context's tokens are not a prefix of context + continuation ({continuation!r})")
        logits = self.model(**full).logits[0, n - 1:-1].float()
        targets = ids[n:]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return float(logp.sum()), bool((logits.argmax(-1) == targets).all())


@contextlib.contextmanager
def no_per_batch_gc():
    """Skip the ``gc.collect()`` that lm-eval 0.4.13's ``hf-multimodal`` runs after every batch.

    A full collection costs about 0.2 s with torch and transformers loaded
    (measured on 2 CPU cores: two thirds of the time at batch size 1); it
    frees nothing the next batch needs. The same code path runs otherwise,
    so the answers are identical. One collection runs at the end.
    """
    collect = gc.collect
    gc.collect = lambda *args, **kwargs: 0
    try:
        yield
    finally:
        gc.collect = collect
        collect()


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


def _text_only(request: Instance) -> Instance:
    """The request with only (context, gen_kwargs), as the text path expects."""
    if len(request.args) == 2:
        return request
    return Instance(request_type=request.request_type, doc=request.doc, arguments=request.args[:2],
                    idx=request.idx, metadata=request.metadata)


def register() -> None:
    """Register :data:`BACKEND_NAMES` in lm-eval's model registry without importing torch (lazy placeholders)."""
    import lm_eval.models  # noqa: F401  (fills the registry with the built-in names first)
    from lm_eval.api.registry import model_registry

    for name in BACKEND_NAMES:
        if name not in model_registry:
            model_registry.register(name, target=f"{__name__}:MLLMUVisionLM")
