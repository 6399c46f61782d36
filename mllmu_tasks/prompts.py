"""Prompt templates of the MLLMU-Bench evaluation protocol (zero-shot).

Released protocol (Liu et al. 2025, evaluation code): the question, for
classification its options one per line as ``A: text``, then an instruction
for the task kind; image+text prompts start with the image placeholder
``<image>``. Without a chat template the released LLaVA wrapper
``USER: <image>\\n{question}\\nASSISTANT:`` is applied (:func:`wrap_released`);
with ``--apply_chat_template`` the body alone becomes the user turn and the
model's own template renders it (lm-eval turns each ``<image>`` into an image
content item).
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"
CLOZE_BLANK = "__"
CLOZE_BLANK_SHOWN = "[Blank]"

CLASSIFICATION_INSTRUCTION = "Answer with the option's letter from the given choices directly."
GENERATION_INSTRUCTION = "Answer the following question in one sentence, accurately, in English."
CLOZE_INSTRUCTION = ("Fill in the blank in the sentence below. "
                     "Give ONLY the word(s) that should replace [Blank], nothing else.")

#: Every fixed string a prompt can contain (for tokenizer training).
TEMPLATE_STRINGS = (
    "USER:", "ASSISTANT:", IMAGE_PLACEHOLDER, CLOZE_BLANK_SHOWN,
    CLASSIFICATION_INSTRUCTION, GENERATION_INSTRUCTION, CLOZE_INSTRUCTION,
    "Question:", "A:", "B:", "C:", "D:",
)


def classification_body(question: str, options: list[str], keys: list[str]) -> str:
    """Question, one ``KEY: text`` line per option, then the letter instruction.

    Raises:
        ValueError: ``options`` is empty or its length differs from ``keys``.
    """
    if not options or len(options) != len(keys):
        raise ValueError(f"a classification question needs one option per key, got {len(options)} options "
                         f"for keys {keys}")
    lines = [question] + [f"{k}: {text}" for k, text in zip(keys, options)] + [CLASSIFICATION_INSTRUCTION]
    return "\n".join(lines)


def generation_body(question: str) -> str:
    """Instruction, then the open question."""
    return f"{GENERATION_INSTRUCTION}\nQuestion: {question}"


def cloze_body(question: str) -> str:
    """Instruction, then the sentence with ``__`` shown as ``[Blank]``."""
    return f"{CLOZE_INSTRUCTION}\n{question.replace(CLOZE_BLANK, CLOZE_BLANK_SHOWN)}"


def with_image(body: str, num_images: int) -> str:
    """Prefix ``num_images`` placeholders, one per line, to a prompt body."""
    return "".join(f"{IMAGE_PLACEHOLDER}\n" for _ in range(num_images)) + body


def wrap_released(body: str) -> str:
    """The released LLaVA wrapper: ``USER: {body}\\nASSISTANT:``."""
    return f"USER: {body}\nASSISTANT:"
