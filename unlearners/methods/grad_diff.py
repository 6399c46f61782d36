"""GradDiff (GA_Difference): gradient ascent on the forget set, descent on the retain set.

Loss at every step: ``-forget_weight * CE(forget) + retain_weight * CE(retain)``
(Liu et al. 2022, "Continual learning and private unlearning"; MLLMU-Bench
baseline "GA_Difference"). Under ``--protocol released`` each batch holds one
set, as the released code alternates whole passes: ``-forget_weight * CE`` on a
forget batch, ``retain_weight * CE`` on a retain batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import FORGET_WEIGHT, RETAIN_WEIGHT, Method, MethodConfig, setting
from .losses import batch_nll


@dataclass
class GradDiffConfig(MethodConfig):
    """Weights of the two terms (dimensionless)."""

    forget_weight: float = setting(1.0, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)


class GradDiff(Method):
    """Weighted sum of the forget-ascent and retain-descent terms, each step."""

    name = "grad_diff"
    streams = ("forget", "retain")
    config_class = GradDiffConfig

    def loss(self, model, batches, reference):
        if self.released and "retain" not in batches:
            forget_nll = batch_nll(model, batches["forget"])
            return -self.config.forget_weight * forget_nll, {"forget_nll": forget_nll.item()}
        if self.released:
            retain_nll = batch_nll(model, batches["retain"])
            return self.config.retain_weight * retain_nll, {"retain_nll": retain_nll.item()}
        forget_nll = batch_nll(model, batches["forget"])
        retain_nll = batch_nll(model, batches["retain"])
        loss = -self.config.forget_weight * forget_nll + self.config.retain_weight * retain_nll
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item()}
