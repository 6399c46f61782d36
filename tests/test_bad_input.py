"""Bad input that must not change a score silently (issue 13): each case's exact value or error asserted."""

import io
import json

from PIL import Image

from conftest import eval_row, write_config
from mllmu_tasks import docs
from mllmu_tasks.images import to_rgb
from mllmu_tasks.sources import resolve_source


def i16_png(value: int) -> bytes:
    """A 16-bit grayscale PNG (mode I;16) of one value."""
    buf = io.BytesIO()
    Image.new("I;16", (8, 8), value).save(buf, format="PNG")
    return buf.getvalue()


def test_16_bit_grayscale_is_scaled_not_whitened(tmp_path):
    # PIL's convert("RGB") clips 16-bit pixels at 255: mid-gray 32768 would become white (255)
    assert Image.open(io.BytesIO(i16_png(32768))).convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    rows = [eval_row("001", "Ann Lee", "doctor", i16_png(32768)), eval_row("002", "Bo Ruiz", "painter", i16_png(0))]
    write_config(tmp_path, "forget_5", rows[:1])
    write_config(tmp_path, "retain_95", rows[1:])
    write_config(tmp_path, "ft_Data", [{"image": r["image"], "metadata": json.dumps(
        [{"ID": r["ID"], "Question": "What is this person's job?", "Answer": "A job."}])} for r in rows])
    source = resolve_source(str(tmp_path))
    doc = docs.build_docs("forget", "cls", "img", source, 5)[0]
    # scoring: 32768 / 65535 * 255 = 127.5 -> 128
    assert docs.doc_to_image(doc)[0].getpixel((3, 3)) == (128, 128, 128)
    # training reads the same pixels
    from unlearners.data import load_examples

    examples = {e.profile_id: e for e in load_examples(str(tmp_path), "all", "image+text", forget_ratio=5)}
    assert examples["001"].image.getpixel((3, 3)) == (128, 128, 128)
    assert examples["002"].image.getpixel((3, 3)) == (0, 0, 0)


