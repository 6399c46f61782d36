"""``UnlearnTrainer``: a ``transformers.Trainer`` whose loss is the method's.

Batches are ``{stream: processor batch}`` (:class:`~unlearners.collator.AnswerOnlyCollator`).
The trainer calls ``method.loss(model, batches, reference)``, stops on a
non-finite loss with an error naming the step, and logs the method's
components (``forget_nll``, ``retain_nll``, ...) averaged since the last log.
Everything else (DDP/FSDP/DeepSpeed through ``accelerate launch``, mixed
precision, gradient accumulation and checkpointing, progress bars) is the
Trainer's own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import torch
from transformers import Trainer

from .methods import Method
from .methods.base import Reference


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and method."""


def finite_everywhere(loss: torch.Tensor) -> bool:
    """Whether ``loss`` (any shape) is finite on this process and, under ``torch.distributed``, on every other.

    A distributed run must stop on all ranks at once: a rank that raised alone would leave the others waiting in
    the gradients' all-reduce until the process group's timeout. Costs one all-reduce of one number per step.
    """
    finite = torch.isfinite(loss.detach()).all()
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        flag = finite.to(torch.float32).reshape(1)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        finite = flag[0] > 0
    return bool(finite)


class UnlearnTrainer(Trainer):
    """Trainer delegating the loss to a :class:`~unlearners.methods.Method`.

    Args:
        method: the configured method.
        reference: ``batch -> logits`` of the frozen reference (methods with ``needs_reference``).
        *args, **kwargs: ``transformers.Trainer`` arguments.
    """

    def __init__(self, *args, method: Method, reference: Reference | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.reference = reference
        self.model_accepts_loss_kwargs = False  # the Trainer scales for gradient accumulation
        self._parts: dict[str, list[float]] = defaultdict(list)

    def _get_train_sampler(self, train_dataset=None):
        """A sequential sampler for datasets whose order is the protocol (``ordered``: released whole passes)."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if getattr(dataset, "ordered", False):
            return torch.utils.data.SequentialSampler(dataset)
        return super()._get_train_sampler(train_dataset)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The Trainer's schedule, or the released per-epoch one for whole-pass datasets."""
        if self.lr_scheduler is None and getattr(self.train_dataset, "ordered", False) and self.method.released:
            from .released import per_epoch_linear_schedule

            steps_per_epoch = max(1, len(self.train_dataset) // max(1, self.args.gradient_accumulation_steps))
            self.lr_scheduler = per_epoch_linear_schedule(optimizer or self.optimizer, num_training_steps,
                                                          steps_per_epoch)
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Resume: full weights load through ``from_pretrained``, strictly; LoRA adapters as the Trainer does.

        ``save_pretrained`` writes a checkpoint's weights in the hub layout
        (``language_model.model.*``, ``vision_tower.vision_model.*``), which the
        Trainer's own loader reads without the name mapping and with
        ``strict=False``: every weight would stay at its starting value,
        silently. ``from_pretrained`` maps the names; ``load_state_dict``
        (strict) then fails loudly on any mismatch.

        Raises:
            RuntimeError: the checkpoint's weights do not match the model's.
        """
        model = model if model is not None else self.model
        config = Path(resume_from_checkpoint) / "config.json"
        if hasattr(model, "peft_config") or not config.is_file() or self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        saved = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype)
        model.load_state_dict(saved.state_dict(), strict=True)
        del saved

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The method's loss on ``inputs`` = ``{stream: batch}``.

        Raises:
            NonFiniteLossError: the loss is NaN or +-inf, on this process or (distributed) another one.
        """
        loss, parts = self.method.loss(model, inputs, self.reference)
        if not finite_everywhere(loss):
            value = loss.item()
            what = value if not math.isfinite(value) else f"non-finite on another process ({value} here)"
            raise NonFiniteLossError(f"step {self.state.global_step}: the {self.method.name} loss is {what} "
                                     f"(components {parts}); stopping, nothing is saved")
        for name, value in parts.items():
            self._parts[name].append(value)
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the method's components, averaged since the last log, to ``logs``."""
        for name, values in self._parts.items():
            if values:
                logs[name] = round(sum(values) / len(values), 6)
        self._parts.clear()
        super().log(logs, start_time)
