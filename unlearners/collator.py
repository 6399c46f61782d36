"""Batches built with the model's own processor and chat template; labels cover the answer only.

Each example becomes a user turn (the image, if any, then the question) and
an assistant turn (the answer), rendered by the processor's chat template.
The processor encodes the whole conversation once; the prompt (the user
turn plus the generation prompt) is measured with the tokenizer alone plus
the processor's image expansion; the label of every position before the
prompt's length, and of padding, is ``-100``. The prompt's tokens must be a
prefix of the conversation's tokens: if a tokenizer merged across the
boundary, the collator raises instead of training on a shifted mask.

The user turn's content is split from the released body (``<image>\n`` +
question) exactly as lm-eval's ``hf-multimodal`` splits a prompt under
``--apply_chat_template`` (:func:`chat_content`), and text that starts with
the BOS the template renders is encoded without the tokenizer's own
(:func:`mllmu_tasks.special_tokens.bos_kwargs`): the training prompt
is token for token the prompt the scorer sends.

Every processor output (``pixel_values``, ``image_sizes``,
``pixel_attention_mask``, ``image_grid_thw``, ...) stays in the batch.
Padding is on the right. A batch may mix image+text and text-only examples
(each example's images are passed as its own list, empty for text-only).
"""

from __future__ import annotations

import logging

import torch

from mllmu_tasks.prefix_lm import is_prefix_lm, text_prefix
from mllmu_tasks.prompts import IMAGE_PLACEHOLDER
from mllmu_tasks.special_tokens import OneBOS, bos_kwargs

from .data import Example

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


def chat_content(body: str) -> list[dict]:
    """Chat items of a prompt body, split as lm-eval 0.4.13's ``hf-multimodal`` does (``interleave``).

    ``"<image>\nWho?"`` -> ``[{"type": "image"}, {"type": "text", "text": "\nWho?"}]``: an image item
    for each placeholder, the text between them as text items, empty texts dropped.
    """
    parts = body.split(IMAGE_PLACEHOLDER)
    content = []
    for i, part in enumerate(parts):
        if part:
            content.append({"type": "text", "text": part})
        if i < len(parts) - 1:
            content.append({"type": "image"})
    return content


def user_turn(example: Example) -> dict:
    """The chat message asking ``example.question``: ``<image>\n{question}`` for image+text, as scored."""
    body = f"{IMAGE_PLACEHOLDER}\n{example.question}" if example.image is not None else example.question
    return {"role": "user", "content": chat_content(body)}


def assistant_turn(example: Example) -> dict:
    """The chat message answering with ``example.answer``."""
    return {"role": "assistant", "content": [{"type": "text", "text": example.answer}]}


def render_turns(processor, example: Example) -> tuple[str, str]:
    """``(prompt, conversation)`` rendered by the processor's chat template: the user turn with the generation
    prompt, and the user and assistant turns (what training labels is the conversation after the prompt)."""
    render = processor.apply_chat_template
    return (render([user_turn(example)], add_generation_prompt=True),
            render([user_turn(example), assistant_turn(example)]))


