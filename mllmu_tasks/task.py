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

import random

from lm_eval.api.task import ConfigurableTask

from . import docs, prompts
from .sources import SettingsError, resolve_settings

#: Released few-shot defaults (demonstration profiles per prompt), by model family; the count is always explicit.
RELEASED_DEMO_PROFILES = {"idefics2": 1, "llava": 1}
DEFAULT_FEWSHOT_SEED = 1234


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


class MLLMUFewShotTask(MLLMUTask):
    """The released few-shot protocol, seeded: demonstration profiles with their own images.

    ``--metadata`` keys: ``num_demo_profiles`` (N, default 1; the released
    code used 1 for Idefics2 and 1 or 2 for LLaVA: :data:`RELEASED_DEMO_PROFILES`)
    and ``fewshot_seed`` (default 1234). N profiles are drawn with
    ``random.Random(f"{seed}-{set}-{forget_ratio}")`` from the evaluated set's
    profiles; each contributes all its questions of the task (kind and
    modality) as answered turns, its image shown once before its first
    question, and none of its questions is scored. With images, N + 1 must not
    exceed the backend's ``max_images`` (read from ``--model_args``). The
    chosen IDs are recorded as ``demo_profiles`` in the results JSON.
    """

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        """Build the documents, draw the demonstration profiles, drop their questions from scoring.

        Raises:
            SettingsError: N < 1, N not below the set's profile count, or N + 1 > ``max_images``.
        """
        super().download(dataset_kwargs, **kwargs)
        meta = self.config.metadata
        n, seed = int(meta.get("num_demo_profiles", 1)), int(meta.get("fewshot_seed", DEFAULT_FEWSHOT_SEED))
        table = self.dataset["test"]
        ids = sorted(set(table["ID"]))
        if not 1 <= n < len(ids):
            raise SettingsError(f"{self.config.task}: num_demo_profiles must be between 1 and {len(ids) - 1} "
                                f"(the set has {len(ids)} profiles), got {n}")
        with_images = bool(len(table) and table[0]["images"])
        max_images = meta.get("max_images")
        if with_images and max_images is not None and n + 1 > int(max_images):
            raise SettingsError(f"{self.config.task}: {n} demonstration profiles + the question need {n + 1} images "
                                f"but the backend takes max_images={max_images}")
        spec = self.config.dataset_kwargs or {}
        demo_ids = sorted(random.Random(f"{seed}-{spec.get('set')}-{meta['forget_ratio']}").sample(ids, n))
        self._demos = [[d for d in table if d["ID"] == pid] for pid in demo_ids]
        self.dataset = {"test": table.filter(lambda d: d["ID"] not in demo_ids)}
        meta.update(num_demo_profiles=n, fewshot_seed=seed, demo_profiles=demo_ids)

    def doc_to_image(self, doc, doc_to_image=None) -> list:
        """Each demonstration profile's image, in order, then the question's own image."""
        demos = [docs.doc_to_image(profile[0])[0] for profile in self._demos if profile[0]["images"]]
        return demos + docs.doc_to_image(doc)

    def _turns(self, doc: dict) -> list[tuple[str, str]]:
        """``(role, text)`` turns: every demonstration question answered, then the question asked."""
        turns = []
        for profile in self._demos:
            for i, demo in enumerate(profile):
                body = docs.doc_to_body(demo if i == 0 else {**demo, "images": []})
                turns += [("user", body), ("assistant", demo["answer"])]
        return turns + [("user", docs.doc_to_body(doc))]

    def fewshot_context(self, doc: dict, num_fewshot: int, system_instruction: str | None = None,
                        apply_chat_template: bool = False, fewshot_as_multiturn: bool = False,
                        chat_template=None, gen_prefix: str | None = None) -> str:
        """Demonstrations as earlier turns: the released ``USER: ...\nASSISTANT: ...`` layout, or the chat template.

        Raises:
            ValueError: ``num_fewshot`` > 0 (the demonstrations come from ``num_demo_profiles``).
        """
        if num_fewshot:
            raise ValueError(f"{self.config.task}: set the demonstrations with --metadata num_demo_profiles, "
                             f"not --num_fewshot")
        turns = self._turns(doc)
        if apply_chat_template and chat_template is not None:
            messages = ([{"role": "system", "content": system_instruction}] if system_instruction else []) + \
                [{"role": role, "content": text} for role, text in turns]
            return chat_template(messages)
        text = "".join(f"USER: {t}\n" if role == "user" else f"ASSISTANT: {t}\n" for role, t in turns[:-1])
        prefix = f"{system_instruction}\n" if system_instruction else ""
        return prefix + text + prompts.wrap_released(turns[-1][1])
