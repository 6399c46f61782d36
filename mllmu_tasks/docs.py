"""Profile rows -> one lm-eval document per question.

Sets (released protocol, Liu et al. 2025, Sec. 4): ``forget`` = ``forget_X``;
``test`` = the ``Test_Set`` rows whose ID is in ``forget_X`` (transformed
image, paraphrased questions); ``retain`` = ``retain_{100-X}``;
``celebrity`` = ``Retain_Set`` (real celebrities: model utility).
Kinds: ``cls`` (multiple choice), ``gen`` (open generation), ``cloze``
(fill in the blank). Modalities: ``img`` (image+text: the
``Image_Textual`` questions, asked with the profile's image) and ``txt``
(text-only: the ``Pure_Text`` questions, asked with no image).
"""

from __future__ import annotations

import hashlib
import logging

import datasets

from . import prompts
from .images import bounded_bytes, checked_image_bytes, open_rgb, to_rgb
from .schema import (CELEBRITY_CONFIG, IMAGE_TEXTUAL, OPTION_KEYS, PURE_TEXT, TEST_CONFIG, SchemaError,
                     forget_config, retain_config)
from .sources import Source, image_root, load_config, profile_ids

log = logging.getLogger(__name__)

SETS = ("forget", "test", "retain", "celebrity")
KINDS = ("cls", "gen", "cloze")
MODALITIES = ("img", "txt")
MODALITY_NAMES = {"img": "image+text", "txt": "text-only"}

#: Columns of every document (``images`` is empty for text-only documents).
DOC_FEATURES = datasets.Features({
    "ID": datasets.Value("string"),
    "set": datasets.Value("string"),
    "config": datasets.Value("string"),
    "row": datasets.Value("int32"),
    "kind": datasets.Value("string"),
    "modality": datasets.Value("string"),
    "question_index": datasets.Value("int32"),
    "item_index": datasets.Value("int32"),
    "question": datasets.Value("string"),
    "option_keys": datasets.List(datasets.Value("string")),
    "options": datasets.List(datasets.Value("string")),
    "answer": datasets.Value("string"),
    "answer_text": datasets.Value("string"),
    "images": datasets.List(datasets.Image()),
    "image_index": datasets.Value("int32"),
})


def set_config(set_name: str, forget_ratio: int) -> str:
    """The hub configuration a set's rows come from.

    Raises:
        ValueError: unknown set name or forget ratio.
    """
    configs = {"forget": forget_config(forget_ratio), "test": TEST_CONFIG,
               "retain": retain_config(forget_ratio), "celebrity": CELEBRITY_CONFIG}
    if set_name not in configs:
        raise ValueError(f"unknown MLLMU set {set_name!r}; expected one of {SETS}")
    return configs[set_name]


def check_profile_ids(config: str, source: Source, forget_ratio: int) -> None:
    """IDs unique within ``config``; for the fictitious sets, no profile in both ``forget_X`` and ``retain_Y``.

    Raises:
        SchemaError: a repeated ID (its rows named), or profiles in both sets.
    """
    ids = profile_ids(config, source)
    first = {}
    for row, pid in enumerate(ids):
        if pid in first:
            raise SchemaError(f"ID {pid!r} again (first in row {first[pid]}): its questions would count twice",
                              config=config, row=row, field="ID", source=str(source), profile_id=pid)
        first[pid] = row
    if config in (forget_config(forget_ratio), retain_config(forget_ratio)):
        try:
            both = sorted(set(profile_ids(forget_config(forget_ratio), source)) &
                          set(profile_ids(retain_config(forget_ratio), source)))
        except FileNotFoundError:  # a copy holding only the set being scored (e.g. a forget set alone)
            both = []
        if both:
            raise SchemaError(f"profiles {both[:10]} are in both {forget_config(forget_ratio)} and "
                              f"{retain_config(forget_ratio)}", config=config, field="ID", source=str(source))


def test_image_index(profile_id: str, num_images: int) -> int:
    """Deterministic choice among a ``Test_Set`` row's ``images``: SHA-256 of the ID modulo their number.

    The released code chose one at random without a seed; this choice is the
    same on every run and machine, and is logged in each document's ``image_index``.
    """
    return int(hashlib.sha256(profile_id.encode("utf-8")).hexdigest(), 16) % num_images


