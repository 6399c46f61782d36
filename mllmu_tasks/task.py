"""The lm-eval task classes behind every MLLMU leaf task.

Each leaf YAML names its class and its ``dataset_kwargs`` (``set``,
``kind``, ``modality``):

- :class:`MLLMUTask` (``mllmu_*``, the default): the paper protocol, as the
  released ``eval.py`` runs it: classification and cloze few-shot with the
  released demonstrations (:mod:`mllmu_tasks.fewshot`), their profiles'
  questions not scored, generation zero-shot; the released prompt strings
  (:mod:`mllmu_tasks.prompts`); greedy, 50 new tokens (5 for Idefics2
  text-only classification), the answer cut at the model's own first
  ``ASSISTANT:`` and stripped (:func:`mllmu_tasks.metrics.process_results`).
- :class:`MLLMUZeroShotTask` (``mllmu-zs_*`` and the likelihood tasks
  ``mllmu-ll_*``): the same strings, zero-shot, every question scored.

Both record in the task's metadata (written by lm-eval into the results
JSON, ``configs.<task>.metadata``): ``source``, ``forget_ratio``,
``model_family``, ``protocol``, ``fewshot_seed``, ``demo_profiles``,
``demo_questions`` and ``scored_questions``. Without a chat template the
prompt is the released string; with ``--apply_chat_template`` (a variant,
not the paper protocol) each demonstration becomes a user/assistant pair and
the question the last user turn, rendered by the model's own template.
"""

from __future__ import annotations

import logging

from lm_eval.api.task import ConfigurableTask

from . import docs, fewshot
from .family import resolve_model_family
from .schema import FULL_CONFIG, forget_config
from .sources import SettingsError, load_config, profile_ids, resolve_settings

log = logging.getLogger(__name__)

#: New-token limit of Idefics2 text-only classification in the released code (every other prompt: 50).
IDEFICS2_TEXT_CLS_MAX_TOKENS = 5


