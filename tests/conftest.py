"""Shared fixtures: offline settings and small hand-made MLLMU rows."""

import io
import json
import os
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from mllmu_tasks import schema  # noqa: E402

SHARED_FT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mllmu-bench-ft"


def png_bytes(color=(200, 30, 30), mode="RGB", size=(16, 16)) -> bytes:
    """PNG bytes of a plain image in ``mode``."""
    img = Image.new("RGB", size, color).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def mc(question, options, correct):
    return {"Question": question, "Options": dict(zip("ABCD", options)), "Correct_Answer": correct}


def eval_row(pid: str, name: str, job: str, image: bytes | None = None) -> dict:
    """A valid evaluation row: 1+1 classification, 1+1 generation, 1+1 cloze questions."""
    jobs = [job, "nurse", "pilot", "chef"]
    return {
        "image": {"bytes": image if image is not None else png_bytes(), "path": None},
        "ID": pid, "Directory": name.replace(" ", "_"),
        "question": "What is the name of this person?", "answer": f"This person's name is {name}.",
        "biography": json.dumps({"name": name, "job": job}),
        "Classification_Task": {
            "Image_Textual_Questions": [mc("What is this person's job?", jobs, "A")],
            "Pure_Text_Questions": [mc(f"What is {name}'s job?", jobs[::-1], "D")],
        },
        "Generation_Task": [
            {"Question": "What does this person do?", "Ground_Truth": f"This person is a {job}.",
             "Type": "Image_Textual"},
            {"Question": f"What does {name} do?", "Ground_Truth": f"{name} is a {job}.", "Type": "Pure_Text"},
        ],
        "Mask_Task": [
            {"Question": "This person works as a __.", "Ground_Truth": job, "Type": "Image_Textual"},
            {"Question": f"{name} works as a __.", "Ground_Truth": job, "Type": "Pure_Text"},
        ],
    }


def make_test_set_row(row: dict, images: list[bytes]) -> dict:
    out = {k: v for k, v in row.items() if k != "image"}
    out["images"] = [{"bytes": b, "path": None} for b in images]
    return out


def write_config(root: Path, config: str, rows: list[dict], features=None) -> Path:
    """Write rows as ``<root>/<config>/train-00000-of-00001.parquet``."""
    folder = root / config
    folder.mkdir(parents=True, exist_ok=True)
    ds = datasets.Dataset.from_list(rows, features=features if features is not None else schema.features_for(config))
    # pyarrow directly: datasets' writer stats relative image paths against the cwd
    pq.write_table(ds.data.table, str(folder / "train-00000-of-00001.parquet"))
    return folder


@pytest.fixture
def small_bench(tmp_path):
    """A hub-layout directory: 3 profiles, forget_5 = {'002'}, a Test_Set with 3 images per row."""
    return write_small_bench(tmp_path)


def write_small_bench(tmp_path: Path) -> Path:
    """Write the :func:`small_bench` configurations under ``tmp_path``."""
    rows = [eval_row("001", "Ann Lee", "doctor"), eval_row("002", "Bo Ruiz", "painter", png_bytes((0, 0, 255))),
            eval_row("003", "Cy Oto", "baker")]
    write_config(tmp_path, "forget_5", [rows[1]])
    write_config(tmp_path, "retain_95", [rows[0], rows[2]])
    write_config(tmp_path, "Full_Set", rows)
    write_config(tmp_path, "Retain_Set", [eval_row("900", "Famous Person", "actor")])
    write_config(tmp_path, "Test_Set", [make_test_set_row(r, [png_bytes((i * 40, 0, 0)) for i in range(3)]) for r in rows])
    write_config(tmp_path, "ft_Data", [{"image": r["image"], "metadata": json.dumps(
        [{"ID": r["ID"], "Question": "What is this person's job?", "Answer": r["Generation_Task"][0]["Ground_Truth"]}])}
        for r in rows])
    return tmp_path
