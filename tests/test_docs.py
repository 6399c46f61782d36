"""Rows -> documents, sources, and every bad input the issue lists."""

import hashlib
import json

import pytest

from mllmu_tasks import docs, prompts
from mllmu_tasks.schema import SchemaError
from mllmu_tasks.sources import Source, resolve_forget_ratio, resolve_source

from conftest import eval_row, make_test_set_row, png_bytes, write_config


def src(path):
    return resolve_source(str(path))


def test_forget_cls_img_documents(small_bench):
    ds = docs.build_docs("forget", "cls", "img", src(small_bench), 5)
    assert len(ds) == 1
    doc = ds[0]
    assert doc["ID"] == "002" and doc["set"] == "forget" and doc["config"] == "forget_5"
    assert doc["modality"] == "image+text" and doc["kind"] == "cls"
    assert doc["options"] == ["painter", "nurse", "pilot", "chef"] and doc["answer"] == "A"
    assert doc["answer_text"] == "painter"
    images = docs.doc_to_image(doc)
    assert len(images) == 1 and images[0].mode == "RGB" and images[0].getpixel((0, 0)) == (0, 0, 255)
    body = docs.doc_to_body(doc)
    assert body == ("<image>\nWhat is this person's job?\nA: painter\nB: nurse\nC: pilot\nD: chef\n"
                    "Just give ONE letter representing the answer directly.")


def test_text_only_documents_have_no_image(small_bench):
    ds = docs.build_docs("retain", "gen", "txt", src(small_bench), 5)
    assert [d["ID"] for d in ds] == ["001", "003"]
    assert all(d["images"] == [] for d in ds)
    assert ds[0]["question"] == "What does Ann Lee do?" and ds[0]["answer"] == "Ann Lee is a doctor."
    assert "<image>" not in docs.doc_to_body(ds[0])


def test_cloze_prompt_shows_blank(small_bench):
    doc = docs.build_docs("celebrity", "cloze", "img", src(small_bench), 5)[0]
    assert doc["answer"] == "actor"
    assert docs.doc_to_body(doc) == ("<image>\nThis person works as a [Blank].\n"
                                     "Please **ONLY** provide the correct answer that should replace the [Blank].")


def test_test_set_keeps_forget_ids_and_chooses_image_by_id(small_bench):
    ds = docs.build_docs("test", "gen", "img", src(small_bench), 5)
    assert {d["ID"] for d in ds} == {"002"}
    expected = int(hashlib.sha256(b"002").hexdigest(), 16) % 3
    assert ds[0]["image_index"] == expected
    assert docs.doc_to_image(ds[0])[0].getpixel((0, 0)) == (expected * 40, 0, 0)


def test_rgba_palette_grayscale_are_converted(tmp_path):
    rows = [eval_row(f"00{i}", f"P {i}", "doctor", png_bytes((10, 20, 30), mode=m))
            for i, m in enumerate(["RGBA", "P", "L"], start=1)]
    write_config(tmp_path, "Retain_Set", rows)
    ds = docs.build_docs("celebrity", "cls", "img", src(tmp_path), 5)
    modes = [docs.doc_to_image(d)[0].mode for d in ds]
    assert modes == ["RGB", "RGB", "RGB"]


def _bad(tmp_path, mutate, config="Retain_Set"):
    rows = [eval_row("001", "Ann Lee", "doctor"), eval_row("002", "Bo Ruiz", "painter")]
    mutate(rows[1])
    write_config(tmp_path, config, rows)
    return src(tmp_path)


@pytest.mark.parametrize("mutate,field,message", [
    (lambda r: r.update(image={"bytes": b"not a png at all", "path": None}), "image", "unreadable image"),
    (lambda r: r.update(image=None), "image", "missing image"),
    (lambda r: r.update(image={"bytes": None, "path": "../../etc/passwd"}), "image", "escapes"),
    (lambda r: r.update(image={"bytes": None, "path": "/etc/hostname"}), "image", "absolute"),
    (lambda r: r["Classification_Task"]["Image_Textual_Questions"][0].update(Correct_Answer="E"),
     "Classification_Task[0].Correct_Answer", "not one of the option keys"),
    (lambda r: r["Classification_Task"]["Image_Textual_Questions"][0].update(
        Options={"A": None, "B": None, "C": None, "D": None}), "Classification_Task[0].Options", "empty option list"),
])
def test_bad_rows_name_config_row_and_field(tmp_path, mutate, field, message):
    source = _bad(tmp_path, mutate)
    with pytest.raises(SchemaError) as err:
        docs.build_docs("celebrity", "cls", "img", source, 5)
    text = str(err.value)
    assert "Retain_Set" in text and "row 1 (ID '002')" in text and f"field {field}" in text and message in text
    assert err.value.row == 1 and err.value.config == "Retain_Set"


