"""Per-question membership scores of a model on question/answer pairs, with or without the image.

The span scored is exactly what training labels (:class:`unlearners.collator.AnswerOnlyCollator`):
the chat template's rendering of the user turn plus the generation prompt is the context, and the
rest of the rendered conversation (the answer and the template's end of turn) is the continuation,
scored through ``mllmu-vlm``'s likelihood path
(:meth:`mllmu_tasks.backend.MLLMUVisionLM.continuation_token_stats`), one request at a time.
"""

from __future__ import annotations

import dataclasses

from tqdm.auto import tqdm

from ..collator import render_turns
from ..data import Example
from .attacks import attack_scores


def training_span(processor, example: Example) -> tuple[str, str]:
    """``(context, continuation)``: the rendered prompt and the labelled rest of the conversation.

    Raises:
        ValueError: the template renders the conversation without the prompt as its prefix (names the question).
    """
    prompt, full = render_turns(processor, example)
    if not full.startswith(prompt):
        raise ValueError(f"the chat template's conversation does not start with its prompt ({example.question!r})")
    return prompt, full[len(prompt):]


def membership_scores(lm, examples: list[Example], with_image: bool = True, k: float = 0.2) -> list[dict]:
    """Per example: ``{"profile_id", "question", "image", **attack scores}`` (:func:`attacks.attack_scores`).

    ``lm``: an ``MLLMUVisionLM``; ``with_image``: send each example's image (when it has one), else
    text-only. Scores are "higher = more likely seen in training".
    """
    out = []
    for example in tqdm(examples, desc="membership scores", leave=False):
        image = [example.image] if with_image and example.image is not None else []
        shown = example if image else dataclasses.replace(example, image=None)
        context, continuation = training_span(lm.processor, shown)
        stats = lm.continuation_token_stats(context, continuation, image)
        out.append({"profile_id": example.profile_id, "question": example.question, "image": bool(image),
                    **attack_scores(stats, example.answer, k)})
    return out
