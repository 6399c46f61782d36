"""Per-question metrics against hand-computed values and direct calls of rouge_score / nltk."""

import math

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer

from mllmu_tasks import metrics

KEYS = ["A", "B", "C", "D"]
OPTIONS = ["Paris", "Berlin", "Rome", "Paris, Texas"]

# (answer, released first-letter prediction, robust prediction), decided by hand.
LETTER_TABLE = [
    ("B", "B", "B"),
    ("b", "B", "B"),
    ("  C. Rome", "C", "C"),
    ("(B)", None, "B"),
    ("(b)", None, "B"),
    ("B.", "B", "B"),
    ("Answer: b", "A", "B"),
    ("answer: c", "A", "C"),
    ("The answer is B", None, "B"),
    ("The answer is C because Rome is the capital.", None, "C"),
    ("The correct answer is (A).", None, "A"),
    ("B. Berlin", "B", "B"),
    ("B) Berlin", "B", "B"),
    ("(C) Rome", None, "C"),
    ("I think it is Rome.", None, "C"),
    ("Paris, Texas it is", None, "D"),      # longer option text contains "Paris": D only
    ("the answer is a doctor", None, None),  # lower-case "a" inside a sentence is not a key
    ("A scientist", "A", None),              # the released rule reads any leading A
    ("Berlin or Rome", "B", None),           # two options stated: no robust answer
    ("Option D", None, "D"),
    ("", None, None),
    ("E", None, None),
    ("Dunno", "D", None),
]


@pytest.mark.parametrize("answer,first,robust", LETTER_TABLE)
def test_letter_extractors(answer, first, robust):
    assert metrics.first_letter(answer, KEYS) == first
    assert metrics.robust_letter(answer, KEYS, OPTIONS) == robust


def test_letter_table_is_large_enough():
    assert len(LETTER_TABLE) >= 15


def test_classification_scores():
    doc = {"kind": "cls", "option_keys": KEYS, "options": OPTIONS, "answer": "B"}
    assert metrics.score(doc, "Answer: B") == {"acc": 0.0, "acc_robust": 1.0}
    assert metrics.score(doc, "B") == {"acc": 1.0, "acc_robust": 1.0}
    assert metrics.score(doc, "Rome") == {"acc": 0.0, "acc_robust": 0.0}


@pytest.mark.parametrize("answer,truth,expected", [
    ("He is a Software Engineer.", "software engineer", True),
    ("software", "software engineer", False),
    ("", "Riga", False),
    ("RIGA, Latvia", "riga", True),
])
def test_cloze(answer, truth, expected):
    assert metrics.cloze_correct(answer, truth) is expected
    assert metrics.score({"kind": "cloze", "answer": truth}, answer) == {"cloze_acc": float(expected)}


GEN_PAIRS = [
    ("This person was born in Riga, Latvia.", "This person was born in Riga, Latvia."),
    ("She was born in Riga.", "This person was born in Riga, Latvia."),
    ("This person works as an environmental scientist", "This person is an environmental scientist."),
    ("US US US US US US US US", "This person resides in Copenhagen, Denmark."),
    ("running runners ran", "run runner running"),
]


@pytest.mark.parametrize("prediction,reference", GEN_PAIRS)
def test_generation_matches_libraries(prediction, reference):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = scorer.score(reference, prediction)
    got = metrics.score({"kind": "gen", "answer": reference}, prediction)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert got[name] == pytest.approx(direct[name].fmeasure, abs=1e-12)
    expected_bleu = sentence_bleu([reference.split()], prediction.split(),
                                  smoothing_function=SmoothingFunction().method1)
    assert got["bleu"] == pytest.approx(expected_bleu, abs=1e-12)


def test_generation_by_hand():
    # "She was born in Riga." vs "This person was born in Riga, Latvia." after the
    # rouge tokenizer (lower-case, alphanumerics): pred [she was born in riga] (5),
    # ref [this person was born in riga latvia] (7); 4 unigrams shared:
    # P = 4/5, R = 4/7, F = 2PR/(P+R) = 2/3. Bigrams shared: "was born", "born in",
    # "in riga" = 3 of 4 and 6: P = 3/4, R = 1/2, F = 0.6. LCS = 4, so rougeL = rouge1.
    got = metrics.rouge("She was born in Riga.", "This person was born in Riga, Latvia.")
    assert got["rouge1"] == pytest.approx(2 / 3)
    assert got["rouge2"] == pytest.approx(0.6)
    assert got["rougeL"] == pytest.approx(2 / 3)
    # identical sentences: BLEU exactly 1
    assert metrics.bleu("a b c d e", "a b c d e") == pytest.approx(1.0)


def test_empty_and_garbage_generations_have_defined_scores():
    empty = metrics.score({"kind": "gen", "answer": "This person is a nurse."}, "")
    assert empty == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "bleu": 0.0}
    garbage = metrics.score({"kind": "gen", "answer": "This person is a nurse."}, "US US US US US")
    assert all(math.isfinite(v) for v in garbage.values())
    assert garbage["rouge1"] == 0.0 and garbage["rougeL"] == 0.0
    # NLTK returns 0 when not even one unigram matches, before any smoothing
    assert garbage["bleu"] == 0.0
    # one matching unigram out of 5, no higher n-gram: smoothing 1 puts 0.1 in each
    # zero numerator: p = (1/5, 0.1/4, 0.1/3, 0.1/2); hypothesis and reference both
    # 5 tokens -> brevity penalty 1; BLEU = (p1 p2 p3 p4)^(1/4)
    expected = (1 / 5 * 0.1 / 4 * 0.1 / 3 * 0.1 / 2) ** 0.25
    assert metrics.bleu("US US nurse US US", "This person is a nurse.".replace(".", "")) == pytest.approx(expected)


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown MLLMU task kind"):
        metrics.score({"kind": "essay"}, "x")
