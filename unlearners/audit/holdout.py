"""Holdout profiles: people no model of a run is trained on, the non-members of membership inference.

A membership-inference attack needs non-members from the same distribution as
the forget set. :func:`choose_holdout` takes ``K`` profiles of the retain set
(a seeded draw); :func:`holdout_mirror` writes a hub-layout copy of the run's
configurations without them, so that every stage that reads the copy (vanilla
and retrained fine-tuning, unlearning, the suite's retain set) never sees them,
while the audit reads their ``ft_Data`` pairs from the original source.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets

from mllmu_tasks.ft_data import parse_metadata, read_splits, split_ids
from mllmu_tasks.images import checked_image_bytes
from mllmu_tasks.mini.generator import write_hub_layout
from mllmu_tasks.schema import (CELEBRITY_CONFIG, FT_CONFIG, FULL_CONFIG, TEST_CONFIG, features_for, forget_config,
                                retain_config)
from mllmu_tasks.sources import Source, image_root, load_config, profile_ids

from ..data import jsonl_lines, write_jsonl_subset


def draw_holdout(retain: list[str], count: int, seed: int, where: str) -> list[str]:
    """``count`` of the ``retain`` IDs (sorted), drawn with ``random.Random(f"holdout-{seed}")`` from the sorted IDs.

    Raises:
        ValueError: ``count`` negative, or not below the retain set's size (the retain set must keep a profile);
            ``where`` names the retain set in the message.
    """
    retain = sorted(retain)
    if not 0 <= count < len(retain):
        raise ValueError(f"--holdout_profiles must be 0 to {len(retain) - 1} ({where} has {len(retain)} profiles "
                         f"and must keep one), got {count}")
    return sorted(random.Random(f"holdout-{seed}").sample(retain, count))


def choose_holdout(source: Source, forget_ratio: int, count: int, seed: int = 0) -> list[str]:
    """``count`` profile IDs of the source's retain set at ``forget_ratio`` (:func:`draw_holdout`)."""
    config = retain_config(forget_ratio)
    return draw_holdout(profile_ids(config, source), count, seed, f"the {config} set")


def holdout_jsonl(source: str | Path, splits: str | Path, forget_ratio: int, count: int, seed: int,
                  out_dir: str | Path) -> tuple[Path, Path, list[str]]:
    """JSON Lines mode: ``(ft_qa.jsonl, splits.json, holdout IDs)`` in ``out_dir``, the holdout profiles (drawn from
    the retain IDs present in the file) left out of both; the other lines are kept byte for byte.

    Raises:
        ValueError, KeyError, SchemaError: a bad count (:func:`draw_holdout`), splits without the ratio, bad lines.
    """
    forget, retain = split_ids(read_splits(splits), forget_ratio)
    lines = jsonl_lines(source)
    present = {i for i, _ in lines}
    holdout = draw_holdout([i for i in retain if i in present], count, seed,
                           f"{splits} ({retain_config(forget_ratio)})")
    jsonl, split_file = write_jsonl_subset(lines, present - set(holdout), forget,
                                           [i for i in retain if i not in holdout], forget_ratio, out_dir)
    _write_holdout_json(Path(out_dir), forget_ratio, holdout)
    return jsonl, split_file, holdout


def _write_holdout_json(folder: Path, forget_ratio: int, holdout: list[str]) -> None:
    (folder / "holdout.json").write_text(json.dumps({"forget_ratio": forget_ratio, "holdout": holdout}))


def _row_id(config: str, row: dict, index: int, source: Source) -> str:
    if config == FT_CONFIG:
        return parse_metadata(row["metadata"], row=index, source=str(source))[0].profile_id
    return row["ID"]


def _inline(config: str, row: dict, index: int, source: Source) -> dict:
    """The row with its image cells as bytes (relative paths would not resolve in the copy)."""
    root = image_root(source, config)
    pid = row.get("ID")
    if "images" in row:
        row["images"] = [{"bytes": checked_image_bytes(c, root=root, config=config, row=index, field=f"images[{j}]",
                                                       profile_id=pid), "path": None}
                         for j, c in enumerate(row["images"])]
    if "image" in row:
        row["image"] = {"bytes": checked_image_bytes(row["image"], root=root, config=config, row=index, field="image",
                                                     profile_id=pid), "path": None}
    return row


def holdout_mirror(source: Source, forget_ratio: int, holdout: list[str], out_dir: str | Path) -> Path:
    """A hub-layout copy of the configurations a run at ``forget_ratio`` reads, the ``holdout`` profiles removed.

    Copies ``ft_Data``, ``Full_Set``, ``forget_X``, ``retain_Y``, ``Test_Set``
    and ``Retain_Set`` (images inlined as bytes) and writes ``holdout.json``
    (the IDs) beside them.

    Raises:
        ValueError: a holdout ID that is a forget-set profile.
        SchemaError: unreadable rows or images (names config, row and field).
    """
    forget = set(profile_ids(forget_config(forget_ratio), source))
    if forget & set(holdout):
        raise ValueError(f"holdout profiles {sorted(forget & set(holdout))} are in {forget_config(forget_ratio)}")
    tables = {}
    for config in (FT_CONFIG, FULL_CONFIG, forget_config(forget_ratio), retain_config(forget_ratio), TEST_CONFIG,
                   CELEBRITY_CONFIG):
        rows = [_inline(config, row, i, source) for i, row in enumerate(load_config(config, source).to_list())
                if _row_id(config, row, i, source) not in holdout]
        tables[config] = datasets.Dataset.from_list(rows, features=features_for(config))
    root = write_hub_layout(tables, out_dir)
    _write_holdout_json(Path(root), forget_ratio, list(holdout))
    return root
