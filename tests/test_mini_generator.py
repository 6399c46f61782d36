"""The embedded mini MLLMU-Bench generator: schema, content rules, determinism, shipped copy."""

import io
import itertools
import json
import re
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from mllmu_tasks import MINI_DATA_DIR, schema
from mllmu_tasks.mini import cli
from mllmu_tasks.mini.generator import SHARD_NAME, generate_benchmark, write_hub_layout

N_PROFILES, N_CELEBRITIES = 8, 3
EVAL_CONFIGS = [c for c in schema.CONFIGS if c not in (schema.FT_CONFIG, schema.TEST_CONFIG)]
# Portraits of two people must differ by a whole region: 8/255 of mean absolute difference is,
# e.g., 10 % of the pixels (about the shirt) moved by 80 levels per channel. Resampling or
# re-encoding the same drawing changes far less than 1 level on average. Measured minimum over
# all pairs at the default size: about 10.5 (40 + 10 profiles, seed 0).
MIN_PORTRAIT_DIFFERENCE = 8.0


@pytest.fixture(scope="module")
def bench():
    return generate_benchmark(N_PROFILES, N_CELEBRITIES, seed=0, image_size=32)


def raw_rows(dataset: datasets.Dataset) -> list[dict]:
    """Rows with images as ``{bytes, path}`` dicts (no decoding)."""
    return dataset.with_format("arrow")[:].to_pylist()


def pixels(image: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image["bytes"])).convert("RGB"), dtype=np.float64)


def bio(row: dict) -> dict:
    return json.loads(row["biography"])


def mc_items(row: dict):
    task = row["Classification_Task"]
    for modality, key in ((schema.IMAGE_TEXTUAL, "Image_Textual_Questions"), (schema.PURE_TEXT, "Pure_Text_Questions")):
        for item in task[key]:
            yield modality, item


def all_eval_rows(bench) -> list[dict]:
    return raw_rows(bench[schema.FULL_CONFIG]) + raw_rows(bench[schema.CELEBRITY_CONFIG])


def test_every_config_has_the_hub_features(bench):
    assert set(bench) == set(schema.CONFIGS)
    for config, dataset in bench.items():
        assert dataset.features == schema.features_for(config), config
        assert len(dataset) > 0, config


def test_row_counts_ids_and_names(bench):
    full = raw_rows(bench[schema.FULL_CONFIG])
    assert [r["ID"] for r in full] == [f"{i:03d}" for i in range(1, N_PROFILES + 1)]
    assert len(bench[schema.FT_CONFIG]) == len(bench[schema.TEST_CONFIG]) == N_PROFILES
    assert [r["ID"] for r in raw_rows(bench[schema.TEST_CONFIG])] == [r["ID"] for r in full]
    names = [bio(r)["name"] for r in all_eval_rows(bench)]
    assert len(set(names)) == len(names) == N_PROFILES + N_CELEBRITIES
    for row in full:
        assert row["Directory"] == bio(row)["name"].replace(" ", "_")
        assert row["question"] == "What is the name of this person?"
        assert row["answer"] == f"This person's name is {bio(row)['name']}."
        assert len(bio(row)) >= 15


def test_question_mix_per_row(bench):
    for row in all_eval_rows(bench) + raw_rows(bench[schema.TEST_CONFIG]):
        task = row["Classification_Task"]
        assert len(task["Image_Textual_Questions"]) == len(task["Pure_Text_Questions"]) == 5
        for column in ("Generation_Task", "Mask_Task"):
            types = [item["Type"] for item in row[column]]
            assert sorted(types) == [schema.IMAGE_TEXTUAL] * 2 + [schema.PURE_TEXT] * 2, column
        name = bio(row)["name"]
        for modality, item in mc_items(row):
            assert (name in item["Question"]) == (modality == schema.PURE_TEXT), item["Question"]
            if modality == schema.IMAGE_TEXTUAL:
                assert "this person" in item["Question"].lower()


def test_same_seed_same_bytes_other_seed_differs(bench):
    again = generate_benchmark(N_PROFILES, N_CELEBRITIES, seed=0, image_size=32)
    other = generate_benchmark(N_PROFILES, N_CELEBRITIES, seed=1, image_size=32)
    for config in schema.CONFIGS:
        assert raw_rows(again[config]) == raw_rows(bench[config]), config
    full, full_other = raw_rows(bench[schema.FULL_CONFIG]), raw_rows(other[schema.FULL_CONFIG])
    assert [r["biography"] for r in full] != [r["biography"] for r in full_other]
    assert [r["image"]["bytes"] for r in full] != [r["image"]["bytes"] for r in full_other]


def test_forget_and_retain_are_disjoint_complements(bench):
    all_ids = {r["ID"] for r in raw_rows(bench[schema.FULL_CONFIG])}
    for ratio in schema.FORGET_RATIOS:
        forget = [r["ID"] for r in raw_rows(bench[schema.forget_config(ratio)])]
        retain = [r["ID"] for r in raw_rows(bench[schema.retain_config(ratio)])]
        assert len(forget) == max(1, round(N_PROFILES * ratio / 100))
        assert not set(forget) & set(retain)
        assert set(forget) | set(retain) == all_ids
        assert len(forget) + len(retain) == N_PROFILES
        assert forget == sorted(forget) and retain == sorted(retain)


