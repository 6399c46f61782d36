"""Checks outside the lm-eval suite: the portrait-swap identity check and generation ROUGE-L on training pairs."""

from __future__ import annotations

from pathlib import Path

import datasets
import torch

from mllmu_tasks.images import checked_image_bytes
from mllmu_tasks.metrics import rouge
from mllmu_tasks.mini.generator import write_hub_layout
from mllmu_tasks.schema import features_for, forget_config
from mllmu_tasks.sources import Source, image_root, load_config

from .collator import user_turn
from .data import Example


def swapped_portraits_mirror(source: Source, forget_ratio: int, out_dir: str | Path) -> Path:
    """A hub-layout copy of ``forget_X`` where row i shows row (i + 1)'s portrait (a derangement).

    Scoring ``mllmu_forget_cls_img`` on it tells whether the model identifies
    people from their faces: accuracy should fall to about chance (25 %).

    Raises:
        ValueError: fewer than two forget profiles (nothing to swap).
    """
    config = forget_config(forget_ratio)
    rows = load_config(config, source).to_list()
    if len(rows) < 2:
        raise ValueError(f"{config} has {len(rows)} profile(s): the identity check needs at least 2")
    cells = [{"bytes": checked_image_bytes(r["image"], root=image_root(source, config), config=config, row=i,
                                           field="image", profile_id=r["ID"]), "path": None}
             for i, r in enumerate(rows)]
    for i, row in enumerate(rows):
        row["image"] = cells[(i + 1) % len(rows)]
    return write_hub_layout({config: datasets.Dataset.from_list(rows, features=features_for(config))}, out_dir)


@torch.no_grad()
def generation_rouge_l(checkpoint: str | Path, examples: list[Example], batch_size: int = 32,
                       max_new_tokens: int = 50, device: str = "cpu") -> float:
    """Mean ROUGE-L F (0-1) of greedy answers to the examples' questions against their answers.

    Prompts are the model's chat template around the bare question (as in
    training), text-only or with the example's image.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(checkpoint).to(device).eval()
    processor = AutoProcessor.from_pretrained(checkpoint)
    scores = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        prompts = [processor.apply_chat_template([user_turn(ex)], add_generation_prompt=True) for ex in chunk]
        images = [[ex.image] for ex in chunk] if chunk[0].image is not None else None
        enc = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt").to(device)
        out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens)
        answers = processor.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        scores += [rouge(answer.strip(), ex.answer)["rougeL"] for answer, ex in zip(answers, chunk)]
    return sum(scores) / len(scores)
