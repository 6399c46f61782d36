"""Per-question scores of MLLMU-Bench (pure functions, no model code).

All scores are fractions in [0, 1] as lm-eval reports them; the paper
reports classification and cloze accuracy in % (multiply by 100).

- Classification (Liu et al. 2025, released evaluation): the first
  character of the answer, upper-cased, is the prediction if it is an option
  key (:func:`first_letter`, metric ``acc``). :func:`robust_letter`
  (``acc_robust``) also reads "(B)", "**B**", "Answer: b", "B. Paris", "The answer is B"
  and an answer that states exactly one option's text.
- Generation: ROUGE-1/2/L F-measure of ``rouge_score`` with the Porter
  stemmer (Lin 2004), and sentence BLEU of NLTK over whitespace tokens with
  smoothing method 1 (Chen & Cherry 2014), as in the released code.
- Cloze: correct when the ground truth, lower-cased, is a substring of the
  lower-cased answer (released code).
"""

from __future__ import annotations

import functools
import logging
import re

log = logging.getLogger(__name__)

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def first_letter(answer: str, keys: list[str]) -> str | None:
    """Released rule: the first non-space character, upper-cased, if it is an option key, else None."""
    stripped = answer.lstrip()
    letter = stripped[:1].upper()
    return letter if letter in keys else None


_ANSWER_IS = r"(?i:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*:?\s*)"


def robust_letter(answer: str, keys: list[str], options: list[str]) -> str | None:
    """Option key stated by a free-form answer, or None when none or several are stated.

    Recognised, in this order (the first rule that finds exactly one key
    decides): a bare key with optional brackets/punctuation, alone on the
    first line ("B", "(b)", "B.", "B\n\nUSER: ..."); "answer/option/choice is/: B" (a lower-case key only at the end,
    so that "the answer is a doctor" is not read as A); a leading upper-case
    key followed by a delimiter ("B. Paris", "B) Paris", "(B) Paris",
    "B: Paris"); a bracketed key anywhere ("... (C)"); exactly one option's
    text in the answer, case-insensitive, where an option whose text lies
    inside another stated option's text does not count. Markdown bold is
    read as plain text first ("**B**", "The answer is **B**.").

    Args:
        answer: the generated text.
        keys: option keys, e.g. ``["A", "B", "C", "D"]`` (upper case).
        options: option texts, aligned with ``keys``.
    """
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", answer.strip())  # Markdown bold: "**B**", "The answer is **B**."
    upper = "[" + "".join(re.escape(k.upper()) for k in keys) + "]"
    lower = upper.lower()
    patterns = (
        (rf"^[\(\[]?({upper})[\)\]]?[.:]?(?:\n|$)", re.IGNORECASE),
        (rf"{_ANSWER_IS}[\(\[]?({upper})\b", 0),
        (rf"{_ANSWER_IS}[\(\[]?({lower})[\)\]]?\.?$", 0),
        (rf"^[\(\[]?({upper})[\)\].:]\s", 0),
        (rf"[\(\[]({upper})[\)\]]", re.IGNORECASE),
    )
    for pattern, flags in patterns:
        found = {m.upper() for m in re.findall(pattern, text, flags=flags)}
        if len(found) == 1:
            return found.pop()
    lowered = text.lower()
    stated = {k: opt.lower() for k, opt in zip(keys, options) if opt and opt.lower() in lowered}
    maximal = [k for k, t in stated.items() if not any(k2 != k and t in t2 for k2, t2 in stated.items())]
    return maximal[0] if len(maximal) == 1 else None


def cloze_correct(answer: str, ground_truth: str) -> bool:
    """Released cloze rule: ``ground_truth.lower()`` is a substring of ``answer.lower()``."""
    return ground_truth.lower() in answer.lower()


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


_untokenizable: set[str] = set()


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F-measure (``rouge_score``, stemmer on): ``{"rouge1": f, "rouge2": f, "rougeL": f}``.

    ``rouge_score``'s tokenizer keeps only ``a-z`` and ``0-9``: a ground truth
    in another script (Chinese, Cyrillic, ...) has no token, and every answer
    scores 0, identical ones included. That is the released protocol's score
    too; a warning says so, once per ground truth.
    """
    scorer = _rouge_scorer()
    if reference not in _untokenizable and reference.strip() and not scorer._tokenizer.tokenize(reference):
        _untokenizable.add(reference)
        log.warning("MLLMU: the ground truth %r has no token rouge_score counts (it keeps a-z and 0-9 only): "
                    "its ROUGE is 0 for every answer, as in the released code", reference[:80])
    scores = scorer.score(reference, prediction)
    return {name: scores[name].fmeasure for name in ROUGE_TYPES}


def bleu(prediction: str, reference: str) -> float:
    """NLTK sentence BLEU-4 over whitespace tokens with smoothing method 1; 0.0 for an empty prediction."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    hypothesis = prediction.split()
    if not hypothesis:
        return 0.0
    return float(sentence_bleu([reference.split()], hypothesis, smoothing_function=SmoothingFunction().method1))


def score(doc: dict, answer: str) -> dict[str, float]:
    """All metrics of one answer to one document (fractions in [0, 1]).

    Raises:
        ValueError: the document's ``kind`` is not cls, gen or cloze.
    """
    kind = doc["kind"]
    if kind == "cls":
        keys, options = doc["option_keys"], doc["options"]
        return {"acc": float(first_letter(answer, keys) == doc["answer"]),
                "acc_robust": float(robust_letter(answer, keys, options) == doc["answer"])}
    if kind == "gen":
        return {**rouge(answer, doc["answer"]), "bleu": bleu(answer, doc["answer"])}
    if kind == "cloze":
        return {"cloze_acc": float(cloze_correct(answer, doc["answer"]))}
    raise ValueError(f"unknown MLLMU task kind {kind!r}")


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval ``process_results`` for ``generate_until``: ``results[0]`` is the generated text.

    The answer is cut as released (:func:`mllmu_tasks.prompts.cut_answer`:
    before the model's own first ``ASSISTANT:``, stripped) and then scored.
    """
    from .prompts import cut_answer
    return score(doc, cut_answer(results[0]))