def _question_items(row: dict, kind: str, modality: str, where: dict) -> list[tuple[int, dict]]:
    """``(item_index, question dict)`` of one row for a kind and modality, with schema checks.

    ``item_index`` is the position in the list the released code enumerates:
    the modality's own list for classification (``Image_Textual_Questions`` /
    ``Pure_Text_Questions``), the whole ``Generation_Task`` / ``Mask_Task``
    list for the other kinds (both types mixed).
    """
    if kind == "cls":
        field = "Classification_Task"
        task = row.get(field)
        if not isinstance(task, dict):
            raise SchemaError("missing classification questions", field=field, **where)
        sub = "Image_Textual_Questions" if modality == "img" else "Pure_Text_Questions"
        items = task.get(sub)
        if items is None:
            raise SchemaError("missing", field=f"{field}.{sub}", **where)
        return list(enumerate(items))
    field = "Generation_Task" if kind == "gen" else "Mask_Task"
    items = row.get(field)
    if items is None:
        raise SchemaError("missing", field=field, **where)
    wanted = IMAGE_TEXTUAL if modality == "img" else PURE_TEXT
    for i, item in enumerate(items):
        if item.get("Type") not in (IMAGE_TEXTUAL, PURE_TEXT):
            raise SchemaError(f"Type {item.get('Type')!r} is neither {IMAGE_TEXTUAL!r} nor {PURE_TEXT!r}",
                              field=f"{field}[{i}].Type", **where)
    return [(i, item) for i, item in enumerate(items) if item["Type"] == wanted]


def _question_fields(item: dict, kind: str, field: str, where: dict) -> dict:
    """Question, options and answer of one item, validated."""
    question = item.get("Question")
    if not question or not question.strip():
        raise SchemaError("empty question", field=f"{field}.Question", **where)
    if kind == "cls":
        options = item.get("Options") or {}
        # every key the row has, in its order (A-D, and E... where a copy has more: the released prompt
        # prints whatever keys Options holds); a key left empty (a null in a wider schema) is no option
        keys = [k for k in [*OPTION_KEYS, *(k for k in options if k not in OPTION_KEYS)]
                if options.get(k) not in (None, "")]
        if not keys:
            raise SchemaError("empty option list", field=f"{field}.Options", **where)
        answer = item.get("Correct_Answer")
        if answer not in keys:
            raise SchemaError(f"Correct_Answer {answer!r} is not one of the option keys {keys}",
                              field=f"{field}.Correct_Answer", **where)
        texts = [options[k] for k in keys]
        return {"question": question, "option_keys": keys, "options": texts,
                "answer": answer, "answer_text": options[answer]}
    truth = item.get("Ground_Truth")
    if truth is None or not str(truth).strip():
        raise SchemaError("empty ground truth", field=f"{field}.Ground_Truth", **where)
    if kind == "cloze" and prompts.CLOZE_BLANK not in question:
        raise SchemaError(f"cloze question has no blank {prompts.CLOZE_BLANK!r}", field=f"{field}.Question", **where)
    return {"question": question, "option_keys": [], "options": [], "answer": str(truth), "answer_text": str(truth)}


def _row_image(row: dict, config: str, row_index: int, source: Source) -> tuple[dict, int]:
    """The row's image cell (validated by decoding) and, for ``Test_Set``, the chosen index."""
    pid = row.get("ID")
    root = image_root(source, config)
    if config == TEST_CONFIG:
        images = row.get("images") or []
        if not images:
            raise SchemaError("missing images", config=config, row=row_index, field="images", profile_id=pid)
        index = test_image_index(pid, len(images))
        cell, field = images[index], f"images[{index}]"
    else:
        index, cell, field = -1, row.get("image"), "image"
    data = checked_image_bytes(cell, root=root, config=config, row=row_index, field=field, profile_id=pid)
    return {"bytes": bounded_bytes(data), "path": None}, index


def row_docs(row: dict, row_index: int, *, set_name: str, config: str, kind: str, modality: str,
             source: Source) -> list[dict]:
    """All documents of one profile row for a kind and modality.

    Raises:
        SchemaError: a missing task column, an empty option list, a
            ``Correct_Answer`` that is not an option key, an empty ground
            truth, a cloze question without ``__``, or (image+text only) a
            missing or corrupt image.
    """
    where = {"config": config, "row": row_index, "profile_id": row.get("ID"), "source": str(source)}
    items = _question_items(row, kind, modality, where)
    if not items:
        return []
    image, index = _row_image(row, config, row_index, source) if modality == "img" else (None, -1)
    field_base = {"cls": "Classification_Task", "gen": "Generation_Task", "cloze": "Mask_Task"}[kind]
    docs = []
    for q, (i, item) in enumerate(items):
        fields = _question_fields(item, kind, f"{field_base}[{i}]", where)
        docs.append({"ID": row["ID"], "set": set_name, "config": config, "row": row_index, "kind": kind,
                     "modality": MODALITY_NAMES[modality], "question_index": q, "item_index": i, **fields,
                     "images": [image] if image else [], "image_index": index})
    return docs


