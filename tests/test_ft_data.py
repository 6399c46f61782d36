"""ft_Data readers: the real profile text in ../shared, the mini benchmark, and bad input."""

import json

import pytest

from mllmu_tasks import ft_data
from mllmu_tasks.schema import SchemaError
from mllmu_tasks.sources import resolve_source

from conftest import SHARED_FT, write_config

needs_shared = pytest.mark.skipif(not SHARED_FT.is_dir(),
                                  reason=f"real MLLMU-Bench fine-tuning text not found at {SHARED_FT}")


@needs_shared
def test_real_ft_text_has_all_pairs():
    profiles = ft_data.read_ft_jsonl(SHARED_FT / "ft_qa.jsonl")
    assert len(profiles) == 500
    assert sum(len(p) for p in profiles) == 7704
    assert all(14 <= len(p) <= 19 for p in profiles)
    first = profiles[0][0]
    assert first.profile_id == "001" and first.question == "What is the name of this person?"


@needs_shared
def test_real_splits():
    splits = ft_data.read_splits(SHARED_FT / "splits.json")
    for ratio, size in ((5, 25), (10, 50), (15, 75)):
        forget, retain = ft_data.split_ids(splits, ratio)
        assert len(forget) == size and len(retain) == 500 - size
        assert not set(forget) & set(retain)
        assert len(set(forget) | set(retain)) == 500


def test_mini_ft_data():
    profiles = ft_data.load_ft_profiles(resolve_source("mini"))
    assert len(profiles) == 40
    assert [p.profile_id for p in profiles] == [f"{i:03d}" for i in range(1, 41)]
    assert all(p.image and p.image["bytes"] for p in profiles)
    assert all(pair.profile_id == p.profile_id for p in profiles for pair in p.pairs)


def test_evaluation_config_given_as_ft_data(small_bench):
    # a Full_Set written where ft_Data should be: the classic KeyError: 'metadata'
    (small_bench / "ft_Data" / "train-00000-of-00001.parquet").unlink()
    (small_bench / "ft_Data").rmdir()
    (small_bench / "Full_Set").rename(small_bench / "ft_Data")
    with pytest.raises(SchemaError, match=r"ft_Data.*expected the ft_Data fine-tuning schema.*look like an evaluation"):
        ft_data.load_ft_profiles(resolve_source(str(small_bench)))


@pytest.mark.parametrize("metadata,message", [
    ("[{\"ID\": \"001\", \"Question\": \"q\"", "not valid JSON"),
    ("[]", "non-empty JSON list"),
    (json.dumps([{"ID": "001", "Question": "q"}]), "missing ['Answer']"),
    (json.dumps([{"ID": "001", "Question": "q", "Answer": "a"}, {"ID": "002", "Question": "q", "Answer": "a"}]),
     "several profiles"),
])
def test_bad_metadata(tmp_path, metadata, message):
    from conftest import png_bytes
    write_config(tmp_path, "ft_Data", [{"image": {"bytes": png_bytes(), "path": None}, "metadata": metadata}])
    with pytest.raises(SchemaError, match="row 0") as err:
        ft_data.load_ft_profiles(resolve_source(str(tmp_path)))
    assert message in str(err.value) and "field metadata" in str(err.value)


def test_jsonl_with_evaluation_schema(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"ID": "001", "Classification_Task": {}}) + "\n")
    with pytest.raises(SchemaError, match=r"row 0, field metadata: expected the ft_Data schema"):
        ft_data.read_ft_jsonl(path)


def test_splits_must_be_complementary(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"forget_5": ["001", "002"], "retain_95": ["002", "003"]}))
    with pytest.raises(ValueError, match="share the IDs"):
        ft_data.read_splits(path)
    path.write_text(json.dumps({"forget_10": ["001"]}))
    with pytest.raises(ValueError, match="no complementary retain_90"):
        ft_data.read_splits(path)
