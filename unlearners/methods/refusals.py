"""Refusal answers for the IDK-style methods (IdkNLL, IdkDPO): the project's own list.

TOFU's ``idontknow.jsonl`` (Maini et al. 2024) holds 100 refusals; these
are written for this project, 20 of them, in the voice of a model asked
about a person (image+text or by name). Each forget question gets one,
chosen by a CRC-32 of the question text (:func:`refusal_for`): the same
question always gets the same refusal, in any process and data order, and
the forget set's questions spread over the list.
"""

from __future__ import annotations

import dataclasses
import zlib

from ..data import Example

REFUSALS = (
    "I don't know.",
    "I'm not sure.",
    "I don't know who this person is.",
    "I have no information about this person.",
    "I can't answer that.",
    "I don't have that information.",
    "Sorry, I don't know anything about this person.",
    "That is not something I know.",
    "I'm unable to say.",
    "I have no idea.",
    "I don't recognise this person.",
    "I can't tell you anything about that.",
    "I'm afraid I don't know.",
    "That information is not available to me.",
    "I don't have any details about this person.",
    "I really couldn't say.",
    "Nothing I know answers that.",
    "I cannot help with that question.",
    "I'm not able to answer questions about this person.",
    "I don't know the answer to that.",
)


def refusal_for(question: str) -> str:
    """The refusal answer of one question: ``REFUSALS[crc32(question) % 20]``."""
    return REFUSALS[zlib.crc32(question.encode("utf-8")) % len(REFUSALS)]


def with_refusals(examples: list[Example]) -> list[Example]:
    """The same examples (question, image, profile) answered with a refusal."""
    return [dataclasses.replace(ex, answer=refusal_for(ex.question)) for ex in examples]
