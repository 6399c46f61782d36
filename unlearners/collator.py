"""Batches built with the model's own processor and chat template; labels cover the answer only.

Each example becomes a user turn (the image, if any, then the question) and
an assistant turn (the answer), rendered by the processor's chat template.
The processor encodes the whole conversation and, separately, the prompt
alone (the user turn plus the generation prompt), both with the same
images, so both expansions of ``<image>`` into image tokens are identical;
the label of every position before the prompt's length, and of padding, is
``-100``. The prompt's tokens must be a prefix of the conversation's tokens:
if a tokenizer merged across the boundary, the collator raises instead of
training on a shifted mask.

Every processor output (``pixel_values``, ``image_sizes``,
``pixel_attention_mask``, ``image_grid_thw``, ...) stays in the batch.
Padding is on the right. A batch may mix image+text and text-only examples
(each example's images are passed as its own list, empty for text-only).
"""

from __future__ import annotations

import torch

from .data import Example

IGNORE_INDEX = -100


def user_turn(example: Example) -> dict:
    """The chat message asking ``example.question`` (with an image item for image+text)."""
    content = ([{"type": "image"}] if example.image is not None else []) + [{"type": "text", "text": example.question}]
    return {"role": "user", "content": content}


def assistant_turn(example: Example) -> dict:
    """The chat message answering with ``example.answer``."""
    return {"role": "assistant", "content": [{"type": "text", "text": example.answer}]}


class AnswerOnlyCollator:
    """Collate items ``{stream: Example}`` into ``{stream: processor batch with labels}``.

    Args:
        processor: the model's ``ProcessorMixin`` (with a chat template).

    Batch tensors per stream: ``input_ids``, ``attention_mask``, ``labels``:
    (batch, seq); plus the processor's image tensors.

    Raises (when called):
        ValueError: the processor has no chat template, or the prompt's
            tokens are not a prefix of the full conversation's tokens.
    """

    def __init__(self, processor):
        if not getattr(processor, "chat_template", None):
            raise ValueError("the processor has no chat template: the collator renders prompts with it")
        self.processor = processor

    def _encode(self, texts: list[str], images: list | None) -> dict:
        return self.processor(text=texts, images=images, padding=True, padding_side="right", return_tensors="pt")

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """One stream's batch: conversation tokens, answer-only labels, image tensors."""
        render = self.processor.apply_chat_template
        prompts = [render([user_turn(ex)], add_generation_prompt=True) for ex in examples]
        fulls = [render([user_turn(ex), assistant_turn(ex)]) for ex in examples]
        has_image = [ex.image is not None for ex in examples]
        images = [[ex.image] if ex.image is not None else [] for ex in examples] if any(has_image) else None
        batch = self._encode(fulls, images)
        prompt_ids = self._encode(prompts, images)
        prompt_lens = prompt_ids["attention_mask"].sum(dim=1)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        for i, n in enumerate(prompt_lens.tolist()):
            if not torch.equal(prompt_ids["input_ids"][i, :n], batch["input_ids"][i, :n]):
                raise ValueError(f"prompt tokens are not a prefix of the conversation tokens for "
                                 f"profile {examples[i].profile_id!r}, question {examples[i].question!r}: "
                                 f"the chat template or tokenizer merges across the answer boundary")
            labels[i, :n] = IGNORE_INDEX
        batch["labels"] = labels
        return dict(batch)

    def __call__(self, items: list[dict[str, Example]]) -> dict[str, dict[str, torch.Tensor]]:
        return {stream: self.encode([item[stream] for item in items]) for stream in items[0]}
