"""What every method is: a config dataclass and a loss over named batches.

A method names the data streams it trains on (``train`` for fine-tuning,
``forget`` and optionally ``retain`` for unlearning) and whether it needs a
frozen reference model; the trainer calls
``method.loss(model, batches, reference)`` and knows nothing else about it.
Under ``--protocol released`` the labels cover every non-pad token and
GradDiff/KL_Min receive one set per batch (``{"forget": ...}`` or
``{"retain": ...}``): :mod:`unlearners.released`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch

#: ``reference(batch) -> logits`` (batch, seq, vocab) of the frozen reference model, without gradients
#: (:class:`unlearners.model.FrozenReference`, which also gives ``reference.hidden_states(batch)``).
Reference = Callable[[dict], torch.Tensor]


@dataclass
class MethodConfig:
    """Hyper-parameters of a method (none in the base)."""


#: help texts of the forget and retain term weights that several methods share
FORGET_WEIGHT = "weight of the forget term (dimensionless; 0: off)"
RETAIN_WEIGHT = "weight of the retain set's answer cross-entropy (dimensionless; 0: off)"


def setting(default, help: str):
    """A :class:`MethodConfig` field with its ``mllmu-unlearn --help`` text (``HfArgumentParser`` reads
    ``metadata["help"]``)."""
    return field(default=default, metadata={"help": help})


class Method:
    """Base class: subclasses set the class attributes and implement :meth:`loss`.

    Attributes:
        name: registry name (``mllmu-unlearn --method NAME``).
        streams: data streams, the first sets the epoch length.
        config_class: the method's :class:`MethodConfig` subclass.
        needs_reference: whether :meth:`loss` uses the frozen reference model.
    """

    name: ClassVar[str]
    streams: ClassVar[tuple[str, ...]]
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    needs_reference: ClassVar[bool] = False
    #: an edit, not training: :meth:`prepare` changes the model and no optimiser step follows (MANU)
    training_free: ClassVar[bool] = False
    #: streams whose item i goes with the first stream's item i (same length; e.g. a refusal per forget question)
    aligned_streams: ClassVar[tuple[str, ...]] = ()
    #: ``--protocol released`` (set by :func:`unlearners.api.run`): the released scripts' loss forms.
    released: bool = False

    def __init__(self, config: MethodConfig | None = None, protocol: str = "corrected"):
        """``protocol``: ``corrected`` (answer-only losses, paired batches) or ``released``
        (:mod:`unlearners.released`: the authors' scripts' losses; GradDiff/KL_Min see one set per batch)."""
        self.config = config if config is not None else self.config_class()
        self.released = protocol == "released"

    def data_streams(self) -> tuple[str, ...]:
        """The streams this configured method trains on (default :attr:`streams`)."""
        return self.streams

    def prepare_streams(self, streams: dict[str, list]) -> dict[str, list]:
        """The training streams from the loaded ones (``{stream: [Example]}``, :meth:`data_streams`): as they are
        by default; a method may derive streams (refusal answers) here."""
        return streams

    def prepare(self, model, streams: dict[str, list], collator, batch_size: int, device) -> None:
        """Work done once before training, with the training's own batches (a saliency mask); nothing by default.

        ``streams``: the training streams; ``collator``: the training collator (its ``encode(examples)`` gives one
        stream's batch); ``batch_size``: per device; ``device``: where the model trains.
        """

    def card_notes(self) -> dict:
        """Figures this method adds to the model card (e.g. a mask's size); none by default."""
        return {}

    def restrict_trainable(self, model) -> None:
        """Freeze parameters this method must not change (after LoRA / ``freeze_parts``); nothing by default."""

    def loss(self, model, batches: dict[str, dict], reference: Reference | None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(scalar loss to minimise, {component name: value for logging})``."""
        raise NotImplementedError


@dataclass
class RetainTermConfig(MethodConfig):
    """Weights of a forget term and of the retain set's answer cross-entropy (dimensionless; 0 turns a term off)."""

    forget_weight: float = setting(1.0, FORGET_WEIGHT)
    retain_weight: float = setting(1.0, RETAIN_WEIGHT)


class ForgetPlusRetain(Method):
    """A method whose loss is ``forget_weight * forget_term + retain_weight * CE(retain)``.

    The shape of open-unlearning's GradDiff-derived trainers (``gamma`` and
    ``alpha`` there). Subclasses implement :meth:`forget_term` only; the retain
    stream is loaded only when ``retain_weight`` > 0.
    """

    streams = ("forget", "retain")
    config_class = RetainTermConfig

    def data_streams(self) -> tuple[str, ...]:
        """The first stream (the forget data) alone when the retain term is off."""
        return self.streams if self.config.retain_weight > 0 else self.streams[:1]

    def forget_term(self, model, batches: dict[str, dict], reference: Reference | None
                    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(scalar forget term, {component: value})``."""
        raise NotImplementedError

    def loss(self, model, batches, reference):
        from .losses import batch_nll

        term, parts = self.forget_term(model, batches, reference)
        loss = self.config.forget_weight * term
        if self.config.retain_weight > 0:
            retain_nll = batch_nll(model, batches["retain"])
            loss = loss + self.config.retain_weight * retain_nll
            parts["retain_nll"] = retain_nll.item()
        return loss, parts
