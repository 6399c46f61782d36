"""Golden fidelity: per-question scores frozen from the released definitions, so that any drift fails.

The numbers below were computed once with the released evaluation's own
definitions: ``rouge_score.RougeScorer(["rouge1", "rouge2", "rougeL"],
use_stemmer=True)`` F-measures (rouge-score 0.1.2), NLTK ``sentence_bleu``
over whitespace tokens with ``SmoothingFunction().method1`` (nltk 3.10), the
first-letter rule for classification and the lower-case substring rule for
cloze. A change in our metrics, in a library version or in tokenisation that
moves any of them fails here.
"""

import pytest

from mllmu_tasks import metrics

# (generation, ground truth, rouge1 F, rouge2 F, rougeL F, BLEU)
GENERATION = [
    ("This person was born in Riga, Latvia.", "This person was born in Riga, Latvia.", 1.0, 1.0, 1.0, 1.0),
    ("She was born in Riga.", "This person was born in Riga, Latvia.",
     0.6666666666666666, 0.6, 0.6666666666666666, 0.17824801752356584),
    ("This person works as an environmental scientist", "This person is an environmental scientist.",
     0.7692307692307692, 0.5454545454545454, 0.7692307692307692, 0.09878765474230743),
    ("The person is employed as a nurse at a hospital.", "This person is a nurse.",
     0.5333333333333333, 0.30769230769230765, 0.5333333333333333, 0.04939382737115371),
    ("running runners ran quickly", "run runner running", 0.5714285714285715, 0.4, 0.5714285714285715,
     0.08034284189446518),
    ("US US US US US US", "This person resides in Copenhagen, Denmark.", 0.0, 0.0, 0.0, 0.0),
    ("Copenhagen", "This person resides in Copenhagen, Denmark.", 0.2857142857142857, 0.0, 0.2857142857142857, 0.0),
    ("This person's annual salary is $75,000.", "This person's annual salary is $75,000.", 1.0, 1.0, 1.0, 1.0),
    ("", "This person is a nurse.", 0.0, 0.0, 0.0, 0.0),
]

# (answer, correct key, released first-letter acc)
CLASSIFICATION = [("B", "B", 1.0), ("b) Berlin", "B", 1.0), (" C", "C", 1.0), ("(B)", "B", 0.0),
                  ("Answer: B", "B", 0.0), ("A scientist", "A", 1.0), ("", "A", 0.0), ("D.", "C", 0.0)]

# (answer, ground truth, released cloze acc)
CLOZE = [("environmental scientist", "environmental scientist", 1.0), ("An Environmental Scientist.",
         "environmental scientist", 1.0), ("scientist", "environmental scientist", 0.0), ("", "Riga", 0.0),
         ("riga, latvia", "Riga", 1.0)]


@pytest.mark.parametrize("generation,truth,r1,r2,rl,bleu", GENERATION)
def test_generation_scores_are_frozen(generation, truth, r1, r2, rl, bleu):
    got = metrics.score({"kind": "gen", "answer": truth}, generation)
    assert got == pytest.approx({"rouge1": r1, "rouge2": r2, "rougeL": rl, "bleu": bleu}, abs=1e-12)


@pytest.mark.parametrize("answer,key,acc", CLASSIFICATION)
def test_classification_scores_are_frozen(answer, key, acc):
    doc = {"kind": "cls", "option_keys": ["A", "B", "C", "D"], "options": ["x", "Berlin", "z", "w"], "answer": key}
    assert metrics.score(doc, answer)["acc"] == acc


@pytest.mark.parametrize("answer,truth,acc", CLOZE)
def test_cloze_scores_are_frozen(answer, truth, acc):
    assert metrics.score({"kind": "cloze", "answer": truth}, answer) == {"cloze_acc": acc}
