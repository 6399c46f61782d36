"""GA (gradient ascent): raise the forget set's loss.

Loss: ``-CE(forget)`` (Thudi et al. 2022; Jang et al. 2023; MLLMU-Bench
baseline "GA", Liu et al. 2025, Sec. 5).
"""

from __future__ import annotations

from .base import Method
from .losses import batch_nll


class GA(Method):
    """Minimise the negative answer cross-entropy of the ``forget`` stream."""

    name = "ga"
    streams = ("forget",)

    def loss(self, model, batches, reference):
        batch = batches["forget"]
        nll = batch_nll(model, batch)
        return -nll, {"forget_nll": nll.item()}
