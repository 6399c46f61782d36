"""Readers of the fine-tuning data (``ft_Data``) and of forget/retain splits.

``ft_Data`` rows are ``{image, metadata}`` where ``metadata`` is a JSON string
holding a list of ``{ID, Question, Answer}`` for one profile. The authors'
code snapshot stores the same pairs as JSON Lines, one profile per line,
``{"ID": "001", "metadata": [...]}`` (the list itself, not a string); both
forms are read here. A splits file is JSON ``{"forget_5": [IDs], ...,
"retain_95": [IDs], ...}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .sources import Source, load_config
from .schema import FT_CONFIG, FORGET_RATIOS, SchemaError, check_forget_ratio, forget_config, retain_config


@dataclass(frozen=True)
class FTPair:
    """One fine-tuning question/answer pair of a profile.

    Attributes:
        profile_id: three-digit profile ID, e.g. ``"001"``.
        question, answer: the texts.
        row: row (or line, 0-based) of the profile in its file.
    """

    profile_id: str
    question: str
    answer: str
    row: int


def parse_metadata(metadata, *, row: int, config: str = FT_CONFIG, source: str | None = None) -> list[FTPair]:
    """Pairs of one ``ft_Data`` row from its ``metadata`` (a JSON string or an already-parsed list).

    Raises:
        SchemaError: invalid JSON, not a non-empty list, an item without
            ``ID``/``Question``/``Answer``, or items of different profiles;
            the message names config, row and field.
    """
    where = {"config": config, "row": row, "source": source}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError as err:
            raise SchemaError(f"not valid JSON ({err})", field="metadata", **where) from err
    if not isinstance(metadata, list) or not metadata:
        raise SchemaError("expected a non-empty JSON list of {ID, Question, Answer}", field="metadata", **where)
    pairs = []
    for i, item in enumerate(metadata):
        missing = [k for k in ("ID", "Question", "Answer") if not isinstance(item, dict) or not item.get(k)]
        if missing:
            raise SchemaError(f"missing {missing}", field=f"metadata[{i}]", **where)
        if not isinstance(item["ID"], str):  # 1 would be read as "1", never matching "001": a profile lost
            raise SchemaError(f"ID {item['ID']!r} is a {type(item['ID']).__name__}; MLLMU IDs are strings such as "
                              f"'001'", field=f"metadata[{i}].ID", **where)
        pairs.append(FTPair(item["ID"], item["Question"], item["Answer"], row))
    ids = {p.profile_id for p in pairs}
    if len(ids) != 1:
        raise SchemaError(f"pairs of several profiles {sorted(ids)} in one row", field="metadata", **where)
    return pairs


@dataclass(frozen=True)
class FTProfile:
    """One ``ft_Data`` row: a profile's pairs and its undecoded image cell ``{"bytes", "path"}``."""

    profile_id: str
    pairs: list[FTPair]
    image: dict | None
    row: int


def load_ft_profiles(source: Source) -> list[FTProfile]:
    """Every profile of the ``ft_Data`` configuration of a source (hub, local mirror or mini).

    Raises:
        SchemaError: an evaluation configuration's columns where ``ft_Data``
            was expected, a bad ``metadata``, a non-string ID, or a profile in
            two rows (config, row and field named).
    """
    table = load_config(FT_CONFIG, source)
    profiles, seen = [], {}
    for row, record in enumerate(table):
        pairs = parse_metadata(record["metadata"], row=row, source=str(source))
        pid = pairs[0].profile_id
        if pid in seen:  # its pairs would be trained twice
            raise SchemaError(f"profile {pid!r} again (first in row {seen[pid]})", config=FT_CONFIG, row=row,
                              field="metadata", source=str(source), profile_id=pid)
        seen[pid] = row
        profiles.append(FTProfile(pid, pairs, record.get("image"), row))
    return profiles


def read_ft_jsonl(path: str | Path) -> list[list[FTPair]]:
    """Pairs per profile from the JSON Lines form, in file order.

    Raises:
        SchemaError: a line that is not JSON, or a bad ``metadata`` (names the file and line).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    profiles = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise SchemaError(f"not valid JSON ({err})", config=FT_CONFIG, row=row, source=str(path)) from err
        if not isinstance(record, dict) or "metadata" not in record:
            found = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise SchemaError(f"expected the ft_Data schema with a 'metadata' field, found {found}",
                              config=FT_CONFIG, row=row, field="metadata", source=str(path))
        profiles.append(parse_metadata(record["metadata"], row=row, source=str(path)))
    return profiles


def read_splits(path: str | Path) -> dict[str, list[str]]:
    """A splits file: ``{"forget_X": [IDs], "retain_Y": [IDs]}`` for the ratios it holds.

    Raises:
        ValueError: a forget set without its complementary retain set, or
            forget and retain sets that overlap (names the file and split).
    """
    splits = json.loads(Path(path).read_text(encoding="utf-8"))
    for ratio in FORGET_RATIOS:
        forget, retain = forget_config(ratio), retain_config(ratio)
        if forget not in splits:
            continue
        if retain not in splits:
            raise ValueError(f"{path}: {forget} has no complementary {retain}")
        overlap = set(splits[forget]) & set(splits[retain])
        if overlap:
            raise ValueError(f"{path}: {forget} and {retain} share the IDs {sorted(overlap)[:10]}")
    return {name: [str(i) for i in ids] for name, ids in splits.items()}


def split_ids(splits: dict[str, list[str]], forget_ratio: int) -> tuple[list[str], list[str]]:
    """``(forget IDs, retain IDs)`` at a forget ratio in %.

    Raises:
        KeyError: the splits lack that ratio.
    """
    ratio = check_forget_ratio(forget_ratio)
    try:
        return splits[forget_config(ratio)], splits[retain_config(ratio)]
    except KeyError:
        raise KeyError(f"the splits have no {forget_config(ratio)}/{retain_config(ratio)}; "
                       f"they have {sorted(splits)}") from None
