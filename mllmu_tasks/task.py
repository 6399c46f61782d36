"""The lm-eval task class behind every MLLMU leaf task.

Each leaf YAML names ``class: !function mllmu_tasks.task.MLLMUTask`` and its
``dataset_kwargs`` (``set``, ``kind``, ``modality``). The class:

- loads the documents from the source chosen by ``--metadata`` or the
  environment (:mod:`mllmu_tasks.sources`), and records the resolved
  ``source`` and ``forget_ratio`` in the task's metadata, which lm-eval
  writes into the results JSON (``configs.<task>.metadata``);
- renders zero-shot prompts with the released LLaVA wrapper
  (``USER: ...\\nASSISTANT:``) when no chat template is applied, and the bare
  prompt body as the user turn under ``--apply_chat_template``.
"""

from __future__ import annotations

from lm_eval.api.task import ConfigurableTask

from . import docs, prompts
from .sources import resolve_settings


class MLLMUTask(ConfigurableTask):
    """A zero-shot MLLMU-Bench task (one set x kind x modality)."""

    VERSION = 1.0

    def __init__(self, config: dict | None = None) -> None:
        """``config``: the leaf YAML as a dict (lm-eval passes its ``class`` key too, dropped here)."""
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"})

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        """Build the documents; ``dataset_kwargs`` = ``{"set", "kind", "modality"}``.

        Raises:
            ValueError, FileNotFoundError, SchemaError: see
                :func:`mllmu_tasks.docs.build_docs` and :mod:`mllmu_tasks.sources`.
        """
        metadata = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        settings = resolve_settings(metadata)
        metadata.update(source=str(settings.source), forget_ratio=settings.forget_ratio)
        self.config.metadata = metadata
        spec = dict(self.config.dataset_kwargs or {})
        self.dataset = {"test": docs.build_docs(spec["set"], spec["kind"], spec["modality"], settings.source,
                                                settings.forget_ratio)}

    def fewshot_context(self, doc: dict, num_fewshot: int, system_instruction: str | None = None,
                        apply_chat_template: bool = False, fewshot_as_multiturn: bool = False,
                        chat_template=None, gen_prefix: str | None = None) -> str:
        """Zero-shot prompt: released wrapper without a chat template, the model's template with one.

        Raises:
            ValueError: ``num_fewshot`` > 0 (lm-eval's sampler cannot show
                demonstration images; these tasks are zero-shot).
        """
        if num_fewshot:
            raise ValueError(f"{self.config.task} is a zero-shot MLLMU task; run it with --num_fewshot 0")
        if apply_chat_template and chat_template is not None:
            return super().fewshot_context(doc, 0, system_instruction, apply_chat_template,
                                           fewshot_as_multiturn, chat_template, gen_prefix)
        body = docs.doc_to_body(doc)
        if system_instruction:
            body = f"{system_instruction}\n{body}"
        return prompts.wrap_released(body)
