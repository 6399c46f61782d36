"""Training examples from ``ft_Data``: forget/retain selection and modality.

Sources (the same settings as the task suite, :mod:`mllmu_tasks.sources`):
``hub``, ``hub:<repo>``, ``mini`` or a local hub-layout directory, read
through the ``ft_Data`` configuration (images included); or a ``.jsonl``
file in the authors' snapshot form (text only). Forget/retain profile IDs
come from the ``forget_X`` / ``retain_{100-X}`` configurations of the same
source, or from a splits file (``{"forget_5": [IDs], "retain_95": [IDs], ...}``).

Modality: ``image+text`` attaches each pair's profile image, ``text-only``
sends the same question/answer pairs with no image (unimodal unlearning).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mllmu_tasks.ft_data import FTProfile, load_ft_profiles, read_ft_jsonl, read_splits, split_ids
from mllmu_tasks.images import decode_image
from mllmu_tasks.schema import FT_CONFIG, SchemaError, forget_config, retain_config
from mllmu_tasks.sources import Source, image_root, profile_ids, resolve_source

MODALITIES = ("image+text", "text-only")
SUBSETS = ("all", "forget", "retain")


@dataclass(frozen=True)
class Example:
    """One question/answer pair to train on.

    Attributes:
        profile_id: three-digit profile ID.
        question, answer: texts (the loss covers the answer only).
        image: RGB image for image+text training, None for text-only.
    """

    profile_id: str
    question: str
    answer: str
    image: Image.Image | None


def load_profiles(source: str) -> tuple[list[FTProfile], Source | None]:
    """``ft_Data`` profiles of a source; a ``.jsonl`` path gives text-only profiles (no images).

    Raises:
        FileNotFoundError, SchemaError: see :mod:`mllmu_tasks.sources` and :mod:`mllmu_tasks.ft_data`.
    """
    if str(source).endswith(".jsonl"):
        return [FTProfile(pairs[0].profile_id, pairs, None, pairs[0].row) for pairs in read_ft_jsonl(source)], None
    resolved = resolve_source(source, flag="--source")
    return load_ft_profiles(resolved), resolved


def forget_retain_ids(forget_ratio: int, source: Source | None, splits: str | Path | None) -> tuple[set, set]:
    """Forget and retain profile IDs at a forget ratio (%), from a splits file or the source's configurations.

    Raises:
        ValueError: neither a splits file nor a dataset source (a JSONL source needs ``splits``).
    """
    if splits is not None:
        forget, retain = split_ids(read_splits(splits), forget_ratio)
    elif source is not None:
        forget = profile_ids(forget_config(forget_ratio), source)
        retain = profile_ids(retain_config(forget_ratio), source)
        both = sorted(set(forget) & set(retain))
        if both:  # they would be trained with ascent and descent at once
            raise SchemaError(f"profiles {both[:10]} are in both {forget_config(forget_ratio)} and "
                              f"{retain_config(forget_ratio)}", config=retain_config(forget_ratio), field="ID",
                              source=str(source))
    else:
        raise ValueError("a JSON Lines source carries no forget/retain configurations: give a splits file")
    return set(forget), set(retain)


def select_profiles(profiles: list[FTProfile], subset: str, forget_ids: set, retain_ids: set) -> list[FTProfile]:
    """The profiles of a subset: ``all``, ``forget`` or ``retain``.

    Raises:
        ValueError: unknown subset, or a subset with no profile in the data
            (for example splits whose IDs are not those of ``ft_Data``).
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if subset == "all":
        return list(profiles)
    wanted = forget_ids if subset == "forget" else retain_ids
    chosen = [p for p in profiles if p.profile_id in wanted]
    if not chosen:
        raise ValueError(f"no {FT_CONFIG} profile is in the {subset} set ({len(wanted)} IDs, e.g. "
                         f"{sorted(wanted)[:3]}); do the splits belong to this data?")
    return chosen


