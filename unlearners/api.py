"""Python API: one call fine-tunes or unlearns and writes a Hugging Face checkpoint.

Example::

    from unlearners.api import run
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
    from unlearners.methods.npo import NPOConfig

    run("npo", ModelArguments(model="runs/vanilla"), DataArguments(source="mini", forget_ratio=10),
        UnlearnTrainingArguments(output_dir="runs/npo", use_cpu=True), NPOConfig(beta=0.4))
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

from transformers import set_seed

from mllmu_tasks.family import checkpoint_model_type

from . import __version__
from .checkpoint import (check_output_dir, discard_staging, prepare_staging, publish, recover_publish, save_model,
                         staging_dir, trainer_checkpoints, write_card, write_json_atomic)
from .collator import make_collator
from .config import DataArguments, ModelArguments, UnlearnTrainingArguments
from .data import Example, PairedDataset, load_subsets
from .methods import Method, MethodConfig, get_method
from .model import (FrozenReference, adapter_disabled_reference, apply_lora, freeze_parts, frozen_copy_reference, load_model,
                    pick_dtype)
from .released import (SEQUENTIAL_PASS_METHODS, ReleasedCollator, SequentialPasses, check_released,
                       released_layout, released_optimizer_defaults)
from .trainer import UnlearnTrainer

log = logging.getLogger(__name__)

#: Which profiles each stream holds (``train`` follows ``DataArguments.train_subset``).
STREAM_SUBSETS = {"forget": "forget", "retain": "retain"}
#: The run's loss curve beside the checkpoint: the Trainer's ``log_history`` (one entry per ``logging_steps``).
LOG_HISTORY = "log_history.json"


def build_streams(method: Method, data: DataArguments) -> dict:
    """``{stream: [Example]}`` for the method's streams, from one read of the source."""
    subsets = {s: STREAM_SUBSETS.get(s, data.train_subset) for s in method.data_streams()}
    return load_subsets(data.source, subsets, data.modality, data.forget_ratio, data.splits)


def build_reference(method: Method, margs: ModelArguments, model, device, dtype):
    """The frozen reference for methods that need one (``None`` otherwise).

    A ``reference_model`` path is loaded frozen; otherwise the starting model
    itself: its adapters switched off under LoRA, a frozen copy under full fine-tuning.
    """
    if not method.needs_reference:
        return None
    if margs.reference_model:
        ref, _ = load_model(margs, margs.reference_model, dtype)
        return FrozenReference(ref.to(device).eval().requires_grad_(False))
    return adapter_disabled_reference(model) if margs.lora else frozen_copy_reference(model, device)


#: Sharding an accelerate config asks for (its environment switch) and the distributed type that runs it.
SHARDING = {"ACCELERATE_USE_FSDP": ("FSDP", "FSDP"), "ACCELERATE_USE_DEEPSPEED": ("DeepSpeed", "DEEPSPEED")}


def check_sharding(targs: UnlearnTrainingArguments) -> None:
    """Refuse a sharded run that would silently run unsharded.

    accelerate 1.15 applies an FSDP or DeepSpeed config only on accelerators
    (``AcceleratorState``: FSDP in the multi-GPU branch, DeepSpeed ``and not cpu``);
    on the CPU (``--use_cpu``, or no GPU) the same launch trains as plain DDP
    over gloo (``MULTI_CPU``), every process holding the whole model.

    Raises:
        ValueError: the launch asks for FSDP or DeepSpeed and the processes are not running it.
    """
    import os

    running = targs.distributed_state.distributed_type.name
    for switch, (name, kind) in SHARDING.items():
        if os.environ.get(switch, "false").lower() == "true" and running != kind:
            raise ValueError(f"the accelerate config asks for {name}, but accelerate runs {name} only on GPUs: here "
                             f"the processes would train as {running} (plain data parallel, no sharding); use "
                             "examples/accelerate/cpu_2proc.yaml for data parallel on CPUs, or GPUs for sharding")


