"""Run settings: model, data and training arguments (plus the method's own config dataclass).

Training arguments are ``transformers.TrainingArguments`` (every Trainer
flag works: ``--learning_rate``, ``--num_train_epochs``, ``--bf16``,
``--gradient_checkpointing``, ``--max_steps``, ...) with the released
MLLMU-Bench defaults: lr 2e-5, 1 epoch, batch 4. ``output_dir`` is where the
finished checkpoint appears (atomically); the Trainer itself writes into a
staging folder beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class ModelArguments:
    """The model to start from and what of it trains."""

    model: str = field(metadata={"help": "checkpoint to start from: a hub id or a local directory"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code (off: safe default)"})
    reference_model: str | None = field(default=None, metadata={
        "help": "frozen reference for KL_Min/NPO; default: the starting model itself (the vanilla model)"})
    lora: bool = field(default=True, metadata={"help": "train LoRA adapters and merge them (else full fine-tuning)"})
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    save_adapter: bool = field(default=False, metadata={
        "help": "with --lora: also save the unmerged adapter in <output_dir>/adapter (PEFT format) beside the merged "
                "weights, for serving many adapters on one base model"})
    freeze_vision_tower: bool = field(default=True, metadata={"help": "full fine-tuning: keep the vision tower frozen"})
    freeze_projector: bool = field(default=False, metadata={"help": "full fine-tuning: keep the projector frozen"})


@dataclass
class DataArguments:
    """Which data: source, forget ratio, modality, and (fine-tuning) which profiles."""

    source: str = field(default="hub", metadata={
        "help": "'hub', 'hub:<repo>', 'mini', a local hub-layout directory, or an ft_Data .jsonl file"})
    splits: str | None = field(default=None, metadata={"help": "JSON splits file; default: the source's forget_X/retain_Y"})
    forget_ratio: int = field(default=5, metadata={"help": "forget ratio in percent: 5, 10 or 15"})
    modality: str = field(default="image+text", metadata={"help": "'image+text' or 'text-only' (unimodal)"})
    train_subset: str = field(default="all", metadata={
        "help": "finetune: which profiles ('all' = the vanilla model, 'retain' = a retain-only reference)"})


@dataclass
class UnlearnTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with MLLMU-Bench's released defaults and an overwrite switch."""

    learning_rate: float = 2e-5
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 4
    logging_steps: float = 1
    save_strategy: str = "no"
    remove_unused_columns: bool = False
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output_dir"})
    protocol: str = field(default="corrected", metadata={
        "help": "corrected (answer-only losses, paired forget/retain batches) or released (the authors' scripts: "
                "loss on every non-pad token, their text layout, GradDiff/KL_Min in whole passes, "
                "batch-mean NPO): see unlearners.released", "choices": ["corrected", "released"]})