class MLLMUTask(ConfigurableTask):
    """One MLLMU-Bench leaf task (set x kind x modality) under the paper protocol (released few-shot)."""

    VERSION = 2.0
    #: ``released``: classification and cloze few-shot as released; ``zero-shot``: no demonstrations.
    PROTOCOL = "released"

    def __init__(self, config: dict | None = None) -> None:
        """``config``: the leaf YAML as a dict (lm-eval passes its ``class`` key too, dropped here)."""
        self._unscored = False  # set by download(): every profile is a demonstration, nothing to score
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"})
        if self._unscored:
            # lm-eval checks one document at construction; only then is the task emptied
            self.dataset["test"] = self.task_docs = self.dataset["test"].select([])

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        """Build the documents and the demonstrations; ``dataset_kwargs`` = ``{"set", "kind", "modality"}``.

        Raises:
            ValueError, FileNotFoundError, SchemaError, SettingsError: see
                :func:`mllmu_tasks.docs.build_docs`, :mod:`mllmu_tasks.sources`
                and :func:`mllmu_tasks.family.resolve_model_family`.
            SettingsError: the backend's ``max_images`` (from ``--model_args``)
                is below the images a few-shot prompt shows.
        """
        # a copy: each task records its own demonstrations
        metadata = dict(self.config.metadata) if isinstance(self.config.metadata, dict) else {}
        settings = resolve_settings(metadata)
        family = resolve_model_family(metadata)
        spec = dict(self.config.dataset_kwargs or {})
        set_name, kind, modality = spec["set"], spec["kind"], spec["modality"]
        seed = int(metadata.get("fewshot_seed", fewshot.DEFAULT_FEWSHOT_SEED))
        table = full_table = docs.build_docs(set_name, kind, modality, settings.source, settings.forget_ratio)
        self._demos = fewshot.Demonstrations()
        if self.PROTOCOL == "released" and kind in fewshot.FEWSHOT_KINDS:
            self._demos = self._released_demonstrations(set_name, kind, modality, family, seed, settings,
                                                        metadata.get("fewshot_profiles"))
            table = table.filter(self._demos.scored) if self._demos.skip else table
        max_images = metadata.get("max_images")
        if self._demos.images and max_images is not None and len(self._demos.images) + 1 > int(max_images):
            raise SettingsError(f"{self.config.task}: the released few-shot prompt shows {len(self._demos.images) + 1} "
                                f"images (one per demonstration question, then the question's) but the backend takes "
                                f"max_images={max_images}; raise it in --model_args")
        if family == "idefics2" and kind == "cls" and modality == "txt":
            self.config.generation_kwargs = {**(self.config.generation_kwargs or {}),
                                             "max_gen_toks": IDEFICS2_TEXT_CLS_MAX_TOKENS}
        metadata.update(source=str(settings.source), forget_ratio=settings.forget_ratio, model_family=family,
                        protocol=self.PROTOCOL, fewshot_seed=seed, demo_profiles=self._demos.profiles,
                        demo_questions=len(self._demos.turns), scored_questions=len(table))
        self.config.metadata = metadata
        if not len(table):
            log.warning("MLLMU %s: no scored questions (every profile of the set is a demonstration profile: %s); "
                        "the task reports no score", self.config.task, self._demos.profiles)
            self._unscored, table = True, full_table
        self.dataset = {"test": table}

    def build_all_requests(self, *args, **kwargs) -> None:
        """lm-eval's request building; a task with no scored question builds none (lm-eval would raise)."""
        if self._unscored:
            self._instances = []
            return
        super().build_all_requests(*args, **kwargs)

    def apply_filters(self):
        """lm-eval's filters; nothing to filter in a task with no scored question.

        lm-eval 0.4.13's evaluator then reads ``instances[0].filtered_resps``
        (it assumes every task has a request): such a task now shows one
        placeholder with no responses, so no metric is computed and the
        results JSON holds no score for it (and its groups average the others).
        """
        if not self._unscored:
            return super().apply_filters()
        self._instances = [_NoRequest()]
        return None

    def _released_demonstrations(self, set_name: str, kind: str, modality: str, family: str, seed: int,
                                 settings, chosen: dict | None = None) -> fewshot.Demonstrations:
        """Draw the demonstration profiles and build their blocks from ``Full_Set`` (:mod:`mllmu_tasks.fewshot`).

        ``chosen``: ``--metadata fewshot_profiles`` (``{"<set>_<kind>": [IDs]}``), replacing the draw where given.

        Raises:
            SettingsError: a chosen ID is not one of the set's IDs (the forget set's for the test set).
        """
        pool_config = forget_config(settings.forget_ratio) if set_name == "test" else \
            docs.set_config(set_name, settings.forget_ratio)
        id_pool = profile_ids(pool_config, settings.source)
        drawn = fewshot.draw_demo_profiles(id_pool, fewshot.demo_count(kind, family), seed, set_name, kind,
                                           settings.forget_ratio)
        if chosen and f"{set_name}_{kind}" in chosen:
            drawn = [str(pid) for pid in chosen[f"{set_name}_{kind}"]]
            unknown = sorted(set(drawn) - set(id_pool))
            if unknown:
                raise SettingsError(f"--metadata fewshot_profiles['{set_name}_{kind}']: {unknown} are not IDs of "
                                    f"{pool_config}, where the released code draws the demonstrations from")
        full_docs = []
        for row_index, row in enumerate(load_config(FULL_CONFIG, settings.source)):
            if row.get("ID") in drawn:
                full_docs += docs.row_docs(row, row_index, set_name="fewshot", config=FULL_CONFIG, kind=kind,
                                           modality=modality, source=settings.source)
        celebrity_cls = set_name == "celebrity" and kind == "cls"
        if celebrity_cls and full_docs:
            log.warning("MLLMU %s: %s", self.config.task, fewshot.CELEBRITY_CLS_NOTE)
        return fewshot.build_demonstrations(full_docs, drawn, show_text=not celebrity_cls,
                                            pass_images=modality == "img")

    def doc_to_image(self, doc, doc_to_image=None) -> list:
        """The demonstration images (one per image+text demonstration question), then the question's own."""
        return self._demos.images + docs.doc_to_image(doc) if docs.has_image(doc) else []

    def fewshot_context(self, doc: dict, num_fewshot: int, system_instruction: str | None = None,
                        apply_chat_template: bool = False, fewshot_as_multiturn: bool = False,
                        chat_template=None, gen_prefix: str | None = None) -> str:
        """The released prompt (demonstrations + target), or the same turns through the model's chat template.

        Raises:
            ValueError: ``num_fewshot`` > 0 (the demonstrations are the released
                protocol's own, not lm-eval's sampler, which cannot show their images).
        """
        if num_fewshot:
            raise ValueError(f"{self.config.task}: the MLLMU tasks build their own demonstrations (the released "
                             f"few-shot protocol); run with --num_fewshot 0 (or leave it out)")
        if apply_chat_template and chat_template is not None:
            messages = [{"role": "system", "content": system_instruction}] if system_instruction else []
            for body, answer in self._demos.turns:
                messages += [{"role": "user", "content": body}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": docs.doc_to_body(doc)})
            return chat_template(messages, add_generation_prompt=True)
        prefix = f"{system_instruction}\n" if system_instruction else ""
        return prefix + self._demos.prefix + docs.doc_to_released_prompt(doc)


class _NoRequest:
    """Stands for the requests of a task with no scored question: nothing to filter, nothing to score."""

    doc_id, idx, filtered_resps = -1, 0, {}


class MLLMUZeroShotTask(MLLMUTask):
    """The same released strings, zero-shot: no demonstrations, every question scored (``mllmu-zs_*``)."""

    PROTOCOL = "zero-shot"

