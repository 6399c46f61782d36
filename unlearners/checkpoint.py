"""Writing the finished model: merged weights (safetensors), processor, generation config, model card.

The run writes into a hidden staging folder beside the output
(``.<name>.partial``) and renames it into place only when everything is
written, so a run that dies (or stops on a NaN loss) leaves no directory
that looks like a complete checkpoint. An existing output is replaced only
with ``overwrite``. Trainer checkpoints (``--save_strategy steps``) live in
``.<name>.partial/trainer/checkpoint-N`` and survive a failed or killed run
until the final output is published (``--resume_from_checkpoint`` continues
from them); a publish interrupted between its two renames is undone at the
next start (:func:`recover_publish`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CARD_NAME = "README.md"


def staging_dir(output_dir: str | Path) -> Path:
    """The hidden staging folder of an output directory (the same on every rank)."""
    out = Path(output_dir).resolve()
    return out.parent / f".{out.name}.partial"


def check_output_dir(output_dir: str | Path, overwrite: bool) -> None:
    """Refuse to start when the output exists and is not empty, unless ``overwrite``.

    Raises:
        FileExistsError: names the directory and the flag to pass.
    """
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")


def trainer_checkpoints(output_dir: str | Path) -> list[Path]:
    """The Trainer checkpoints a run of ``output_dir`` saved (``checkpoint-N``), oldest first."""
    folder = staging_dir(output_dir) / "trainer"
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def prepare_staging(output_dir: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """The staging folder: kept as it is to resume, otherwise fresh.

    Raises:
        FileExistsError: a stale staging folder holds Trainer checkpoints and
            neither ``resume`` nor ``overwrite`` says what to do with them.
    """
    stage = staging_dir(output_dir)
    if resume:
        stage.mkdir(parents=True, exist_ok=True)
        return stage
    saved = trainer_checkpoints(output_dir)
    if saved and not overwrite:
        raise FileExistsError(f"{stage} holds the checkpoints of an unfinished run ({', '.join(p.name for p in saved)}): "
                              f"pass --resume_from_checkpoint to continue it, or --overwrite to start over")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    return stage


def discard_staging(output_dir: str | Path) -> bool:
    """After a failed run: remove the staging folder unless it holds checkpoints to resume from.

    Returns whether it was kept.
    """
    if trainer_checkpoints(output_dir):
        return True
    shutil.rmtree(staging_dir(output_dir), ignore_errors=True)
    return False


def recover_publish(output_dir: str | Path) -> bool:
    """Undo a publish interrupted between its renames: the old output is back in place. Returns whether it was."""
    out = Path(output_dir).resolve()
    old = out.parent / f".{out.name}.old"
    if old.is_dir() and not out.exists():
        old.rename(out)
        return True
    return False


def publish(output_dir: str | Path) -> Path:
    """Move the complete staging folder into place, replacing an old output last."""
    out, stage = Path(output_dir).resolve(), staging_dir(output_dir)
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    stage.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def write_json_atomic(path: str | Path, obj, default=None) -> Path:
    """Write ``obj`` as indented JSON through a ``.partial`` file renamed into place (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(obj, indent=2, default=default), encoding="utf-8")
    tmp.replace(path)
    return path


def merged(model):
    """The plain ``transformers`` model: LoRA adapters merged into the weights (``merge_and_unload``)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


#: Where ``--save_adapter`` puts the unmerged LoRA adapter inside a checkpoint folder.
ADAPTER_DIR = "adapter"


def save_model(model, processor, folder: Path, adapter: bool = False) -> None:
    """Merged weights as ``model.safetensors`` (+ config, generation config) and the processor; with
    ``adapter`` and a PEFT model, first the unmerged adapter (``adapter_config.json``,
    ``adapter_model.safetensors``) in ``folder/adapter``.

    Raises:
        ValueError: ``adapter`` asked for a model without LoRA adapters.
    """
    if adapter:
        if not hasattr(model, "peft_config"):
            raise ValueError("--save_adapter needs LoRA training (--lora true): full fine-tuning has no adapter")
        model.save_pretrained(folder / ADAPTER_DIR, safe_serialization=True)
    model = merged(model)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)


def model_card(settings: dict) -> str:
    """A model card (``README.md``): what was trained from what, how, and how to score it."""
    rows = "\n".join(f"| {k} | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in settings.items())
    base = settings.get("base_model", "")
    return f"""---
library_name: transformers
base_model: {base}
tags: [mllmu-bench, machine-unlearning, {settings.get("method", "")}]
---

# {settings.get("method", "")} on MLLMU-Bench ({settings.get("modality", "")})

Produced by `mllmu-unlearn` (package `unlearners` {settings.get("package_version", "")}) from `{base}`.

| setting | value |
|---|---|
{rows}

Score it on the MLLMU-Bench suite:

```bash
mllmu-eval --model mllmu-vlm --model_args pretrained=<this folder> --tasks mllmu \\
    --metadata '{{"source": "{settings.get("source", "hub")}", "forget_ratio": {settings.get("forget_ratio", 5)}}}'
```
"""


def write_card(folder: Path, settings: dict) -> None:
    """Write :func:`model_card` and the same settings as ``unlearn_config.json``."""
    (folder / CARD_NAME).write_text(model_card(settings), encoding="utf-8")
    (folder / "unlearn_config.json").write_text(json.dumps(settings, indent=2, default=str), encoding="utf-8")
