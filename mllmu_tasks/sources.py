"""Where the benchmark comes from: the hub, a local mirror, or the embedded mini benchmark.

A source is chosen, without editing any YAML, by (first match wins):

1. lm-eval's ``--metadata '{"source": ..., "forget_ratio": ...}'`` (or
   ``TaskManager(metadata=...)``);
2. the environment variables ``MLLMU_SOURCE`` and ``MLLMU_FORGET_RATIO``;
3. the defaults: the hub dataset ``MLLMMU/MLLMU-Bench`` and a forget ratio of 5 %.

``source`` is ``"hub"`` (or ``"hub:<owner>/<name>"`` for a fork), ``"mini"``
(the embedded mini benchmark shipped in the package) or a path to a local
directory in the hub layout ``<dir>/<config>/train-*.parquet``.
"""

from __future__ import annotations

import difflib
import functools
import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from . import MINI_DATA_DIR
from .schema import HUB_DATASET, SchemaError, check_columns, check_config_name, check_forget_ratio

log = logging.getLogger(__name__)

SOURCE_ENV = "MLLMU_SOURCE"
FORGET_RATIO_ENV = "MLLMU_FORGET_RATIO"
DEFAULT_FORGET_RATIO = 5


class SettingsError(ValueError):
    """A bad suite setting (``--metadata`` key or value, or environment variable); the message names its origin."""


class SourceUnavailableError(FileNotFoundError):
    """The hub dataset could not be read (offline, no access); the message says how to use local data."""


@dataclass(frozen=True)
class Source:
    """A resolved data source.

    Attributes:
        kind: ``"hub"`` or ``"local"`` (the mini benchmark is a local source).
        location: hub repository id, or absolute directory path.
    """

    kind: str
    location: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


def resolve_source(source: str | None = None, flag: str = "--metadata source") -> Source:
    """Turn a ``source`` setting (or ``$MLLMU_SOURCE``, or the default ``hub``) into a :class:`Source`.

    ``flag``: how the user gave ``source`` (``--source`` for the training commands), for messages.

    Raises:
        FileNotFoundError: a local path that is not a directory (the message
            says whether it came from ``flag`` or the environment).
    """
    origin = flag if source else f"${SOURCE_ENV}" if os.environ.get(SOURCE_ENV) else "default"
    value = source or os.environ.get(SOURCE_ENV) or "hub"
    if value == "hub":
        return Source("hub", HUB_DATASET)
    if value.startswith("hub:"):
        return Source("hub", value[len("hub:"):])
    if value == "mini":
        return Source("local", str(Path(MINI_DATA_DIR).resolve()))
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"MLLMU source {value!r} (from {origin}) is neither 'hub', 'hub:<repo>', 'mini' nor an existing "
            f"directory in the hub layout (<dir>/<config>/train-*.parquet)")
    return Source("local", str(path.resolve()))


def resolve_forget_ratio(forget_ratio: int | str | None = None) -> int:
    """Forget ratio in % from the argument, ``$MLLMU_FORGET_RATIO`` or the default (5).

    Raises:
        SettingsError: not 5, 10 or 15 (the message says where the value came from).
    """
    if forget_ratio not in (None, ""):
        value, origin = forget_ratio, "--metadata forget_ratio"
    elif os.environ.get(FORGET_RATIO_ENV):
        value, origin = os.environ[FORGET_RATIO_ENV], f"${FORGET_RATIO_ENV}"
    else:
        value, origin = DEFAULT_FORGET_RATIO, "default"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return check_forget_ratio(value)
    except ValueError as err:
        raise SettingsError(f"{err} (from {origin})") from None


#: The suite's own ``--metadata`` keys.
SETTING_KEYS = ("source", "forget_ratio", "model_family", "fewshot_seed", "fewshot_profiles")
#: Model families of the released evaluation rules (:mod:`mllmu_tasks.family`).
MODEL_FAMILIES = ("llava", "idefics2")


@dataclass(frozen=True)
class Settings:
    """Resolved data settings of a run: where from, and the forget ratio in %."""

    source: Source
    forget_ratio: int


