"""``mllmu-vlm``: the suite's Hugging Face VLM backend for lm-eval.

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

from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM
from lm_eval.models.huggingface import HFLM

BACKEND_NAME = "mllmu-vlm"


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
            outs = HFMultimodalLM.generate_until(self, [requests[i] for i in image_idx], disable_tqdm)
            for i, out in zip(image_idx, outs):
                answers[i] = out
        if text_idx:
            text_requests = [_text_only(requests[i]) for i in text_idx]
            outs = HFLM.generate_until(self, text_requests, disable_tqdm)
            for i, out in zip(text_idx, outs):
                answers[i] = out
        return answers


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
    """Register ``mllmu-vlm`` in lm-eval's model registry without importing torch (lazy placeholder)."""
    import lm_eval.models  # noqa: F401  (fills the registry with the built-in names first)
    from lm_eval.api.registry import model_registry

    if BACKEND_NAME not in model_registry:
        model_registry.register(BACKEND_NAME, target=f"{__name__}:MLLMUVisionLM")