def test_forget_sizes_at_default_scale():
    # 40 profiles: 2 / 4 / 6 forgotten (no other content checked here).
    bench = generate_benchmark(40, 4, seed=3, image_size=16)
    assert [len(bench[schema.forget_config(r)]) for r in schema.FORGET_RATIOS] == [2, 4, 6]
    assert [len(bench[schema.retain_config(r)]) for r in schema.FORGET_RATIOS] == [38, 36, 34]


def test_forget_rows_equal_full_set_rows(bench):
    full = {r["ID"]: r for r in raw_rows(bench[schema.FULL_CONFIG])}
    for config in EVAL_CONFIGS:
        if config == schema.CELEBRITY_CONFIG:
            continue
        for row in raw_rows(bench[config]):
            assert row == full[row["ID"]], config


def _check_mc_item(item: dict, row: dict, people: list[dict]) -> None:
    options = item["Options"]
    assert sorted(options) == list(schema.OPTION_KEYS)
    assert len(set(options.values())) == 4, options
    assert item["Correct_Answer"] in schema.OPTION_KEYS
    answer = options[item["Correct_Answer"]]
    distractors = [v for k, v in options.items() if k != item["Correct_Answer"]]
    others = [p for p in people if p["name"] != bio(row)["name"]]
    # Some biography key holds the answer for this profile and every distractor for another one.
    kinds = [key for key, value in bio(row).items() if value == answer
             and all(any(o[key] == d for o in others) for d in distractors)]
    assert kinds, (item, bio(row))


def test_multiple_choice_answers_and_distractors(bench):
    people = [bio(r) for r in all_eval_rows(bench)]
    letters = []
    for row in all_eval_rows(bench) + raw_rows(bench[schema.TEST_CONFIG]):
        for _, item in mc_items(row):
            _check_mc_item(item, row, people)
            letters.append(item["Correct_Answer"])
    assert set(letters) == set(schema.OPTION_KEYS)  # the correct position varies


def test_cloze_questions_state_the_fact(bench):
    for row in all_eval_rows(bench) + raw_rows(bench[schema.TEST_CONFIG]):
        facts, name = bio(row), bio(row)["name"]
        for item in row["Mask_Task"]:
            assert re.findall("_+", item["Question"]) == ["__"], item  # exactly one blank of two underscores
            assert item["Ground_Truth"] in facts.values(), item
            filled = item["Question"].replace("__", item["Ground_Truth"])
            assert filled.endswith(".")
            subject = name if item["Type"] == schema.PURE_TEXT else "this person"
            assert subject.lower() in filled.lower(), filled


def test_full_set_answers_are_taught_by_ft_data(bench):
    ft = {}
    for row in raw_rows(bench[schema.FT_CONFIG]):
        for pair in json.loads(row["metadata"]):
            ft.setdefault(pair["ID"], {})[pair["Question"]] = pair["Answer"]
    for row in raw_rows(bench[schema.FULL_CONFIG]):
        taught = ft[row["ID"]]
        for item in row["Generation_Task"]:
            assert taught[item["Question"]] == item["Ground_Truth"]
        for item in row["Mask_Task"]:
            assert item["Question"].replace("__", item["Ground_Truth"]) in taught.values()
        for _, item in mc_items(row):
            answer = item["Options"][item["Correct_Answer"]]
            assert answer in taught[item["Question"]]


def test_ft_data_metadata_has_both_phrasings(bench):
    full = raw_rows(bench[schema.FULL_CONFIG])
    ft = raw_rows(bench[schema.FT_CONFIG])
    celebrity_names = {bio(r)["name"] for r in raw_rows(bench[schema.CELEBRITY_CONFIG])}
    for row, ft_row in zip(full, ft):
        pairs = json.loads(ft_row["metadata"])
        assert isinstance(pairs, list)
        assert all(set(p) == {"ID", "Question", "Answer"} and p["ID"] == row["ID"] for p in pairs)
        name = bio(row)["name"]
        this_person = [p for p in pairs if "this person" in p["Question"]]
        named = [p for p in pairs if name in p["Question"]]
        assert len(this_person) == len(bio(row)) and len(named) == len(bio(row)) - 1
        assert all(p["Answer"].startswith(name) for p in named)
        answers = " ".join(p["Answer"] for p in pairs)
        assert all(value in answers for value in bio(row).values())
        assert ft_row["image"]["bytes"] == row["image"]["bytes"]
        assert not any(c in answers for c in celebrity_names)


def test_portraits_are_pairwise_distinct():
    bench = generate_benchmark(40, 10, seed=0, image_size=64)
    images = [r["image"] for r in raw_rows(bench[schema.FULL_CONFIG]) + raw_rows(bench[schema.CELEBRITY_CONFIG])]
    small = [np.asarray(Image.open(io.BytesIO(i["bytes"])).convert("RGB").resize((32, 32), Image.BILINEAR),
                        dtype=np.float64) for i in images]
    for img in images:
        decoded = Image.open(io.BytesIO(img["bytes"]))
        assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "RGB", (64, 64))
    worst = min(np.abs(a - b).mean() for a, b in itertools.combinations(small, 2))
    assert worst > MIN_PORTRAIT_DIFFERENCE