def resume_point(value: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint ``--resume_from_checkpoint`` names: ``last``/``true`` = the newest one this output's
    unfinished run saved, else a checkpoint folder; None when not resuming.

    Raises:
        FileNotFoundError: nothing to resume from (the message says how checkpoints are saved).
    """
    if not value or str(value).lower() in ("false", "none"):
        return None
    if str(value).lower() in ("true", "last", "latest"):
        saved = trainer_checkpoints(output_dir)
        if not saved:
            raise FileNotFoundError(f"--resume_from_checkpoint: no checkpoint in {staging_dir(output_dir) / 'trainer'} "
                                    f"(a run saves them with --save_strategy steps --save_steps N)")
        return saved[-1]
    path = Path(value)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {value}: not a Trainer checkpoint (no trainer_state.json)")
    return path


def settings_of(method: Method, margs: ModelArguments, data: DataArguments, targs: UnlearnTrainingArguments) -> dict:
    """What the model card records."""
    return {"method": method.name, "base_model": margs.model, **dataclasses.asdict(method.config),
            "source": data.source, "splits": data.splits, "forget_ratio": data.forget_ratio,
            "modality": data.modality, "train_subset": data.train_subset if "train" in method.data_streams() else None,
            "lora": margs.lora and not method.training_free, "lora_r": margs.lora_r, "lora_alpha": margs.lora_alpha,
            "lora_dropout": margs.lora_dropout, "save_adapter": margs.save_adapter,
            "reference_model": margs.reference_model,
            "learning_rate": targs.learning_rate, "num_train_epochs": targs.num_train_epochs,
            "max_steps": targs.max_steps, "per_device_train_batch_size": targs.per_device_train_batch_size,
            "gradient_accumulation_steps": targs.gradient_accumulation_steps, "seed": targs.seed,
            "world_size": targs.world_size, "protocol": targs.protocol, "package_version": __version__}


def build_trainer(method: Method, margs: ModelArguments, data: DataArguments | dict[str, list[Example]],
                  targs: UnlearnTrainingArguments, dtype: str = "auto") -> UnlearnTrainer:
    """Data, model (LoRA-wrapped or partly frozen), reference and collator, assembled into a trainer.

    ``data``: the data settings, or ready streams ``{stream: [Example]}``.
    ``targs.output_dir`` is the Trainer's own working folder here.
    """
    released = targs.protocol == "released"
    if released:
        check_released(method.name, data.modality if isinstance(data, DataArguments) else "image+text",
                       margs.reference_model)
        layout = released_layout(checkpoint_model_type(margs.model))
    streams = method.prepare_streams(build_streams(method, data) if isinstance(data, DataArguments) else data)
    torch_dtype = pick_dtype("float32" if targs.use_cpu else dtype)
    model, processor = load_model(margs, dtype=torch_dtype)
    if margs.lora and not method.training_free:
        model = apply_lora(model, margs, gaussian_init=released)
    else:
        freeze_parts(model, margs)
    method.restrict_trainable(model)
    if targs.gradient_checkpointing and targs.gradient_checkpointing_kwargs is None:
        targs.gradient_checkpointing_kwargs = {"use_reentrant": False}
    reference = build_reference(method, margs, model, targs.device, torch_dtype)
    collator = make_collator(processor, model.config.model_type, stop_ids=model.generation_config.eos_token_id)
    dataset = PairedDataset(streams, seed=targs.seed, aligned=method.aligned_streams)
    if released:
        released_optimizer_defaults(targs)
        collator = ReleasedCollator(processor, layout)
        if method.name in SEQUENTIAL_PASS_METHODS:  # whole forget pass, then whole retain pass; ready batches
            dataset = SequentialPasses(streams, targs.per_device_train_batch_size, seed=targs.seed)
            targs.per_device_train_batch_size = 1
    method.prepare(model, streams, collator, targs.per_device_train_batch_size, targs.device)
    return UnlearnTrainer(model=model, args=targs, data_collator=collator, train_dataset=dataset,
                          processing_class=processor, method=method, reference=reference)


def run(method_name: str, margs: ModelArguments, data: DataArguments | dict[str, list[Example]],
        targs: UnlearnTrainingArguments, method_config: MethodConfig | None = None, dtype: str = "auto",
        card: dict | None = None) -> Path:
    """Train with a method and write the checkpoint to ``targs.output_dir``; returns its path.

    ``data``: the data settings, or ready streams ``{stream: [Example]}``
    (then ``card`` describes the data for the model card); the loss curve is kept in
    ``log_history.json`` (the Trainer's ``log_history``). Only the main
    process writes; the checkpoint appears complete or not at all.

    Checkpoints (``--save_strategy steps``) are kept in the staging folder
    until the output is published, also when the run fails;
    ``--resume_from_checkpoint`` (``last`` or a path) continues from one with
    its optimizer, scheduler and random state.

    Raises:
        FileExistsError: the output exists (without ``overwrite``), or an
            unfinished run's checkpoints wait (without ``resume_from_checkpoint`` or ``overwrite``).
        ValueError, FileNotFoundError, SchemaError: bad method, model or data;
            nothing to resume from; an FSDP or DeepSpeed launch that would run unsharded (:func:`check_sharding`).
        NonFiniteLossError: the loss became NaN/inf (nothing is written).
    """
    method = get_method(method_name)(method_config)
    method.released = targs.protocol == "released"  # set here: a subclass may define its own __init__(config)
    if margs.save_adapter and (not margs.lora or method.training_free):
        raise ValueError(f"--save_adapter needs LoRA training: {method_name} "
                         + ("trains no adapter (training-free)" if method.training_free else "runs with --lora false"))
    check_sharding(targs)
    output_dir = targs.output_dir
    if targs.process_index == 0 and recover_publish(output_dir):
        log.warning("%s: the previous output is back in place (a publish was interrupted)", output_dir)
    check_output_dir(output_dir, targs.overwrite)
    resume = resume_point(targs.resume_from_checkpoint, output_dir)
    set_seed(targs.seed)
    stage = prepare_staging(output_dir, resume=resume is not None, overwrite=targs.overwrite) \
        if targs.process_index == 0 else None
    trainer_args = dataclasses.replace(targs, output_dir=str(staging_dir(output_dir) / "trainer"))
    try:
        trainer = build_trainer(method, margs, data, trainer_args, dtype)
        if not method.training_free:  # a training-free method edited the model in build_trainer (prepare)
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except BaseException:
        if stage is not None and discard_staging(output_dir):
            log.warning("the checkpoints of this run are kept in %s: continue with --resume_from_checkpoint last",
                        staging_dir(output_dir) / "trainer")
        raise
    if not trainer.is_world_process_zero():
        return Path(output_dir).resolve()
    save_model(trainer.model, trainer.processing_class, stage, adapter=margs.save_adapter)
    settings = settings_of(method, margs, data if isinstance(data, DataArguments) else DataArguments(), targs)
    write_card(stage, {**settings, **method.card_notes(), **(card or {})})
    write_json_atomic(stage / LOG_HISTORY, trainer.state.log_history)
    shutil.rmtree(stage / "trainer", ignore_errors=True)
    return publish(output_dir)
