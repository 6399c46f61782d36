"""MLLMU-Bench configurations, columns and validation errors.

The hub dataset ``MLLMMU/MLLMU-Bench`` has ten configurations, each with one
split ``train``. Evaluation configurations share one schema
(:data:`EVAL_FEATURES`); ``Test_Set`` replaces ``image`` by a list ``images``
(:data:`TEST_SET_FEATURES`); ``ft_Data`` holds the fine-tuning pairs
(:data:`FT_FEATURES`). Source: the dataset card and the released code of
Liu et al., "Protecting Privacy in Multimodal Large Language Models with
MLLMU-Bench" (NAACL 2025, arXiv 2410.22108).
"""

from __future__ import annotations

import datasets

HUB_DATASET = "MLLMMU/MLLMU-Bench"
FORGET_RATIOS = (5, 10, 15)
OPTION_KEYS = ("A", "B", "C", "D")

FT_CONFIG = "ft_Data"
FULL_CONFIG = "Full_Set"
TEST_CONFIG = "Test_Set"
CELEBRITY_CONFIG = "Retain_Set"
CONFIGS = (
    FULL_CONFIG,
    FT_CONFIG,
    "forget_5",
    "forget_10",
    "forget_15",
    "retain_95",
    "retain_90",
    "retain_85",
    TEST_CONFIG,
    CELEBRITY_CONFIG,
)

#: ``Type`` values of generation and cloze questions.
IMAGE_TEXTUAL = "Image_Textual"
PURE_TEXT = "Pure_Text"

_MC_QUESTION = {
    "Question": datasets.Value("string"),
    "Options": {k: datasets.Value("string") for k in OPTION_KEYS},
    "Correct_Answer": datasets.Value("string"),
}
_OPEN_QUESTION = {
    "Question": datasets.Value("string"),
    "Ground_Truth": datasets.Value("string"),
    "Type": datasets.Value("string"),
}
_EVAL_COLUMNS = {
    "ID": datasets.Value("string"),
    "Directory": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answer": datasets.Value("string"),
    "biography": datasets.Value("string"),
    "Classification_Task": {
        "Image_Textual_Questions": datasets.List(_MC_QUESTION),
        "Pure_Text_Questions": datasets.List(_MC_QUESTION),
    },
    "Generation_Task": datasets.List(_OPEN_QUESTION),
    "Mask_Task": datasets.List(_OPEN_QUESTION),
}

#: ``Full_Set``, ``forget_X``, ``retain_Y``, ``Retain_Set``.
EVAL_FEATURES = datasets.Features({"image": datasets.Image(), **_EVAL_COLUMNS})
#: ``Test_Set``: transformed images and paraphrased questions.
TEST_SET_FEATURES = datasets.Features({"images": datasets.List(datasets.Image()), **_EVAL_COLUMNS})
#: ``ft_Data``: ``metadata`` is a JSON string, a list of ``{ID, Question, Answer}``.
FT_FEATURES = datasets.Features({"image": datasets.Image(), "metadata": datasets.Value("string")})

#: Columns whose presence identifies each schema.
EVAL_REQUIRED = ("ID", "Classification_Task", "Generation_Task", "Mask_Task")
FT_REQUIRED = ("image", "metadata")


def features_for(config: str) -> datasets.Features:
    """Return the ``datasets.Features`` of a configuration.

    Raises:
        ValueError: ``config`` is not one of :data:`CONFIGS`.
    """
    check_config_name(config)
    if config == FT_CONFIG:
        return FT_FEATURES
    if config == TEST_CONFIG:
        return TEST_SET_FEATURES
    return EVAL_FEATURES


def check_config_name(config: str) -> None:
    """Raise ``ValueError`` naming the valid configurations if ``config`` is unknown."""
    if config not in CONFIGS:
        raise ValueError(f"unknown MLLMU-Bench configuration {config!r}; expected one of {', '.join(CONFIGS)}")


def forget_config(forget_ratio: int) -> str:
    """``forget_X`` configuration for a forget ratio in % (5, 10 or 15).

    Raises:
        ValueError: the ratio is not one the benchmark ships.
    """
    ratio = check_forget_ratio(forget_ratio)
    return f"forget_{ratio}"


def retain_config(forget_ratio: int) -> str:
    """``retain_{100-X}`` configuration complementary to ``forget_X`` (ratio in %)."""
    ratio = check_forget_ratio(forget_ratio)
    return f"retain_{100 - ratio}"


def check_forget_ratio(forget_ratio: int | str) -> int:
    """Parse a forget ratio in % and check it is one of :data:`FORGET_RATIOS`.

    Raises:
        ValueError: not an integer, or not 5, 10 or 15.
    """
    if isinstance(forget_ratio, float) and forget_ratio.is_integer():
        forget_ratio = int(forget_ratio)
    try:  # int(10.9) would be 10: only whole numbers, as int or digits
        ratio = int(forget_ratio) if not isinstance(forget_ratio, (float, bool)) else None
    except (TypeError, ValueError):
        ratio = None
    if ratio is None:
        raise ValueError(f"forget_ratio must be one of {FORGET_RATIOS} (percent), got {forget_ratio!r}")
    if ratio not in FORGET_RATIOS:
        raise ValueError(f"forget_ratio must be one of {FORGET_RATIOS} (percent), got {forget_ratio!r}")
    return ratio


class SchemaError(ValueError):
    """A row or configuration does not match the MLLMU-Bench schema.

    The message names the source, configuration, row and field, e.g.
    ``forget_5 (local:/data/mllmu), row 3 (ID '093'), field Classification_Task: missing``.
    """

    def __init__(self, message: str, *, config: str | None = None, row: int | None = None,
                 field: str | None = None, source: str | None = None, profile_id: str | None = None):
        self.config, self.row, self.field, self.source, self.profile_id = config, row, field, source, profile_id
        where = []
        if config is not None:
            where.append(config + (f" ({source})" if source else ""))
        if row is not None:
            where.append(f"row {row}" + (f" (ID {profile_id!r})" if profile_id is not None else ""))
        if field is not None:
            where.append(f"field {field}")
        super().__init__((", ".join(where) + ": " if where else "") + message)


def check_columns(column_names, config: str, source: str | None = None) -> None:
    """Check a configuration's columns match the schema it should have.

    An evaluation configuration given where ``ft_Data`` is expected (or the
    reverse) gets an error that says which schema was expected and found.

    Raises:
        SchemaError: required columns are missing.
    """
    columns = set(column_names)
    if config == FT_CONFIG:
        required, found_other = FT_REQUIRED, set(EVAL_REQUIRED) <= columns
        expected, other = "the ft_Data fine-tuning schema (image, metadata)", "an evaluation schema"
    else:
        required, found_other = EVAL_REQUIRED, set(FT_REQUIRED) <= columns and "ID" not in columns
        expected, other = "an evaluation schema (ID, Classification_Task, Generation_Task, Mask_Task)", \
            "the ft_Data fine-tuning schema"
        required = required + (("images",) if config == TEST_CONFIG else ("image",))
    missing = [c for c in required if c not in columns]
    if missing:
        hint = f"; these columns look like {other}: was another configuration given?" if found_other else ""
        raise SchemaError(f"expected {expected} but columns {sorted(columns)} lack {missing}{hint}",
                          config=config, source=source)
