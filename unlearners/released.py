"""The released training protocol (``--protocol released``): the authors' fine-tuning and baselines as written.

Source: ``finetune.py``, ``data_process/data_preprocess.py`` and
``baselines/*.py`` of ``franciscoliu/MLLMU-Bench`` at ``0e3098e``
(``RELEASED-PROTOCOL.md`` sections 9-10). What differs from this package's
default (``--protocol corrected``):

- **Text and labels** (:class:`ReleasedCollator`): LLaVA trains on
  ``USER: <image>\\n{question}\\nASSISTANT: {answer}`` (no EOS), Idefics2 on its
  chat template's rendering, stripped, with image splitting off; the labels
  are the input ids with padding set to -100: the loss covers every non-pad
  token (BOS, ``USER:``, image tokens, question), not the answer alone.
- **Passes** (:class:`SequentialPasses`): GradDiff and KL_Min run, each
  epoch, a full pass over the forget set (one optimizer step per batch), then
  a full pass over the retain set; every batch holds one set.
- **Schedule** (:func:`per_epoch_linear_schedule`): GradDiff and KL_Min step
  their linear schedule once per epoch over ``(forget + retain batches) x epochs``
  steps, so the rate stays almost constant; the other methods decay
  linearly every step with no warm-up (the Trainer's default).
- **Optimizer**: ``transformers.AdamW`` defaults of the released scripts
  (epsilon 1e-6, no weight decay) and no gradient clipping, applied where the
  Trainer's own defaults (1e-8, clipping at 1.0) were left unchanged.
- **LoRA**: Gaussian initialisation of the adapters.
- **Losses** (in the method files): KL_Min adds ``KL(p_vanilla || p_theta)``
  summed over every position and the vocabulary, divided by the batch size
  (``batchmean``); NPO compares batch-mean token losses against a reference
  fine-tuned from the *base* model on the retain set only.

Not reproduced: ``prepare_model_for_kbit_training`` (it casts the model to
float32 and turns on gradient checkpointing: pass ``--dtype float32
--gradient_checkpointing`` for the same numerics) and the scripts' unused
``--max_length``.
"""

from __future__ import annotations

import logging
import random

import torch

from mllmu_tasks.family import LLAVA_MODEL_TYPES

from .collator import IGNORE_INDEX, assistant_turn, user_turn
from .data import Example

log = logging.getLogger(__name__)

PROTOCOLS = ("corrected", "released")
#: Methods whose released scripts alternate whole forget and retain passes, scheduler stepped per epoch.
SEQUENTIAL_PASS_METHODS = ("grad_diff", "kl_min")
#: ``transformers.AdamW`` defaults the released scripts use (TrainingArguments defaults: 1e-8, clip 1.0).
RELEASED_ADAM_EPSILON, TRAINER_ADAM_EPSILON = 1e-6, 1e-8
TRAINER_MAX_GRAD_NORM = 1.0


def released_layout(model_type: str | None) -> str:
    """``"llava"`` (plain text layout) or ``"idefics2"`` (chat template) for a checkpoint's ``model_type``.

    Raises:
        ValueError: any other family (the released scripts train LLaVA and Idefics2 only).
    """
    if model_type == "idefics2":
        return "idefics2"
    if model_type in LLAVA_MODEL_TYPES:
        return "llava"
    raise ValueError(f"--protocol released exists for LLaVA and Idefics2 checkpoints (the released scripts train "
                     f"only those); this one is a {model_type!r} model: use --protocol corrected")


#: The methods the authors' scripts implement (vanilla fine-tuning and the paper's four baselines).
RELEASED_METHODS = ("finetune", "ga", "grad_diff", "kl_min", "npo")


def check_released(method_name: str, modality: str, reference_model: str | None) -> None:
    """Settings the released protocol cannot honour, refused before any model loads.

    Raises:
        ValueError: a method the released scripts do not have; text-only
            training (they have none); NPO without ``--reference_model`` (its
            released reference is a retain-only fine-tune of the base model).
    """
    if method_name not in RELEASED_METHODS:
        raise ValueError(f"--protocol released: the released scripts have no {method_name} (they have "
                         f"{', '.join(RELEASED_METHODS)}); use --protocol corrected")
    if modality != "image+text":
        raise ValueError("--protocol released trains image+text pairs only (the released scripts have no text-only "
                         "path); use --protocol corrected for text-only (unimodal) unlearning")
    if method_name == "npo" and not reference_model:
        raise ValueError("--protocol released NPO needs --reference_model: the released reference is the base model "
                         "fine-tuned on the retain set only (mllmu-unlearn --method finetune --train_subset retain "
                         "--protocol released --model BASE ...)")


