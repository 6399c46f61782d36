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

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

#: ``reference(batch) -> logits`` (batch, seq, vocab) of the frozen reference model, without gradients.
Reference = Callable[[dict], torch.Tensor]


@dataclass
class MethodConfig:
    """Hyper-parameters of a method (none in the base)."""


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

    def loss(self, model, batches: dict[str, dict], reference: Reference | None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(scalar loss to minimise, {component name: value for logging})``."""
        raise NotImplementedError
