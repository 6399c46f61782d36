"""Answer-format drills: the suite's own prompts over a set's facts, as training examples.

A tiny model built from scratch has never learned to answer a multiple-choice
question with a letter or to fill a blank: the pipeline teaches these formats
the way instruction tuning teaches a real VLM. Each evaluation-schema row
gives one example per question (classification with its options reshuffled
by ``seed`` and the letter as the answer; generation with the sentence;
cloze with the blank's words), image+text with the row's image, text-only
without. Built with :func:`mllmu_tasks.docs.row_docs` and the prompt bodies
of :mod:`mllmu_tasks.prompts`, so training and scoring see the same text.
"""

from __future__ import annotations

import random

from mllmu_tasks import docs, prompts
from mllmu_tasks.images import open_rgb
from mllmu_tasks.sources import Source, load_config

from .data import Example


def _reshuffled(doc: dict, rng: random.Random) -> dict:
    """A classification document with its option texts in a new order (answer letter moved with them)."""
    order = rng.sample(range(len(doc["options"])), len(doc["options"]))
    options = [doc["options"][i] for i in order]
    answer = doc["option_keys"][options.index(doc["answer_text"])]
    return {**doc, "options": options, "answer": answer}


def doc_example(doc: dict) -> Example:
    """The training example of one document: the released user body (no image placeholder) -> expected answer."""
    image = open_rgb(doc["images"][0]["bytes"]) if doc["images"] else None
    question = docs.doc_to_body(doc).removeprefix(prompts.IMAGE_PLACEHOLDER + "\n")  # the image goes in separately
    return Example(doc["ID"], question, doc["answer"], image)


def format_examples(config: str, source: Source, seed: int = 0, ids: set[str] | None = None,
                    mc_copies: int = 1) -> list[Example]:
    """Drills for every question of a configuration (every kind, both modalities), optionally only some IDs.

    ``mc_copies``: each classification question appears this many times, each
    with its own option order (so a letter is not learned by position).

    Raises:
        SchemaError: bad rows (see :func:`mllmu_tasks.docs.row_docs`).
    """
    rng = random.Random(f"drills-{seed}")
    examples = []
    for row_index, row in enumerate(load_config(config, source)):
        if ids is not None and row["ID"] not in ids:
            continue
        for kind in docs.KINDS:
            for modality in docs.MODALITIES:
                for doc in docs.row_docs(row, row_index, set_name="train", config=config, kind=kind,
                                         modality=modality, source=source):
                    copies = [_reshuffled(doc, rng) for _ in range(mc_copies)] if kind == "cls" else [doc]
                    examples.extend(doc_example(d) for d in copies)
    return examples