def test_test_set_transforms_images_and_paraphrases(bench):
    full = raw_rows(bench[schema.FULL_CONFIG])
    test = raw_rows(bench[schema.TEST_CONFIG])
    for row, test_row in zip(full, test):
        assert test_row["biography"] == row["biography"]
        assert len(test_row["images"]) == 3
        original = pixels(row["image"])
        for image in test_row["images"]:
            assert pixels(image).shape == original.shape
            assert np.abs(pixels(image) - original).mean() > 2.0
        assert len({i["bytes"] for i in test_row["images"]}) == 3
        for column in ("Image_Textual_Questions", "Pure_Text_Questions"):
            for a, b in zip(row["Classification_Task"][column], test_row["Classification_Task"][column]):
                assert a["Question"] != b["Question"]
                assert a["Options"][a["Correct_Answer"]] == b["Options"][b["Correct_Answer"]]
                assert set(a["Options"].values()) == set(b["Options"].values())
        for a, b in zip(row["Generation_Task"], test_row["Generation_Task"]):
            assert a["Question"] != b["Question"] and a["Ground_Truth"] == b["Ground_Truth"]
        for a, b in zip(row["Mask_Task"], test_row["Mask_Task"]):
            assert a["Question"] != b["Question"] and a["Ground_Truth"] == b["Ground_Truth"]


def test_celebrities_are_separate(bench):
    fictitious = {r["ID"] for r in raw_rows(bench[schema.FULL_CONFIG])}
    celebrities = [r["ID"] for r in raw_rows(bench[schema.CELEBRITY_CONFIG])]
    assert celebrities == [f"{i:03d}" for i in range(N_PROFILES + 1, N_PROFILES + N_CELEBRITIES + 1)]
    assert not fictitious & set(celebrities)
    for config in schema.CONFIGS:
        if config not in (schema.CELEBRITY_CONFIG, schema.FT_CONFIG):
            assert not {r["ID"] for r in raw_rows(bench[config])} & set(celebrities), config
    ft_ids = {p["ID"] for r in raw_rows(bench[schema.FT_CONFIG]) for p in json.loads(r["metadata"])}
    assert ft_ids == fictitious


def test_write_hub_layout_round_trips(bench, tmp_path):
    root = write_hub_layout(bench, tmp_path / "hub")
    assert root == tmp_path / "hub"
    for config in schema.CONFIGS:
        path = root / config / SHARD_NAME
        loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
        assert loaded.features == schema.features_for(config), config
        assert raw_rows(loaded) == raw_rows(bench[config]), config


def test_write_hub_layout_rejects_unknown_config(bench, tmp_path):
    with pytest.raises(ValueError, match="unknown MLLMU-Bench configuration"):
        write_hub_layout({"Forget_5": bench["forget_5"]}, tmp_path)


@pytest.mark.parametrize("kwargs", [dict(num_profiles=3), dict(num_celebrities=0),
                                    dict(num_profiles=990, num_celebrities=10), dict(image_size=8)])
def test_invalid_sizes_raise(kwargs):
    with pytest.raises(ValueError):
        generate_benchmark(**kwargs)


def test_cli_build(tmp_path, capsys):
    out = tmp_path / "mini"
    assert cli.main(["build", "--out", str(out), "--profiles", "5", "--celebrities", "2",
                     "--seed", "4", "--image-size", "24"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(schema.CONFIGS)
    loaded = datasets.load_dataset("parquet", data_files=str(out / "Retain_Set" / SHARD_NAME), split="train")
    assert [r["ID"] for r in raw_rows(loaded)] == ["006", "007"]
    assert "Retain_Set" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["build", "--out", str(out), "--profiles", "1"])


def _comparable(rows: list[dict]) -> list[dict]:
    """Rows with images replaced by their pixels, so a newer zlib/Pillow does not fail the check."""
    def image(value):
        return pixels(value).tolist()
    out = []
    for row in rows:
        row = dict(row)
        if "image" in row:
            row["image"] = image(row["image"])
        if "images" in row:
            row["images"] = [image(i) for i in row["images"]]
        out.append(row)
    return out


def test_shipped_copy_equals_default_generation():
    shipped = Path(MINI_DATA_DIR)
    fresh = generate_benchmark()
    total = 0
    for config in schema.CONFIGS:
        path = shipped / config / SHARD_NAME
        assert path.is_file(), f"{path} missing: run `mllmu-mini build --out mllmu_tasks/mini/data`"
        total += path.stat().st_size
        loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
        assert loaded.features == schema.features_for(config), config
        assert _comparable(raw_rows(loaded)) == _comparable(raw_rows(fresh[config])), \
            f"{config} is stale: run `mllmu-mini build --out mllmu_tasks/mini/data`"
    assert total < 2 * 1024 * 1024
