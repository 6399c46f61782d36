"""Vanilla fine-tuning: teach the base model the profiles.

Loss: the answer tokens' cross-entropy on the training data,
``CE(train) = -(1/N) sum_t log p_theta(y_t | x, y_<t)`` (Liu et al. 2025,
Sec. 4.1: the "vanilla" model is the base model fine-tuned on ``ft_Data``).
"""

from __future__ import annotations

from .base import Method
from .losses import batch_nll


class FineTune(Method):
    """Cross-entropy on the ``train`` stream (all profiles by default)."""

    name = "finetune"
    streams = ("train",)

    def loss(self, model, batches, reference):
        batch = batches["train"]
        nll = batch_nll(model, batch)
        return nll, {"train_nll": nll.item()}
