"""The released few-shot protocol: which profiles are demonstrations, what they show, what is not scored.

Source: the authors' ``eval.py`` (``RELEASED-PROTOCOL.md`` sections 2.4, 2.6,
3.3, 6 and 8). Classification and cloze are few-shot, generation zero-shot:

- **Draw.** ``k`` demonstration profiles (:data:`RELEASED_DEMO_PROFILES`:
  classification 1; cloze 2 for LLaVA, 1 for Idefics2) from the evaluated
  set's IDs (the forget set's for the test set). The released draw is an
  unseeded ``random.sample``; here it is
  ``random.Random(f"{seed}-{set}-{kind}-{forget_ratio}").sample(sorted(ids), k)``
  (:func:`draw_demo_profiles`), one draw per set and kind shared by the
  image+text and text-only tasks, as the released code draws once per task
  function for both modalities.
- **Rows.** The demonstrations are the drawn profiles' ``Full_Set`` rows,
  in that file's order, their original questions and image (also for the
  test set). A drawn ID that ``Full_Set`` lacks adds nothing and excludes nothing.
- **Blocks.** Every question of the task's kind and modality in those rows
  becomes one block (:func:`mllmu_tasks.prompts.classification_demo`,
  :func:`~mllmu_tasks.prompts.cloze_demo`); every image+text block brings its
  own copy of the demonstration image.
- **Not scored.** In the evaluated rows with a demonstration ID, the
  question at the same position (``item_index``) as a demonstration
  question of the same modality is skipped.
- **Celebrity classification** (ill-defined in the released code, which
  draws, skips the demonstration questions and passes the demonstration
  images with no text and no ``<image>`` placeholder): the draw and the
  skipping follow the released rule, the prompt is the released zero-shot
  prompt, and no demonstration image is passed (:data:`CELEBRITY_CLS_NOTE`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import prompts
from .schema import FULL_CONFIG, SchemaError

#: Demonstration profiles per prompt, by (kind, model family) (released eval.py since 2025-03-12).
RELEASED_DEMO_PROFILES = {("cls", "llava"): 1, ("cls", "idefics2"): 1,
                          ("cloze", "llava"): 2, ("cloze", "idefics2"): 1}
FEWSHOT_KINDS = ("cls", "cloze")
DEFAULT_FEWSHOT_SEED = 1234
CELEBRITY_CLS_NOTE = ("celebrity classification: the released code shows no demonstration text here but still "
                      "passes the demonstration images with no <image> placeholder; this suite passes none "
                      "(zero-shot prompt) and skips the demonstration profile's questions as released")


@dataclass
class Demonstrations:
    """The demonstrations of one task: prompt prefix, images, and the questions not scored.

    ``prefix``: the released demonstration text (``""`` when none is shown);
    ``turns``: ``(user body, answer)`` per demonstration question, for chat
    templates; ``images``: one demonstration image per image+text block
    (``PIL`` RGB); ``skip``: ``{profile ID: {item_index, ...}}``.
    """

    profiles: list[str] = field(default_factory=list)
    prefix: str = ""
    turns: list[tuple[str, str]] = field(default_factory=list)
    images: list = field(default_factory=list)
    skip: dict[str, set[int]] = field(default_factory=dict)

    def scored(self, doc: dict) -> bool:
        """Whether a document of the evaluated set is scored (not a demonstration's position)."""
        return doc["item_index"] not in self.skip.get(doc["ID"], ())


def demo_count(kind: str, family: str) -> int:
    """Released demonstration profiles per prompt for ``kind`` and ``family`` (0 for generation).

    Raises:
        ValueError: unknown family.
    """
    if kind not in FEWSHOT_KINDS:
        return 0
    if (kind, family) not in RELEASED_DEMO_PROFILES:
        raise ValueError(f"unknown model family {family!r}; expected llava or idefics2")
    return RELEASED_DEMO_PROFILES[(kind, family)]


def draw_demo_profiles(ids: list[str], k: int, seed: int, set_name: str, kind: str, forget_ratio: int) -> list[str]:
    """``k`` IDs drawn from ``ids`` (all of them when fewer): the seeded draw described in the module doc."""
    pool = sorted(set(ids))
    return random.Random(f"{seed}-{set_name}-{kind}-{forget_ratio}").sample(pool, min(k, len(pool)))


def _demo_block(doc: dict, image: bool, where: dict) -> str:
    """The released demonstration text of one ``Full_Set`` document."""
    if doc["kind"] == "cls":
        options = dict(zip(doc["option_keys"], doc["options"]))
        missing = [k for k in prompts.DEMO_OPTION_KEYS if k not in options]
        if missing:
            raise SchemaError(f"a demonstration question needs options A-D (the released layout prints all four); "
                              f"missing {missing}", field="Classification_Task.Options", **where)
        return prompts.classification_demo(doc["question"], options, doc["answer"], image)
    return prompts.cloze_demo(doc["question"], doc["answer"], image)


def build_demonstrations(full_docs: list[dict], profiles: list[str], *, show_text: bool,
                         pass_images: bool) -> Demonstrations:
    """Demonstrations from the drawn profiles' ``Full_Set`` documents (one task's kind and modality).

    ``full_docs``: documents of ``Full_Set`` (:func:`mllmu_tasks.docs.row_docs`)
    for the drawn IDs, in that file's row order; ``show_text``: write the
    demonstration blocks (False: celebrity classification);
    ``pass_images``: pass the demonstration images (image+text tasks that show text).

    Raises:
        SchemaError: a classification demonstration lacks one of the options A-D.
    """
    from .docs import doc_to_body, doc_to_image, has_image

    demos = Demonstrations(profiles=list(profiles))
    for doc in full_docs:
        demos.skip.setdefault(doc["ID"], set()).add(doc["item_index"])
        if not show_text:
            continue
        image = has_image(doc)
        where = {"config": FULL_CONFIG, "row": doc["row"], "profile_id": doc["ID"]}
        demos.prefix += _demo_block(doc, image, where)
        demos.turns.append((doc_to_body(doc), doc["answer"]))
        if image and pass_images:
            demos.images += doc_to_image(doc)
    return demos
