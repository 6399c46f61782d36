"""Plain prompts for prefix-LM families (PaliGemma), which have no chat template and their own input format.

``PaliGemmaProcessor`` builds ``<image>*N <bos> {prefix} \\n`` (then ``{suffix} <eos>`` when training): the
image tokens first, BOS after them, a newline closing the prefix. A released prompt with its ``<image>``
after ``USER: `` would put BOS mid-prompt, and a text-only prompt through the tokenizer would get no BOS
(the processor switches the tokenizer's off). So for these families the plain prompt's images move to the
front (:func:`images_first`) and a text-only prompt is framed the same way (:func:`text_prefix`): both
modalities reach the model in the family's own format.
"""

from __future__ import annotations

from .prompts import IMAGE_PLACEHOLDER

#: ``config.model_type`` of the prefix-LM families handled here.
PREFIX_LM_FAMILIES = ("paligemma",)


def is_prefix_lm(model_type: str | None) -> bool:
    """Whether a checkpoint's ``model_type`` takes the prefix-LM plain format."""
    return model_type in PREFIX_LM_FAMILIES


def images_first(text: str, placeholder: str = IMAGE_PLACEHOLDER) -> str:
    """``"USER: <image>\\nQ"`` -> ``"<image>USER: \\nQ"``: every image placeholder moved to the front."""
    return placeholder * text.count(placeholder) + text.replace(placeholder, "")


def text_prefix(text: str, bos: str) -> str:
    """A text-only prompt in the prefix format: ``{bos}{text}\\n`` (unchanged if it already starts with ``bos``)."""
    return text if text.startswith(bos) else f"{bos}{text}\n"