def test_other_high_depth_modes():
    assert to_rgb(Image.new("I", (2, 2), 65535)).getpixel((0, 0)) == (255, 255, 255)  # 16-bit data held as I
    assert to_rgb(Image.new("I", (2, 2), 100)).getpixel((0, 0)) == (100, 100, 100)    # 8-bit data held as I
    assert to_rgb(Image.new("F", (2, 2), 0.25)).getpixel((0, 0)) == (64, 64, 64)      # 0.25 * 255 = 63.75
    assert to_rgb(Image.new("F", (2, 2), 300.0)).getpixel((0, 0)) == (255, 255, 255)  # out of range: clipped
    rgba = Image.new("RGBA", (2, 2), (10, 20, 30, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (10, 20, 30)


def test_parquet_without_the_hugging_face_metadata_reads_the_same(tmp_path):
    """A pandas round trip drops the features metadata (images become plain structs): same documents, same pairs."""
    import pandas as pd

    from mllmu_tasks import MINI_DATA_DIR
    from unlearners.data import load_examples

    for config in ("Full_Set", "forget_10", "retain_90", "Test_Set", "ft_Data"):
        (tmp_path / config).mkdir()
        frame = pd.read_parquet(f"{MINI_DATA_DIR}/{config}/train-00000-of-00001.parquet")
        frame.to_parquet(tmp_path / config / "train-00000-of-00001.parquet")
    mini, copy = resolve_source("mini"), resolve_source(str(tmp_path))
    for set_name, kind in (("test", "cls"), ("forget", "cloze")):
        a, b = docs.build_docs(set_name, kind, "img", mini, 10), docs.build_docs(set_name, kind, "img", copy, 10)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert x["question"] == y["question"] and x["answer"] == y["answer"]
            assert list(docs.doc_to_image(x)[0].getdata()) == list(docs.doc_to_image(y)[0].getdata())
    pairs_a = load_examples("mini", "forget", "image+text", forget_ratio=10)
    pairs_b = load_examples(str(tmp_path), "forget", "image+text", forget_ratio=10)
    assert [(e.question, e.answer) for e in pairs_a] == [(e.question, e.answer) for e in pairs_b]
    assert list(pairs_a[0].image.getdata()) == list(pairs_b[0].image.getdata())


def test_results_that_cannot_be_written_fail_the_run(tmp_path):
    """lm-eval 0.4.13 logs a warning and exits 0 when it cannot write the results (full disk, bad folder)."""
    import subprocess
    import sys

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", "dummy", "--tasks",
                           "mllmu-zs_forget_cls_txt", "--metadata", json.dumps({"source": "mini"}), "--limit", "1",
                           "--output_path", str(blocker / "out"), "--log_samples"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mllmu-eval: error: results not written: Could not save results aggregated")
    assert "Not a directory" in last or "NotADirectoryError" in last or "FileExistsError" in last


def test_report_names_a_results_file_cut_short(tmp_path, capsys):
    import pytest

    from mllmu_tasks.report_cli import main as report_main

    cut = tmp_path / "results_2026.json"
    cut.write_text('{"results": {"mllmu_forget_cls_img": {"acc,none": 0.')
    with pytest.raises(SystemExit) as err:
        report_main([str(cut), "--out", str(tmp_path / "rep")])
    assert err.value.code == 2 and f"{cut}: not a complete results JSON" in capsys.readouterr().err


def _bench(root, forget, retain, test_ids, ft_ids=None):
    """A small hub-layout copy: forget/retain/Test_Set/ft_Data rows of the given profile IDs."""
    from conftest import make_test_set_row, png_bytes

    def row(pid):
        return eval_row(pid, f"Person {pid}", "nurse")

    write_config(root, "forget_5", [row(p) for p in forget])
    write_config(root, "retain_95", [row(p) for p in retain])
    write_config(root, "Test_Set", [make_test_set_row(row(p), [png_bytes()]) for p in test_ids])
    write_config(root, "ft_Data", [{"image": {"bytes": png_bytes(), "path": None}, "metadata": json.dumps(
        [{"ID": p, "Question": "Q?", "Answer": "A."}])} for p in (ft_ids or forget + retain)])
    return resolve_source(str(root))


def test_integrity_of_profile_ids(tmp_path):
    import pytest

    from mllmu_tasks.schema import SchemaError
    from unlearners.data import load_examples

    source = _bench(tmp_path / "dup", ["001", "001"], ["002"], ["001"])
    with pytest.raises(SchemaError, match=r"forget_5 .*row 1 \(ID '001'\), field ID: ID '001' again \(first in row 0\)"):
        docs.build_docs("forget", "gen", "txt", source, 5)
    source = _bench(tmp_path / "test", ["001", "002"], ["003"], ["001", "003"])
    with pytest.raises(SchemaError, match=r"Test_Set .*field ID: the forget profiles \['002'\] have no row"):
        docs.build_docs("test", "gen", "txt", source, 5)
    source = _bench(tmp_path / "both", ["001", "002"], ["002", "003"], ["001", "002"], ft_ids=["001", "002", "003"])
    with pytest.raises(SchemaError, match=r"profiles \['002'\] are in both forget_5 and retain_95"):
        docs.build_docs("retain", "gen", "txt", source, 5)
    with pytest.raises(SchemaError, match=r"profiles \['002'\] are in both forget_5 and retain_95"):
        load_examples(str(tmp_path / "both"), "forget", "text-only", forget_ratio=5)
    _bench(tmp_path / "twice", ["001"], ["002"], ["001"], ft_ids=["001", "002", "001"])
    with pytest.raises(SchemaError, match=r"ft_Data .*row 2 \(ID '001'\), field metadata: profile '001' again"):
        load_examples(str(tmp_path / "twice"), "all", "text-only")


def test_integer_ids_in_ft_data_are_refused():
    import pytest

    from mllmu_tasks.ft_data import parse_metadata
    from mllmu_tasks.schema import SchemaError

    with pytest.raises(SchemaError, match=r"row 4, field metadata\[0\].ID: ID 1 is a int; MLLMU IDs are strings"):
        parse_metadata(json.dumps([{"ID": 1, "Question": "Q?", "Answer": "A."}]), row=4)


def test_settings_refused_before_any_model_loads(tmp_path):
    import subprocess
    import sys

    def mllmu_eval(*args):
        proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", *args], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        return proc.returncode, proc.stderr.strip().splitlines()[-1]

    meta = ["--metadata", json.dumps({"source": "mini"})]
    code, last = mllmu_eval("--model", "mllmu-vlm", "--model_args", f"pretrained={tmp_path}/none", "--tasks",
                            "mllmu_forget_cls_txt", *meta)
    assert code == 2 and last == f"mllmu-eval: error: --model_args pretrained={tmp_path}/none: no such model folder"
    (tmp_path / "no-template").mkdir()
    (tmp_path / "no-template" / "tokenizer_config.json").write_text("{}")
    code, last = mllmu_eval("--model", "mllmu-vlm", "--model_args", f"pretrained={tmp_path}/no-template", "--tasks",
                            "mllmu_forget_cls_txt", "--apply_chat_template", *meta)
    assert code == 2 and last.startswith("mllmu-eval: error: --apply_chat_template: ") and "no chat template" in last
    code, last = mllmu_eval("--model", "dummy", "--tasks", "mllmu_forget_cls_txt", "--num_fewshot", "3", *meta)
    assert code == 2 and last.startswith("mllmu-eval: error: --num_fewshot: the MLLMU tasks build their own")
    code, last = mllmu_eval("--model", "dummy", "--tasks", "mllmu_forget_cls_txt", "--metadata",
                            json.dumps({"source": "mini", "forget_ratio": 10.9}))
    assert code == 2 and "forget_ratio must be one of (5, 10, 15) (percent), got 10.9" in last


def test_an_oversized_image_is_reduced_once_and_a_bomb_is_named(tmp_path, monkeypatch):
    import time

    import pytest

    from mllmu_tasks.images import MAX_SIDE
    from mllmu_tasks.schema import SchemaError

    big = io.BytesIO()
    Image.new("RGB", (10000, 10000), (10, 200, 30)).save(big, format="JPEG", quality=50)
    rows = [eval_row("001", "Ann Lee", "doctor", big.getvalue()), eval_row("002", "Bo Ruiz", "painter")]
    write_config(tmp_path, "forget_5", rows[:1])
    write_config(tmp_path, "retain_95", rows[1:])
    start = time.perf_counter()
    doc = docs.build_docs("forget", "cls", "img", resolve_source(str(tmp_path)), 5)[0]
    image = docs.doc_to_image(doc)[0]
    seconds = time.perf_counter() - start
    assert image.size == (MAX_SIDE, MAX_SIDE) and image.getpixel((5, 5))[1] > 150  # reduced, still green
    print(f"10000 x 10000 JPEG: documents + decode in {seconds:.2f} s")
    # over PIL's decompression-bomb limit: an error naming where the image is, not a bare traceback
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(SchemaError, match=r"forget_5.*row 0 \(ID '001'\), field image: unreadable image "
                                          r"\(DecompressionBombError"):
        docs.row_docs(rows[0], 0, set_name="forget", config="forget_5", kind="cls", modality="img",
                      source=resolve_source(str(tmp_path)))


def test_unreadable_empty_and_mismatched_parquet(tmp_path):
    import pyarrow.parquet as pq
    import pytest

    from mllmu_tasks.schema import SchemaError
    from mllmu_tasks.sources import load_config

    rows = [eval_row("001", "Ann Lee", "doctor"), eval_row("002", "Bo Ruiz", "painter")]
    folder = write_config(tmp_path / "zero", "forget_5", rows)
    (folder / "train-00000-of-00001.parquet").write_bytes(b"")
    with pytest.raises(SchemaError, match=r"forget_5 .*train-00000-of-00001.parquet is not a readable parquet file"):
        load_config("forget_5", resolve_source(str(tmp_path / "zero")))
    folder = write_config(tmp_path / "norows", "forget_5", rows)
    table = pq.read_table(folder / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 0), folder / "train-00000-of-00001.parquet")
    with pytest.raises(SchemaError, match=r"forget_5 .*: no rows"):
        load_config("forget_5", resolve_source(str(tmp_path / "norows")))
    folder = write_config(tmp_path / "shards", "forget_5", rows)
    pq.write_table(table.drop(["biography"]), folder / "train-00001-of-00002.parquet")
    with pytest.raises(SchemaError, match=r"forget_5 .*shards .* have different columns or types"):
        load_config("forget_5", resolve_source(str(tmp_path / "shards")))
    # every row without generation questions: the task cannot exist; say which questions are missing
    for row in rows:
        row["Generation_Task"] = []
    write_config(tmp_path / "nogen", "forget_5", rows)
    write_config(tmp_path / "nogen", "retain_95", [eval_row("003", "Cy Oto", "baker")])
    with pytest.raises(SchemaError, match=r"forget_5 .*: no gen question of modality image\+text in any row"):
        docs.build_docs("forget", "gen", "img", resolve_source(str(tmp_path / "nogen")), 5)


def test_judge_url_without_scheme_is_one_line(capsys):
    import pytest

    from mllmu_tasks.judge import main

    with pytest.raises(SystemExit) as err:
        main(["--url", "localhost:8000/v1", "--model", "m", "samples.jsonl"])
    assert err.value.code == 2
    assert "judge URL must start with http:// or https://, got 'localhost:8000/v1'" in capsys.readouterr().err


def test_training_source_errors_name_the_flag_and_the_parent():
    import pytest

    from mllmu_tasks import MINI_DATA_DIR
    from unlearners.data import load_examples

    with pytest.raises(FileNotFoundError, match=r"MLLMU source '/nowhere' \(from --source\)"):
        load_examples("/nowhere", "all", "text-only")
    with pytest.raises(FileNotFoundError, match=r"is the forget_5 configuration folder itself: give its parent "):
        load_examples(f"{MINI_DATA_DIR}/forget_5", "all", "text-only")


def test_a_fifth_option_is_kept(tmp_path):
    import datasets

    from mllmu_tasks import metrics, schema

    row = eval_row("001", "Ann Lee", "doctor")
    row["Classification_Task"]["Pure_Text_Questions"][0]["Options"]["E"] = "astronaut"
    row["Classification_Task"]["Pure_Text_Questions"][0]["Correct_Answer"] = "E"
    features = schema.features_for("forget_5").copy()
    options = {k: datasets.Value("string") for k in "ABCDE"}
    question = {"Question": datasets.Value("string"), "Options": options, "Correct_Answer": datasets.Value("string")}
    features["Classification_Task"] = {"Image_Textual_Questions": datasets.List(question),
                                       "Pure_Text_Questions": datasets.List(question)}
    img_q = row["Classification_Task"]["Image_Textual_Questions"][0]
    img_q["Options"]["E"] = None  # the wider schema: null where a question has four options
    write_config(tmp_path, "forget_5", [row], features=features)
    write_config(tmp_path, "retain_95", [eval_row("002", "Bo Ruiz", "painter")])
    source = resolve_source(str(tmp_path))
    doc = docs.build_docs("forget", "cls", "txt", source, 5)[0]
    assert doc["option_keys"] == ["A", "B", "C", "D", "E"] and doc["answer_text"] == "astronaut"
    assert docs.doc_to_released_prompt(doc).endswith("\nD: doctor\nE: astronaut\n"
                                                     "Just give ONE letter representing the answer directly.\nASSISTANT:")
    assert metrics.process_results(doc, [" E"])["acc"] == 1.0
    assert docs.build_docs("forget", "cls", "img", source, 5)[0]["option_keys"] == ["A", "B", "C", "D"]


def test_non_latin_ground_truth_scores_0_with_a_warning(caplog):
    from mllmu_tasks import metrics

    with caplog.at_level("WARNING"):
        scores = metrics.rouge("東京に住んでいる", "東京に住んでいる")
        metrics.rouge("東京に住んでいる。", "東京に住んでいる")
    assert scores == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}  # rouge_score's tokenizer: a-z, 0-9 only
    assert caplog.text.count("has no token rouge_score counts") == 1  # once per ground truth