def test_row_without_classification_task(tmp_path):
    source = _bad(tmp_path, lambda r: r.update(Classification_Task=None))
    with pytest.raises(SchemaError, match=r"row 1 \(ID '002'\), field Classification_Task: missing"):
        docs.build_docs("celebrity", "cls", "txt", source, 5)


def test_image_path_inside_directory_is_read(tmp_path):
    (tmp_path / "Retain_Set" / "img").mkdir(parents=True)
    (tmp_path / "Retain_Set" / "img" / "p.png").write_bytes(png_bytes((1, 2, 3)))
    source = _bad(tmp_path, lambda r: r.update(image={"bytes": None, "path": "img/p.png"}))
    ds = docs.build_docs("celebrity", "cls", "img", source, 5)
    assert docs.doc_to_image(ds[1])[0].getpixel((0, 0)) == (1, 2, 3)


def test_ft_data_given_as_evaluation_config(tmp_path):
    write_config(tmp_path, "ft_Data", [{"image": {"bytes": png_bytes(), "path": None},
                                        "metadata": json.dumps([{"ID": "001", "Question": "q", "Answer": "a"}])}])
    (tmp_path / "ft_Data").rename(tmp_path / "Retain_Set")
    with pytest.raises(SchemaError, match="ft_Data fine-tuning schema"):
        docs.build_docs("celebrity", "cls", "img", src(tmp_path), 5)


def test_missing_configuration_lists_what_is_there(small_bench):
    import shutil
    shutil.rmtree(small_bench / "Test_Set")
    with pytest.raises(FileNotFoundError, match=r"no Test_Set/train-\*\.parquet.*'Full_Set'"):
        docs.build_docs("test", "cls", "img", src(small_bench), 5)


def test_forget_ratio_and_source_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("MLLMU_FORGET_RATIO", raising=False)
    monkeypatch.delenv("MLLMU_SOURCE", raising=False)
    assert resolve_forget_ratio(None) == 5
    monkeypatch.setenv("MLLMU_FORGET_RATIO", "15")
    assert resolve_forget_ratio(None) == 15 and resolve_forget_ratio("10") == 10
    with pytest.raises(ValueError, match=r"forget_ratio must be one of \(5, 10, 15\)"):
        resolve_forget_ratio(7)
    assert resolve_source(None) == Source("hub", "MLLMMU/MLLMU-Bench")
    monkeypatch.setenv("MLLMU_SOURCE", str(tmp_path))
    assert resolve_source(None) == Source("local", str(tmp_path.resolve()))
    assert resolve_source("hub:me/fork") == Source("hub", "me/fork")
    with pytest.raises(FileNotFoundError, match="neither 'hub'"):
        resolve_source(str(tmp_path / "nope"))


def test_wrong_test_set_ids_are_an_error(small_bench):
    write_config(small_bench, "forget_5", [eval_row("777", "No One", "spy")])
    with pytest.raises(SchemaError, match=r"the forget profiles \['777'\] have no row"):
        docs.build_docs("test", "gen", "txt", src(small_bench), 5)


def test_broken_image_does_not_break_text_only_tasks(tmp_path):
    source = _bad(tmp_path, lambda r: r.update(image={"bytes": b"junk", "path": None}))
    assert len(docs.build_docs("celebrity", "cls", "txt", source, 5)) == 2


def test_set_row_builder_is_consistent():
    row = make_test_set_row(eval_row("001", "A B", "x"), [png_bytes()])
    assert "image" not in row and len(row["images"]) == 1


def test_settings_errors_name_their_origin(monkeypatch):
    from mllmu_tasks.sources import SettingsError, resolve_settings

    monkeypatch.delenv("MLLMU_FORGET_RATIO", raising=False)
    monkeypatch.delenv("MLLMU_SOURCE", raising=False)
    with pytest.raises(SettingsError, match="unknown --metadata key 'forget_ratios': did you mean 'forget_ratio'"):
        resolve_settings({"source": "mini", "forget_ratios": 15})
    with pytest.raises(SettingsError, match=r"got 7 \(from --metadata forget_ratio\)"):
        resolve_settings({"forget_ratio": 7})
    monkeypatch.setenv("MLLMU_FORGET_RATIO", "ten")
    with pytest.raises(SettingsError, match=r"got 'ten' \(from \$MLLMU_FORGET_RATIO\)"):
        resolve_settings({"source": "mini"})
    monkeypatch.delenv("MLLMU_FORGET_RATIO")
    settings = resolve_settings({"source": "mini", "forget_ratio": 10.0, "pretrained": "x", "version": 1.0})
    assert settings.forget_ratio == 10 and settings.source.kind == "local"
