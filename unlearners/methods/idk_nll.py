"""IdkNLL: teach the model to refuse on the forget set.

Loss: ``forget_weight * CE(refusal | forget question) + retain_weight * CE(retain)``,
the refusal answers from :mod:`unlearners.methods.refusals` (TOFU's
"I don't know" fine-tuning, Maini et al. 2024, Sec. 4; the IdkNLL baseline of
open-unlearning, Dorna et al. 2025). Defaults: both weights 1.
"""

from __future__ import annotations

from .base import ForgetPlusRetain, RetainTermConfig
from .losses import batch_nll
from .refusals import with_refusals


class IdkNLL(ForgetPlusRetain):
    """Cross-entropy on refusals to the forget questions, plus the retain term."""

    name = "idk_nll"
    config_class = RetainTermConfig

    def prepare_streams(self, streams):
        """The forget stream's answers replaced by refusals (stream ``forget_idk``)."""
        rest = {name: examples for name, examples in streams.items() if name != "forget"}
        return {"forget_idk": with_refusals(streams["forget"]), **rest}

    def forget_term(self, model, batches, reference):
        nll = batch_nll(model, batches["forget_idk"])
        return nll, {"forget_idk_nll": nll.item()}