def to_examples(profiles: list[FTProfile], modality: str, source: Source | None) -> list[Example]:
    """One :class:`Example` per pair; image+text decodes each profile's image once.

    Raises:
        ValueError: unknown modality, or image+text from a source without images (JSONL).
        SchemaError: a missing or corrupt image (names config, row and field).
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    examples = []
    for profile in profiles:
        image = None
        if modality == "image+text":
            if source is None:
                raise ValueError("image+text training needs images: a JSON Lines source has none "
                                 "(use --modality text-only, or an ft_Data source)")
            image = decode_image(profile.image, root=image_root(source, FT_CONFIG), config=FT_CONFIG,
                                 row=profile.row, field="image", profile_id=profile.profile_id)
        examples.extend(Example(p.profile_id, p.question, p.answer, image) for p in profile.pairs)
    return examples


def load_subsets(source: str, subsets: dict[str, str], modality: str, forget_ratio: int = 5,
                 splits: str | Path | None = None) -> dict[str, list[Example]]:
    """``{name: examples}`` for several subsets (``all``, ``forget``, ``retain``) from ONE read of a source.

    Raises:
        ValueError, FileNotFoundError, SchemaError: see the functions above.
    """
    profiles, resolved = load_profiles(source)
    needs_ids = any(subset != "all" for subset in subsets.values())
    ids = forget_retain_ids(forget_ratio, resolved, splits) if needs_ids else (set(), set())
    return {name: to_examples(select_profiles(profiles, subset, *ids), modality, resolved)
            for name, subset in subsets.items()}


def load_examples(source: str, subset: str, modality: str, forget_ratio: int = 5,
                  splits: str | Path | None = None) -> list[Example]:
    """Examples of one subset (``all``, ``forget``, ``retain``) of a source, in file order.

    Raises:
        ValueError, FileNotFoundError, SchemaError: see the functions above.
    """
    return load_subsets(source, {subset: subset}, modality, forget_ratio, splits)[subset]


class PairedDataset:
    """Items ``{stream: Example}`` for the streams a method needs (map-style, for ``Trainer``).

    The first stream sets the epoch length; each other stream is cycled in
    an order shuffled once with ``seed`` (``item i`` pairs ``first[i]`` with
    ``other[perm[i % len(other)]]``), except the ``aligned`` ones, whose item
    ``i`` is taken with the first stream's item ``i``.

    Raises:
        ValueError: an empty stream, or an aligned stream of another length than the first.
    """

    def __init__(self, streams: dict[str, list[Example]], seed: int = 0, aligned: tuple[str, ...] = ()):
        if not streams or any(not examples for examples in streams.values()):
            empty = [name for name, examples in streams.items() if not examples]
            raise ValueError(f"empty training stream(s) {empty}")
        self.streams = streams
        self.first = next(iter(streams))
        rng = random.Random(seed)
        self.orders = {name: rng.sample(range(len(ex)), len(ex)) for name, ex in streams.items()}
        for name in aligned:
            if len(streams[name]) != len(streams[self.first]):
                raise ValueError(f"stream {name!r} ({len(streams[name])} examples) must align with "
                                 f"{self.first!r} ({len(streams[self.first])})")
            self.orders[name] = list(range(len(streams[name])))

    def __len__(self) -> int:
        return len(self.streams[self.first])

    def __getitem__(self, i: int) -> dict[str, Example]:
        item = {self.first: self.streams[self.first][i]}
        for name, examples in self.streams.items():
            if name != self.first:
                item[name] = examples[self.orders[name][i % len(examples)]]
        return item


#: A question that refers to the profile's person without naming them ("this person", "the individual", ...).
PERSON_REFERENCE = re.compile(r"\b(this|the) (person|individual)\b", re.IGNORECASE)
#: The name at the end of the first pair's answer ("This person's name is Amelia Kuznetsov.").
TRAILING_NAME = re.compile(r"([A-Z][\w'\-]*(?: (?:[A-Z][\w'\-]*|de|van|von|da|del|la|le|bin))*? [A-Z][\w'\-]*)\.?$")


def name_the_person(metadata: list[dict], where: str) -> list[dict]:
    """A profile's pairs with its person named in every question (the text-only variant of ``ft_Data``).

    ``ft_Data`` questions say "this person" because an image comes with them;
    sent text-only, every profile asks the same questions and a model cannot
    tell whom they are about (nothing to forget selectively). This variant
    names the person, as the benchmark's text-only evaluation questions do:
    the name is read from the first pair's answer (the name question in all
    500 released profiles), that pair is dropped (its answer would be in its
    question), "this person" / "the individual" (any case) becomes the name,
    and a question with no such phrase is prefixed ``"{name}: "``. Answers are unchanged.

    Raises:
        ValueError: the first answer does not end with a name (names ``where``).
    """
    match = TRAILING_NAME.search(metadata[0]["Answer"].strip()) if metadata else None
    if not match:
        raise ValueError(f"{where}: the first pair's answer does not end with the person's name: "
                         f"{metadata[0]['Answer'] if metadata else '(no pairs)'!r}")
    name = match.group(1)
    named = []
    for pair in metadata[1:]:
        question, hits = PERSON_REFERENCE.subn(name, pair["Question"])
        named.append({**pair, "Question": question if hits else f"{name}: {question}"})
    return named


def named_jsonl(source: str | Path, out_path: str | Path) -> Path:
    """A copy of a JSON Lines ``ft_Data`` with each person named in the questions (:func:`name_the_person`).

    Raises:
        ValueError: a profile whose name cannot be read (names the file and line).
        SchemaError: a line that is not the ft_Data schema (see ``read_ft_jsonl``).
    """
    read_ft_jsonl(source)  # the schema check, with its file-and-line errors
    lines = []
    for row, line in enumerate(Path(source).read_text(encoding="utf-8").splitlines()):
        if line.strip():
            record = json.loads(line)
            metadata = name_the_person(record["metadata"], f"{source}, line {row + 1}")
            lines.append(json.dumps({**record, "metadata": metadata}, ensure_ascii=False) + "\n")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(lines), encoding="utf-8")
    return out


def cut_jsonl(source: str | Path, splits: str | Path, forget_ratio: int, profiles: int,
              out_dir: str | Path) -> tuple[Path, Path]:
    """A smaller JSON Lines source: ``profiles`` profiles with the forget share of the full splits.

    Keeps ``max(1, round(profiles * forget_ratio / 100))`` forget profiles (the
    first in the splits' order) and fills the rest with retain profiles in
    file order; writes ``out_dir/ft_qa.jsonl`` (the kept lines, byte for byte)
    and ``out_dir/splits.json`` (``forget_X`` / ``retain_{100-X}`` of the kept
    IDs). Returns both paths.

    Raises:
        ValueError: ``profiles`` < 2 or more than the source holds, or too few
            forget/retain profiles in the splits.
        KeyError, SchemaError: see :func:`mllmu_tasks.ft_data.split_ids` / ``read_ft_jsonl``.
    """
    forget_all, retain_all = split_ids(read_splits(splits), forget_ratio)
    lines = jsonl_lines(source)
    ids = [i for i, _ in lines]
    if not 2 <= profiles <= len(ids):
        raise ValueError(f"--profiles must be between 2 and {len(ids)} (the profiles in {source}), got {profiles}")
    n_forget = max(1, round(profiles * forget_ratio / 100))
    present, retain_ids = set(ids), set(retain_all)
    forget = [i for i in forget_all if i in present][:n_forget]
    retain = [i for i in ids if i in retain_ids][:profiles - n_forget]
    if len(forget) < n_forget or len(retain) < profiles - n_forget:
        raise ValueError(f"{splits}: too few forget/retain profiles for --profiles {profiles} at forget ratio "
                         f"{forget_ratio} % ({len(forget)} forget, {len(retain)} retain found)")
    return write_jsonl_subset(lines, set(forget) | set(retain), forget, retain, forget_ratio, out_dir)


def jsonl_lines(source: str | Path) -> list[tuple[str, str]]:
    """``(profile ID, line)`` of each profile of a JSON Lines ``ft_Data``, in file order, the lines as written.

    Raises:
        SchemaError: a line that is not the ft_Data schema (see ``read_ft_jsonl``).
    """
    ids = [pairs[0].profile_id for pairs in read_ft_jsonl(source)]
    lines = [line for line in Path(source).read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(zip(ids, lines))


def write_jsonl_subset(lines: list[tuple[str, str]], kept: set[str], forget: list[str], retain: list[str],
                       forget_ratio: int, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/ft_qa.jsonl`` (the ``kept`` profiles' lines of :func:`jsonl_lines`, byte for byte, in file order)
    and ``out_dir/splits.json`` (``forget_X`` / ``retain_{100-X}``: ``forget``, ``retain``); returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jsonl, split_file = out / "ft_qa.jsonl", out / "splits.json"
    jsonl.write_text("".join(line + "\n" for i, line in lines if i in kept), encoding="utf-8")
    split_file.write_text(json.dumps({forget_config(forget_ratio): forget, retain_config(forget_ratio): retain},
                                     indent=1), encoding="utf-8")
    return jsonl, split_file
