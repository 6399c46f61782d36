"""Which released model family's rules a run follows: ``llava`` or ``idefics2``.

The released evaluation recognises two families by the hub ID
(``llava...`` and ``HuggingFaceM4...``); they differ in the number of cloze
demonstration profiles (2 vs 1) and in the new-token limit of text-only
classification (50 vs 5). Here the family is ``--metadata
'{"model_family": ...}'`` or, when absent, the checkpoint's ``model_type``
(``config.json``, read without loading weights); any other model follows the
LLaVA rules, with a warning naming the assumption.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from .sources import MODEL_FAMILIES as FAMILIES

log = logging.getLogger(__name__)
_warned: set[str] = set()

#: ``model_type`` values that are the LLaVA family of the released code (hub IDs starting with ``llava``).
LLAVA_MODEL_TYPES = ("llava", "llava_next", "llava_onevision", "llava_next_video")


@functools.lru_cache(maxsize=16)
def checkpoint_model_type(pretrained: str, revision: str = "main") -> str | None:
    """``model_type`` of a local checkpoint directory or a hub ID; None when it cannot be read.

    Cached: every task of a run asks for the same checkpoint.
    """
    config = Path(pretrained) / "config.json"
    if config.is_file():
        try:
            return json.loads(config.read_text()).get("model_type")
        except (OSError, ValueError):
            return None
    try:
        from transformers import AutoConfig
        return AutoConfig.from_pretrained(pretrained, revision=revision).model_type
    except Exception:  # noqa: BLE001 - offline, unknown or remote-code model: the caller warns
        return None


def resolve_model_family(metadata: dict) -> str:
    """The family from ``metadata["model_family"]``, else from ``metadata["pretrained"]``'s ``model_type``.

    lm-eval merges ``--model_args`` into the tasks' metadata, so
    ``pretrained`` is the checkpoint being scored.

    ``model_family`` itself is validated by :func:`mllmu_tasks.sources.resolve_settings`.
    """
    family = metadata.get("model_family")
    if family in FAMILIES:
        return family
    pretrained = metadata.get("pretrained")
    model_type = checkpoint_model_type(pretrained, metadata.get("revision") or "main") \
        if isinstance(pretrained, str) else None
    if model_type == "idefics2":
        return "idefics2"
    if model_type in LLAVA_MODEL_TYPES:
        return "llava"
    name = pretrained if isinstance(pretrained, str) else "a model given without a path"
    if name not in _warned:  # once per model, not once per task
        _warned.add(name)
        log.warning("MLLMU: model family assumed 'llava' for %s (model_type %s): the released rules exist for "
                    "llava and idefics2 only; set --metadata '{\"model_family\": ...}' to choose", name, model_type)
    return "llava"