def resolve_settings(metadata: dict | None) -> Settings:
    """Source and forget ratio from lm-eval's task metadata (``--metadata``), the environment or defaults.

    Raises:
        SettingsError: a key that looks like a misspelt setting (``forget_ratios``,
            ``sources``), an invalid forget ratio, a ``model_family`` other than
            llava/idefics2, a ``fewshot_seed`` that is not an integer.
        FileNotFoundError: a local source that is not a directory.
    """
    metadata = metadata or {}
    for key in metadata:
        close = difflib.get_close_matches(key, SETTING_KEYS, n=1, cutoff=0.8)
        if key not in SETTING_KEYS and close:
            raise SettingsError(f"unknown --metadata key {key!r}: did you mean {close[0]!r}?")
    family = metadata.get("model_family")
    if family is not None and family not in MODEL_FAMILIES:
        raise SettingsError(f"--metadata model_family must be one of {MODEL_FAMILIES}, got {family!r}")
    seed = metadata.get("fewshot_seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SettingsError(f"--metadata fewshot_seed must be an integer, got {seed!r}")
    chosen = metadata.get("fewshot_profiles")
    if chosen is not None and not (isinstance(chosen, dict) and all(
            isinstance(k, str) and isinstance(v, list) for k, v in chosen.items())):
        raise SettingsError('--metadata fewshot_profiles must map "<set>_<kind>" to a list of IDs, e.g. '
                            '{"forget_cls": ["093"], "test_cloze": ["012", "044"]}')
    return Settings(resolve_source(metadata.get("source")), resolve_forget_ratio(metadata.get("forget_ratio")))


def config_files(source: Source, config: str) -> list[str]:
    """Parquet files of ``config`` in a local hub-layout directory, sorted.

    Raises:
        FileNotFoundError: the directory has no ``<config>/train-*.parquet``;
            the message lists the configurations it does have.
    """
    files = sorted(glob.glob(os.path.join(source.location, config, "train-*.parquet")))
    if not files and glob.glob(os.path.join(source.location, "train-*.parquet")):
        folder = Path(source.location)
        raise FileNotFoundError(f"{source} is the {folder.name} configuration folder itself: give its parent "
                                f"{folder.parent} as the source (the hub layout <dir>/<config>/train-*.parquet)")
    if not files:
        present = sorted(p.name for p in Path(source.location).iterdir()
                         if p.is_dir() and any(p.glob("train-*.parquet")))
        has = f"the configurations {present}" if present else "no configuration folders"
        raise FileNotFoundError(
            f"{source}: no {config}/train-*.parquet; this directory has {has} "
            f"(expected the hub layout <dir>/<config>/train-*.parquet)")
    return files


def read_local_tables(config: str, source: Source) -> pa.Table:
    """A local configuration's parquet shards as one Arrow table (read in memory: no cache files).

    Raises:
        SchemaError: a file that is not parquet (0 bytes, cut short, another
            format), or shards whose columns differ; the message names the files.
    """
    tables = []
    for f in config_files(source, config):
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowInvalid, OSError) as err:
            raise SchemaError(f"{f} is not a readable parquet file ({type(err).__name__}: {err})", config=config,
                              source=str(source)) from err
    try:
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except pa.ArrowInvalid as err:
        names = [Path(f).name for f in config_files(source, config)]
        raise SchemaError(f"its shards {names} have different columns or types ({str(err).splitlines()[0]})",
                          config=config, source=str(source)) from err


@functools.lru_cache(maxsize=32)
def load_config(config: str, source: Source) -> datasets.Dataset:
    """Load one configuration's ``train`` split, with images left undecoded.

    Images stay ``{"bytes", "path"}`` dicts (``datasets.Image(decode=False)``)
    so that a broken image is reported by :mod:`mllmu_tasks.images` with its
    row, instead of failing inside ``datasets``. Cached per process.

    Raises:
        ValueError: unknown configuration name.
        FileNotFoundError: a local directory lacks the configuration.
        SchemaError: the columns are not those the configuration must have
            (for example ``ft_Data`` given where an evaluation set was expected),
            no rows, or unreadable / mismatched parquet shards.
    """
    check_config_name(config)
    if source.kind == "hub":
        try:
            ds = datasets.load_dataset(source.location, config, split="train")
        except Exception as err:  # offline, no access, renamed repo: keep the cause, add the way out
            raise SourceUnavailableError(
                f"could not load {config} of {source.location} from the Hugging Face hub ({type(err).__name__}: "
                f"{err}). Offline, use the embedded mini benchmark (--metadata '{{\"source\": \"mini\"}}') "
                f"or a local mirror directory (--metadata '{{\"source\": \"/path/to/mirror\"}}')") from err
    else:
        ds = datasets.Dataset(read_local_tables(config, source))
    check_columns(ds.column_names, config, source=str(source))
    if len(ds) == 0:
        raise SchemaError("no rows", config=config, source=str(source))
    for column in ("image", "images"):
        if column in ds.column_names:
            # by the Arrow type, not the features: a parquet written without the Hugging Face
            # metadata (a pandas round trip) has plain structs where Image features were
            is_list = pa.types.is_list(ds.data.table.schema.field(column).type) or \
                pa.types.is_large_list(ds.data.table.schema.field(column).type)
            undecoded = datasets.List(datasets.Image(decode=False)) if is_list else datasets.Image(decode=False)
            ds = ds.cast_column(column, undecoded)
    log.info("MLLMU: loaded %s from %s (%d rows)", config, source, len(ds))
    return ds


def image_root(source: Source, config: str) -> str | None:
    """Directory that relative image paths of a local configuration are read under (None for the hub)."""
    return os.path.join(source.location, config) if source.kind == "local" else None


def profile_ids(config: str, source: Source) -> list[str]:
    """The ``ID`` column of a configuration, in row order.

    Raises:
        SchemaError: a row has no ``ID``.
    """
    ids = load_config(config, source)["ID"]
    for row, pid in enumerate(ids):
        if not pid:
            raise SchemaError("missing profile ID", config=config, row=row, field="ID", source=str(source))
    return list(ids)
