"""One BOS, whoever writes it: chat templates that render ``{{ bos_token }}`` beside tokenizers that add it.

Gemma-3, Idefics3, Mllama and Mistral3 hub templates start with the BOS
string and their tokenizers prepend BOS as well, so encoding a rendered
prompt with the tokenizer's defaults gives ``<bos><bos>...``. lm-eval's
text-only path avoids it (it encodes without special tokens when the text
starts with BOS) but its image+text path does not, and a processor called on
rendered text doubles it in training. :func:`bos_kwargs` applies lm-eval's
text-only rule to every processor call (:class:`OneBOS`), so both
modalities, and training and scoring, see one BOS.

Also here: the string a plain prompt's ``<image>`` becomes per family
(:func:`plain_image_string`).
"""

from __future__ import annotations


def adds_bos(tokenizer) -> bool:
    """Whether ``tokenizer(text)`` (default special tokens) starts with its BOS id."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos_id and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos_id]


def bos_kwargs(texts: list[str], tokenizer) -> dict:
    """Encoding arguments for rendered ``texts``: ``{"add_special_tokens": False}`` where they start with the
    BOS string and the tokenizer adds BOS too (one BOS, the template's), else ``{}``.

    Passing the flag (rather than cutting the rendered BOS) also suits processors that insert a BOS string
    into text that lacks one (Mllama).
    """
    bos = getattr(tokenizer, "bos_token", None)
    if texts and bos and all(t.startswith(bos) for t in texts) and adds_bos(tokenizer):
        return {"add_special_tokens": False}
    return {}


class OneBOS:
    """A processor whose calls encode rendered text with one BOS (:func:`bos_kwargs`); every other attribute
    is the wrapped processor's. ``OneBOS(processor)(text=[...], images=...)``."""

    def __init__(self, processor, tokenizer):
        self._processor, self._tokenizer = processor, tokenizer

    def __call__(self, *args, text=None, **kwargs):
        texts = [text] if isinstance(text, str) else list(text or [])
        return self._processor(*args, text=text, **{**bos_kwargs(texts, self._tokenizer), **kwargs})

    def __getattr__(self, name):
        return getattr(self._processor, name)


def template_image_string(processor) -> str | None:
    """What the family's own chat template writes for one image item, stripped of whitespace, or ``None``.

    Found by rendering a user turn with and without an image before the same
    text: ``<image>`` (LLaVA, LLaVA-NeXT, Idefics2/3), ``<|vision_start|><|image_pad|><|vision_end|>``
    (Qwen2-VL/2.5-VL), ``<start_of_image>`` (Gemma-3), ``<|image|>`` (Mllama), ``[IMG]`` (Mistral3),
    ``<IMG_CONTEXT>`` (InternVL). ``None`` without a chat template or where the two renderings differ by
    more than the image's text and whitespace (Mllama adds a dated system turn to text-only conversations).
    """
    import os

    if not getattr(processor, "chat_template", None):
        return None
    text = {"type": "text", "text": "Question?"}
    try:
        with_image = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, text]}],
                                                   tokenize=False)
        without = processor.apply_chat_template([{"role": "user", "content": [text]}], tokenize=False)
    except Exception:  # noqa: BLE001 - a template that cannot render an image item: no family string
        return None
    if not (isinstance(with_image, str) and isinstance(without, str)):
        return None
    head = len(os.path.commonprefix([with_image, without]))
    tail = len(os.path.commonprefix([with_image[head:][::-1], without[head:][::-1]]))
    inserted, replaced = with_image[head:len(with_image) - tail], without[head:len(without) - tail]
    return inserted.strip() or None if not replaced.strip() else None


def plain_image_string(processor, fallback: str | None) -> str | None:
    """The string a plain (no chat template) prompt's ``<image>`` becomes for this family's processor.

    The family's own image sequence as its chat template writes it (:func:`template_image_string`), else
    the processor's ``image_token`` (Gemma-3's ``<start_of_image>``, which its processor expands; the
    config's ``<image_soft_token>`` that lm-eval would take is not), else ``fallback`` (lm-eval's rule:
    the token ``config.image_token_id`` names).
    """
    token = getattr(processor, "image_token", None)
    return template_image_string(processor) or (token if isinstance(token, str) and token else fallback)
