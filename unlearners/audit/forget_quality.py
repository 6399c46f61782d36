"""Forget quality: how far an unlearned model's truth ratios on the forget set are from a retrained model's.

Truth ratio of one multiple-choice question (TOFU, Maini et al. 2024, Sec. 2.2.3,
with the benchmark's distractors as the perturbed answers and the correct
option as the paraphrased one):
``R = mean_d P(d | q)^(1/|d|) / P(c | q)^(1/|c|)``, each option's likelihood
normalised by its token count (a geometric mean per token). ``R`` near 0: the
model prefers the true answer; near 1 or above: it does not.

Forget quality: the p-value of the two-sample Kolmogorov-Smirnov test between
the unlearned and the retrained model's truth ratios on the forget set
(TOFU Sec. 2.5; ``scipy.stats.ks_2samp``, two-sided). 1: indistinguishable
from never having seen the forget set; near 0: clearly different.
"""

from __future__ import annotations

import math


def truth_ratio(correct: tuple[float, int], distractors: list[tuple[float, int]]) -> float:
    """``R`` from ``(summed log-probability in nats, token count)`` of the correct option and of each distractor.

    Raises:
        ValueError: no distractor, or an option with no token.
    """
    if not distractors:
        raise ValueError("a truth ratio needs at least one distractor")
    if correct[1] <= 0 or any(n <= 0 for _, n in distractors):
        raise ValueError("every option needs at least one token")
    per_token = [math.exp(logp / n) for logp, n in distractors]
    return (sum(per_token) / len(per_token)) / math.exp(correct[0] / correct[1])


def forget_quality(unlearned: list[float], retrained: list[float]) -> float:
    """KS-test p-value between two models' truth ratios on the same forget questions (0-1).

    Raises:
        ValueError: an empty list.
    """
    from scipy.stats import ks_2samp

    if not unlearned or not retrained:
        raise ValueError(f"forget quality needs truth ratios from both models ({len(unlearned)}, {len(retrained)})")
    return float(ks_2samp(unlearned, retrained).pvalue)