def build_docs(set_name: str, kind: str, modality: str, source: Source, forget_ratio: int) -> datasets.Dataset:
    """One document per question of a set, kind and modality (columns :data:`DOC_FEATURES`).

    Raises:
        ValueError: unknown set, kind, modality or forget ratio.
        SchemaError: bad rows (see :func:`row_docs`), or a ``Test_Set`` with
            no row of the forget set.
    """
    if kind not in KINDS or modality not in MODALITIES:
        raise ValueError(f"kind must be one of {KINDS} and modality one of {MODALITIES}, got {kind!r}, {modality!r}")
    config = set_config(set_name, forget_ratio)
    table = load_config(config, source)
    check_profile_ids(config, source, forget_ratio)
    keep = None
    if set_name == "test":
        keep = set(profile_ids(forget_config(forget_ratio), source))
        missing = sorted(keep - set(table["ID"]))
        if missing:
            raise SchemaError(f"the forget profiles {missing[:10]} have no row (their test questions would be "
                              f"skipped silently)", config=config, field="ID", source=str(source))
    docs = []
    for row_index, row in enumerate(table):
        if keep is None or row.get("ID") in keep:
            docs.extend(row_docs(row, row_index, set_name=set_name, config=config, kind=kind,
                                 modality=modality, source=source))
    if not docs:  # lm-eval cannot run a task without documents: say which questions are missing
        raise SchemaError(f"no {kind} question of modality {MODALITY_NAMES[modality]} in any row"
                          + (f" of the {forget_config(forget_ratio)} profiles" if set_name == "test" else ""),
                          config=config, source=str(source))
    if set_name == "test" and modality == "img":
        chosen = sorted({(d["ID"], d["image_index"]) for d in docs})
        log.info("MLLMU %s: Test_Set image chosen per profile (ID, index): %s", forget_config(forget_ratio), chosen)
    return datasets.Dataset.from_list(docs, features=DOC_FEATURES)


def doc_to_image(doc: dict) -> list:
    """lm-eval ``doc_to_image``: the document's images as a list of RGB ``PIL.Image`` (empty for text-only).

    Takes a document as lm-eval holds it (decoded ``PIL`` images) or as
    :func:`row_docs` returns it (checked ``{"bytes", "path"}`` cells).
    """
    return [open_rgb(img["bytes"]) if isinstance(img, dict) else to_rgb(img) for img in doc["images"]]


def has_image(doc: dict) -> bool:
    """Whether the document is an image+text question (its ``modality``; its images may be left out)."""
    return doc["modality"] == MODALITY_NAMES["img"]


def doc_to_body(doc: dict) -> str:
    """The released user body (:func:`mllmu_tasks.prompts.user_body`): ``<image>\n`` (image+text), question, instruction."""
    return prompts.user_body(doc["kind"], doc["question"], has_image(doc), doc["option_keys"], doc["options"])


def doc_to_released_prompt(doc: dict) -> str:
    """The released zero-shot prompt of a document (:func:`mllmu_tasks.prompts.released_prompt`)."""
    return prompts.released_prompt(doc["kind"], doc_to_body(doc), has_image(doc))


def doc_to_question(doc: dict) -> str:
    """Prompt of the likelihood-scored text variant: ``<image>\n`` (image+text) and the bare question."""
    return (prompts.IMAGE_PLACEHOLDER + "\n" if has_image(doc) else "") + doc["question"]


def doc_to_option_keys(doc: dict) -> list[str]:
    """Choices of the likelihood-scored letter variant: the option keys (``["A", "B", "C", "D"]``)."""
    return list(doc["option_keys"])


def doc_to_option_texts(doc: dict) -> list[str]:
    """Choices of the likelihood-scored text variant: the option texts."""
    return list(doc["options"])


def doc_to_answer_index(doc: dict) -> int:
    """Index of the correct option (lm-eval ``doc_to_target`` of multiple-choice tasks)."""
    return doc["option_keys"].index(doc["answer"])
