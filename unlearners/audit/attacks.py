"""Membership-inference scores of one answer, and the AUC that separates two sets with them.

Every score is "higher = more likely a member" (seen in training), from the
answer's per-token statistics (:meth:`mllmu_tasks.backend.MLLMUVisionLM.continuation_token_stats`):

- ``loss``: minus the mean token NLL, ``mean_t log p_t`` (Yeom et al. 2018).
- ``zlib``: ``sum_t log p_t / zlib_bytes(answer)``, the log-likelihood over the
  answer's zlib-compressed length in bytes (Carlini et al. 2021, Sec. 5.1).
- ``min_k``: the mean of the lowest ``k`` fraction of ``log p_t`` (at least one
  token; Shi et al. 2024, "Detecting Pretraining Data", Eq. 1; k = 0.2).
- ``min_k_plus_plus``: the same over ``(log p_t - mu_t) / sigma_t``, ``mu_t`` and
  ``sigma_t`` the mean and standard deviation of ``log p(z)`` under the model's
  own next-token distribution (Zhang et al. 2024, "Min-K%++", Eq. 2-3; k = 0.2).

:func:`auc` is the area under the ROC curve of members against non-members
(``sklearn.metrics.roc_auc_score``) with a percentile bootstrap interval.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


def _lowest_mean(values: torch.Tensor, k: float) -> float:
    """Mean of the ``ceil(k * n)`` (at least 1) smallest values."""
    count = max(1, math.ceil(k * values.numel()))
    return float(torch.sort(values.double()).values[:count].mean())


def attack_scores(stats: dict[str, torch.Tensor], answer: str, k: float = 0.2) -> dict[str, float]:
    """The four scores of one answer from its token statistics (``logp``, ``mean``, ``std``: (tokens,)).

    Raises:
        ValueError: an answer with no token, or ``k`` outside (0, 1].
    """
    if stats["logp"].numel() == 0:
        raise ValueError(f"no answer token to score ({answer!r})")
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    logp = stats["logp"].double()
    normalised = (logp - stats["mean"].double()) / stats["std"].double().clamp(min=1e-12)
    return {"loss": float(logp.mean()), "zlib": float(logp.sum()) / len(zlib.compress(answer.encode("utf-8"))),
            "min_k": _lowest_mean(logp, k), "min_k_plus_plus": _lowest_mean(normalised, k)}


def _rank_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC of each row of ``pos`` (draws, n_pos) against the same row of ``neg`` (draws, n_neg): the Mann-Whitney
    U statistic over ``n_pos * n_neg`` with average ranks for ties (what ``roc_auc_score`` computes), vectorised."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)[:, :pos.shape[1]]
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    return (ranks.sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc(members: list[float], non_members: list[float], resamples: int = 1000, seed: int = 0,
        level: float = 0.95) -> dict[str, float]:
    """ROC AUC of scores separating members (positives) from non-members, with a bootstrap interval.

    Returns ``{"auc", "low", "high"}`` (fractions): the AUC (``sklearn.metrics.roc_auc_score``), and the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the AUC over ``resamples`` draws resampling
    each group with replacement (``seed``; the draws' AUCs by rank sums, vectorised).

    Raises:
        ValueError: an empty group.
    """
    from sklearn.metrics import roc_auc_score

    if not members or not non_members:
        raise ValueError(f"AUC needs both groups: {len(members)} members, {len(non_members)} non-members")
    pos, neg = np.asarray(members, float), np.asarray(non_members, float)
    point = float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
    rng = np.random.default_rng(seed)
    draws = _rank_auc(pos[rng.integers(0, len(pos), (resamples, len(pos)))],
                      neg[rng.integers(0, len(neg), (resamples, len(neg)))])
    low, high = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"auc": point, "low": float(low), "high": float(high)}
