"""Registry of training methods: one file per method, one line here."""

from __future__ import annotations

from .base import Method, MethodConfig
from .finetune import FineTune
from .ga import GA
from .grad_diff import GradDiff
from .idk_dpo import IdkDPO
from .idk_nll import IdkNLL
from .kl_min import KLMin
from .manu import MANU
from .mmunlearner import MMUnlearner
from .npo import NPO
from .rmu import RMU
from .satimp import SatImp
from .simnpo import SimNPO
from .undial import UNDIAL
from .wga import WGA

METHODS: dict[str, type[Method]] = {m.name: m for m in (FineTune, GA, GradDiff, KLMin, NPO, SimNPO, IdkNLL, IdkDPO,
                                                        WGA, SatImp, UNDIAL, RMU, MMUnlearner,
                                                        MANU)}


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "Method", "MethodConfig", "get_method"]