class StreamCollator:
    """Collate items ``{stream: Example}`` into ``{stream: batch with labels}``; subclasses encode a stream.

    Args:
        processor: the model's ``ProcessorMixin``.
        stop_ids: token ids that end an answer (the generation config's EOS ids; default the tokenizer's
            EOS): the first batch warns once if a labelled span holds none of them (a template that ends the
            assistant turn without an end-of-turn token teaches the model never to stop).
    """

    def __init__(self, processor, stop_ids=None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        ids = [stop_ids] if isinstance(stop_ids, int) else list(stop_ids or [])
        eos = self.tokenizer.eos_token_id
        self.stop_ids = set(ids) | ({eos} if eos is not None else set())
        self._stop_checked = False

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """One stream's batch: ``input_ids``, ``attention_mask``, ``labels`` (batch, seq) and image tensors."""
        raise NotImplementedError

    def check_stop_tokens(self, labels: torch.Tensor, examples: list[Example]) -> None:
        """Warn (once) when a labelled answer span holds no stop id. ``labels``: (batch, seq)."""
        if self._stop_checked:
            return
        self._stop_checked = True
        for row, example in zip(labels, examples):
            span = row[row != IGNORE_INDEX].tolist()
            if not self.stop_ids & set(span):
                log.warning("the chat template ends the assistant turn with %r and no stop token (ids %s): "
                            "training on it does not teach the model to stop (profile %s)",
                            self.tokenizer.decode(span[-4:]), sorted(self.stop_ids), example.profile_id)
                return

    def __call__(self, items: list[dict[str, Example]]) -> dict[str, dict[str, torch.Tensor]]:
        return {stream: self.encode([item[stream] for item in items]) for stream in items[0]}


class AnswerOnlyCollator(StreamCollator):
    """Chat-template collator: the user turn and the assistant's answer, rendered by the processor's template.

    Batch tensors per stream: ``input_ids``, ``attention_mask``, ``labels``:
    (batch, seq); plus the processor's image tensors.

    Raises (when called):
        ValueError: the processor has no chat template, or the prompt's
            tokens are not a prefix of the full conversation's tokens.
    """

    def __init__(self, processor, stop_ids=None):
        if not getattr(processor, "chat_template", None):
            raise ValueError("the processor has no chat template: the collator renders prompts with it")
        super().__init__(processor, stop_ids)
        self._texts: dict[tuple[str, str, bool], tuple[str, list[int], list[int]]] = {}

    def _encode(self, texts: list[str], images: list | None) -> dict:
        one_bos = OneBOS(self.processor, self.tokenizer)
        return one_bos(text=texts, images=images, padding=True, padding_side="right", return_tensors="pt")

    def texts(self, example: Example) -> tuple[str, list[int], list[int]]:
        """``(conversation text, its tokenizer ids, the prompt's tokenizer ids)`` of an example, rendered and
        tokenised once per collator (kept by question, answer and whether an image comes with it: epochs
        after the first reuse them)."""
        key = (example.question, example.answer, example.image is not None)
        if key not in self._texts:
            prompt, full = render_turns(self.processor, example)
            self._texts[key] = (full, *(self.tokenizer(t, **bos_kwargs([t], self.tokenizer))["input_ids"]
                                        for t in (full, prompt)))
        return self._texts[key]

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """One stream's batch: conversation tokens, answer-only labels, image tensors.

        The processor runs once per batch (on the whole conversations); the
        prompt's length comes from the tokenizer alone (:meth:`texts`): its
        tokens of the prompt text plus the processor's image expansion
        (processor tokens minus tokenizer tokens of the conversation, all of
        it in the prompt). Checked per example: the prompt's tokens are a
        prefix of the conversation's, and the processor's tokens after the
        prompt are the tokenizer's.
        """
        fulls, text_fulls, text_prompts = zip(*(self.texts(ex) for ex in examples))
        has_image = [ex.image is not None for ex in examples]
        images = [[ex.image] if ex.image is not None else [] for ex in examples] if any(has_image) else None
        batch = self._encode(list(fulls), images)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        for i, length in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
            full, prompt = text_fulls[i], text_prompts[i]
            start = len(prompt) + length - len(full)
            answer = batch["input_ids"][i, start:length].tolist()
            if full[:len(prompt)] != prompt or answer != full[len(prompt):]:
                raise ValueError(f"prompt tokens are not a prefix of the conversation tokens for "
                                 f"profile {examples[i].profile_id!r}, question {examples[i].question!r}: "
                                 f"the chat template or tokenizer merges across the answer boundary")
            labels[i, :start] = IGNORE_INDEX
        batch["labels"] = labels
        self.check_stop_tokens(labels, examples)
        return dict(batch)


class PrefixSuffixCollator(StreamCollator):
    """Prefix-LM collator (PaliGemma, no chat template): the question as the prefix, the answer as the suffix.

    Image+text batches go through the processor's own ``suffix`` API
    (``<image>*N <bos> {question} \n`` then ``{answer} <eos>``; its labels are
    the answer and ``<eos>``, its ``token_type_ids`` mark them); text-only
    batches, which the processor refuses, through the tokenizer in the same
    format (:func:`mllmu_tasks.prefix_lm.text_prefix`). Padding on the right.
    The question is sent as the plain scoring prompt's body would be (image first).
    """

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        questions, answers = [ex.question for ex in examples], [ex.answer for ex in examples]
        if all(ex.image is not None for ex in examples):
            batch = dict(self.processor(text=[f"{IMAGE_PLACEHOLDER}{q}" for q in questions],
                                        images=[[ex.image] for ex in examples], suffix=answers, padding=True,
                                        padding_side="right", return_tensors="pt"))
        elif all(ex.image is None for ex in examples):
            tok = self.tokenizer
            batch = dict(tok([text_prefix(q, tok.bos_token) for q in questions],
                             text_pair=[a + tok.eos_token for a in answers], add_special_tokens=False,
                             return_token_type_ids=True, padding=True, padding_side="right", return_tensors="pt"))
            labels = batch["input_ids"].masked_fill(batch["token_type_ids"] == 0, IGNORE_INDEX)
            batch["labels"] = labels.masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        else:
            raise ValueError("a prefix-LM batch mixes image+text and text-only examples; train one modality per run")
        self.check_stop_tokens(batch["labels"], examples)
        return batch


def make_collator(processor, model_type: str | None, stop_ids=None) -> StreamCollator:
    """The collator for a checkpoint: :class:`PrefixSuffixCollator` for prefix-LM families (PaliGemma),
    :class:`AnswerOnlyCollator` (the chat template) for the rest."""
    if is_prefix_lm(model_type):
        return PrefixSuffixCollator(processor, stop_ids)
    return AnswerOnlyCollator(processor, stop_ids)