class ReleasedCollator:
    """Released batches: the released text layout, labels = input ids with padding masked.

    Args:
        processor: the model's processor; ``layout``: :func:`released_layout`.

    Items are ``{stream: Example}`` (a mixed batch) or ``{stream: [Example]}``
    (one ready batch, :class:`SequentialPasses`). Batch tensors per stream:
    ``input_ids``, ``attention_mask``, ``labels`` (batch, seq) and the
    processor's image tensors; padding on the right.
    """

    def __init__(self, processor, layout: str):
        if layout == "idefics2" and not getattr(processor, "chat_template", None):
            raise ValueError("the Idefics2 released layout renders the chat template, and this processor has none")
        self.processor, self.layout = processor, layout

    def text(self, example: Example) -> str:
        """The released training text of one pair."""
        if self.layout == "llava":
            return f"USER: <image>\n{example.question}\nASSISTANT: {example.answer}"
        rendered = self.processor.apply_chat_template([user_turn(example), assistant_turn(example)],
                                                      add_generation_prompt=False)
        return rendered.strip()

    def encode(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """One stream's batch; every example has an image (released training is image+text only)."""
        kwargs = {"do_image_splitting": False} if self.layout == "idefics2" else {}
        batch = self.processor(text=[self.text(ex) for ex in examples], images=[[ex.image] for ex in examples],
                               padding=True, padding_side="right", return_tensors="pt", **kwargs)
        labels = batch["input_ids"].clone()
        labels[labels == self.processor.tokenizer.pad_token_id] = IGNORE_INDEX
        batch["labels"] = labels
        return dict(batch)

    def __call__(self, items: list[dict]) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for stream in items[0]:
            values = [item[stream] for item in items]
            examples = values[0] if len(values) == 1 and isinstance(values[0], list) else values
            out[stream] = self.encode(examples)
        return out


class SequentialPasses:
    """Each epoch: every forget batch, then every retain batch, each set shuffled (released GradDiff/KL_Min).

    Items are ready batches ``{stream: [Example, ...]}`` of ``batch_size``
    (the last of a set may be smaller), so the Trainer's own batch size is 1
    and its sampler sequential (``ordered``). Each epoch reshuffles with
    ``random.Random(f"{seed}-{epoch}")`` (the Trainer calls :meth:`set_epoch`).
    """

    ordered = True

    def __init__(self, streams: dict[str, list[Example]], batch_size: int, seed: int = 0):
        if any(not examples for examples in streams.values()):
            raise ValueError(f"empty training stream(s) {[n for n, ex in streams.items() if not ex]}")
        self.streams, self.batch_size, self.seed = streams, batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle each set and cut it into batches, forget first."""
        rng = random.Random(f"{self.seed}-{epoch}")
        self.items = []
        for name, examples in self.streams.items():
            order = rng.sample(examples, len(examples))
            self.items += [{name: order[i:i + self.batch_size]} for i in range(0, len(order), self.batch_size)]

    def batches_per_epoch(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[Example]]:
        return self.items[i]


def per_epoch_linear_schedule(optimizer, num_training_steps: int, steps_per_epoch: int):
    """Released GradDiff/KL_Min schedule: ``lr x (1 - epoch / num_training_steps)`` (stepped once per epoch).

    The released scripts build a linear schedule over every batch of every
    epoch but call ``lr_scheduler.step()`` once per epoch (GA_Difference.py:402, 441).
    """
    total = max(1, num_training_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - (step // max(1, steps_per_epoch)) / total))


def released_optimizer_defaults(targs) -> None:
    """Released AdamW epsilon and no clipping, where the Trainer defaults were left unchanged (in place)."""
    if targs.adam_epsilon == TRAINER_ADAM_EPSILON:
        targs.adam_epsilon = RELEASED_ADAM_EPSILON
    if targs.max_grad_norm == TRAINER_MAX_GRAD_NORM:
        targs.max_grad_norm = 0.0