def test_the_suite_is_indexed_once(tmp_path):
    """The pre-load checks build tasks with the suite's own task manager: no "overrides existing task" noise."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", "dummy", "--tasks",
                           "mllmu_forget_gen_txt", "--metadata", json.dumps({"source": "mini"}), "--limit", "1"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "overrides existing task" not in proc.stderr


def test_cmyk_images_score_with_log_samples(tmp_path):
    """lm-eval's --log_samples saves each document image as PNG to hash it: CMYK failed after the whole run."""
    import subprocess
    import sys

    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 128, 128, 0)).save(buf, format="JPEG")
    rows = [eval_row("001", "Ann Lee", "doctor", buf.getvalue()), eval_row("002", "Bo Ruiz", "painter")]
    write_config(tmp_path / "bench", "forget_5", rows)
    write_config(tmp_path / "bench", "retain_95", [eval_row("003", "Cy Oto", "baker")])
    doc = docs.build_docs("forget", "gen", "img", resolve_source(str(tmp_path / "bench")), 5)[0]
    original = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")  # the released conversion
    assert list(docs.doc_to_image(doc)[0].getdata()) == list(original.getdata())
    model = build_tiny_vlm(tmp_path / "model", size="test")
    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", "mllmu-vlm", "--model_args",
                           f"pretrained={model}", "--device", "cpu", "--tasks", "mllmu_forget_gen_img", "--metadata",
                           json.dumps({"source": str(tmp_path / "bench")}), "--log_samples", "--output_path",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "out").rglob("samples_mllmu_forget_gen_img_*.jsonl"))


def test_bad_data_is_reported_before_the_model_loads(tmp_path):
    """mllmu-eval builds the selected tasks first: a corrupt image is named before any model would load
    (the model folder here is empty: loading it would fail differently)."""
    import subprocess
    import sys

    rows = [eval_row("001", "Ann Lee", "doctor", b"not an image"), eval_row("002", "Bo Ruiz", "painter")]
    write_config(tmp_path / "bench", "forget_5", rows)
    write_config(tmp_path / "bench", "retain_95", [eval_row("003", "Cy Oto", "baker")])
    (tmp_path / "empty-model").mkdir()
    proc = subprocess.run([sys.executable, "-m", "mllmu_tasks.cli", "--model", "mllmu-vlm", "--model_args",
                           f"pretrained={tmp_path / 'empty-model'}", "--tasks", "mllmu_forget_gen_img", "--metadata",
                           json.dumps({"source": str(tmp_path / "bench"), "model_family": "llava"})],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert last.startswith("mllmu-eval: error: forget_5") and "row 0 (ID '001'), field image: unreadable image" in last
