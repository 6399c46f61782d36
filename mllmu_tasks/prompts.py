"""Prompt strings of the MLLMU-Bench evaluation, byte for byte as released.

Source: the authors' ``eval.py`` (``franciscoliu/MLLMU-Bench`` at ``0e3098e``;
``../shared/RELEASED-PROTOCOL.md`` sections 2-4 state them). Every function
here is pure and returns text; which demonstrations a prompt carries is
decided in :mod:`mllmu_tasks.fewshot`.

Target prompts (``{qo}`` = the question, then one ``KEY: text`` line per
option; ``{q'}`` = the cloze sentence with ``__`` shown as ``[Blank]``, a
newline and :data:`CLOZE_INSTRUCTION`):

==========  ===========================================================================
cls img     ``USER: <image>\\n{qo}\\nJust give ONE letter representing the answer directly.\\nASSISTANT:``
cls txt     ``USER:\\n{qo}\\nJust give ONE letter representing the answer directly.\\nASSISTANT:``
cloze img   ``USER: <image>\\n{q'}\\nASSISTANT:``
cloze txt   ``USER:\\n{q'}\\nASSISTANT:``
gen img     ``USER: <image>\\n{q}\\n`` :data:`GENERATION_INSTRUCTION_IMAGE` ``\\nASSISTANT: `` (trailing space)
gen txt     ``USER: {q}\\n`` :data:`GENERATION_INSTRUCTION_TEXT` ``\\nASSISTANT:``
==========  ===========================================================================

Demonstration blocks (prepended, one per demonstration question):
``USER: <image>\\nQuestion: {q}\\nA: ..\\nB: ..\\nC: ..\\nD: ..\\nCorrect Answer: X\\n``
(classification; ``USER:\\n`` for text-only) and
``USER:<image>\\n{q'}\\nCorrect Answer: {truth}\\n`` (cloze, no space after
``USER:``; ``USER:\\n`` for text-only).

Under ``--apply_chat_template`` (a variant, not the paper protocol) the
*user body* (:func:`user_body`: the target prompt without ``USER:``, its
separator and ``\\nASSISTANT:``) becomes the user turn and the model's own
template renders it.
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"
CLOZE_BLANK = "__"
CLOZE_BLANK_SHOWN = "[Blank]"
USER = "USER:"
ASSISTANT = "ASSISTANT:"
DEMO_QUESTION = "Question: "
DEMO_ANSWER = "Correct Answer: "
#: Keys the released classification demonstrations print, whatever the question has.
DEMO_OPTION_KEYS = ("A", "B", "C", "D")

CLASSIFICATION_INSTRUCTION = "Just give ONE letter representing the answer directly."
CLOZE_INSTRUCTION = "Please **ONLY** provide the correct answer that should replace the [Blank]."
GENERATION_INSTRUCTION_IMAGE = ("Answer the question based on your trained knowledge in one sentence "
                                "accurately in ENGLISH.")
#: The released text-only generation instruction (no "accurately": as released).
GENERATION_INSTRUCTION_TEXT = "Answer the question based on your trained knowledge in one sentence in ENGLISH."

#: Every fixed string a prompt can contain (for tokenizer training).
TEMPLATE_STRINGS = (
    USER, ASSISTANT, IMAGE_PLACEHOLDER, CLOZE_BLANK_SHOWN, DEMO_QUESTION.strip(), DEMO_ANSWER.strip(),
    CLASSIFICATION_INSTRUCTION, GENERATION_INSTRUCTION_IMAGE, GENERATION_INSTRUCTION_TEXT, CLOZE_INSTRUCTION,
    "A:", "B:", "C:", "D:",
)


def question_with_options(question: str, keys: list[str], options: list[str]) -> str:
    """``{question}\\nA: {option}\\nB: ...`` (released ``formulate_prompt_with_options``).

    Raises:
        ValueError: ``options`` is empty or its length differs from ``keys``.
    """
    if not options or len(options) != len(keys):
        raise ValueError(f"a classification question needs one option per key, got {len(options)} options "
                         f"for keys {keys}")
    return f"{question}\n" + "\n".join(f"{k}: {text}" for k, text in zip(keys, options))


def cloze_question(question: str) -> str:
    """The cloze sentence with ``__`` shown as ``[Blank]``, then a newline and :data:`CLOZE_INSTRUCTION`."""
    return question.replace(CLOZE_BLANK, CLOZE_BLANK_SHOWN) + "\n" + CLOZE_INSTRUCTION


def user_body(kind: str, question: str, image: bool, keys: list[str] = (), options: list[str] = ()) -> str:
    """What the user says: ``<image>\\n`` (image+text only), the question text, the instruction.

    ``kind``: ``cls``, ``gen`` or ``cloze``; ``keys``/``options``: the
    classification options (ignored otherwise).

    Raises:
        ValueError: unknown ``kind``; a classification question without options.
    """
    if kind == "cls":
        text = question_with_options(question, list(keys), list(options)) + "\n" + CLASSIFICATION_INSTRUCTION
    elif kind == "cloze":
        text = cloze_question(question)
    elif kind == "gen":
        text = question + "\n" + (GENERATION_INSTRUCTION_IMAGE if image else GENERATION_INSTRUCTION_TEXT)
    else:
        raise ValueError(f"unknown MLLMU task kind {kind!r}")
    return (IMAGE_PLACEHOLDER + "\n" if image else "") + text


def released_prompt(kind: str, body: str, image: bool) -> str:
    """The released target prompt around a :func:`user_body`.

    ``USER:`` is followed by a space, except for text-only classification and
    cloze (a newline); generation with an image ends in ``ASSISTANT: `` (with
    a trailing space), every other prompt in ``ASSISTANT:``.
    """
    separator = " " if image or kind == "gen" else "\n"
    trailing = " " if image and kind == "gen" else ""
    return f"{USER}{separator}{body}\n{ASSISTANT}{trailing}"


def classification_demo(question: str, options: dict[str, str], answer: str, image: bool) -> str:
    """One released classification demonstration block (keys A-D always printed, in that order).

    Raises:
        KeyError: ``options`` lacks one of A-D (the released code fails the same way).
    """
    head = f"{USER} {IMAGE_PLACEHOLDER}\n" if image else f"{USER}\n"
    lines = "".join(f"{k}: {options[k]}\n" for k in DEMO_OPTION_KEYS)
    return f"{head}{DEMO_QUESTION}{question}\n{lines}{DEMO_ANSWER}{answer}\n"


def cloze_demo(question: str, ground_truth: str, image: bool) -> str:
    """One released cloze demonstration block (``USER:<image>``: no space, as released)."""
    head = f"{USER}{IMAGE_PLACEHOLDER}\n" if image else f"{USER}\n"
    return f"{head}{cloze_question(question)}\n{DEMO_ANSWER}{ground_truth}\n"


def cut_answer(generated: str) -> str:
    """The released answer cut of a continuation: the text before its first ``ASSISTANT:``, stripped.

    The released code decodes prompt + continuation and keeps
    ``split("ASSISTANT:")[1].strip()``; the prompt's own ``ASSISTANT:`` is the
    first one (no demonstration contains one), so this is the continuation up
    to the model's own first ``ASSISTANT:``, without surrounding whitespace.
    """
    return generated.split(ASSISTANT)[0].strip()
