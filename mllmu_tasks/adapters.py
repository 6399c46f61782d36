"""Many LoRA adapters of one base model, scored by one vLLM engine (vLLM multi-LoRA).

Scoring N unlearned LoRA checkpoints the plain way starts N engines (20-40 s
each on CPU, minutes for a 7B model on a GPU) on N merged copies of the
weights. Here one lm-eval ``vllm-vlm`` (or ``vllm``) model is built on the
base model with LoRA enabled, and every adapter is one ``simple_evaluate``
call on that same engine with its own ``LoRARequest``: lm-eval's vLLM
backends pass ``self.lora_request`` to every ``generate`` call (the
mechanism behind their ``lora_local_path`` argument). Adapters are the
``<output_dir>/adapter`` folders ``mllmu-unlearn --save_adapter true``
writes (PEFT format, language-model linear layers only, which is what vLLM
serves LoRA on).

    from mllmu_tasks.adapters import score_adapters
    results = score_adapters("runs/vanilla", {"ga": "runs/ga/adapter", "npo": "runs/npo/adapter"},
                             ["mllmu_forget_img"], model_args={"dtype": "float32"},
                             metadata={"source": "mini", "forget_ratio": 10})
"""

from __future__ import annotations

import json
from pathlib import Path


def adapter_rank(path: str | Path) -> int:
    """The LoRA rank ``r`` of a PEFT adapter folder.

    Raises:
        FileNotFoundError: ``path`` has no ``adapter_config.json`` (not a PEFT adapter folder).
    """
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: no adapter_config.json (not a PEFT adapter; mllmu-unlearn --save_adapter "
                                "true writes one in <output_dir>/adapter)")
    return int(json.loads(config.read_text())["r"])


def adapter_engine(base: str, adapters: dict[str, str | Path], model: str = "vllm-vlm", model_args: dict | None = None):
    """One lm-eval vLLM model on ``base`` with LoRA enabled for adapters up to the largest rank among ``adapters``.

    Raises:
        FileNotFoundError: an adapter folder without ``adapter_config.json`` (before the engine starts).
        ValueError: no adapters, or ``model`` is not ``vllm-vlm`` or ``vllm``.
    """
    from lm_eval.api.registry import get_model

    if model not in ("vllm-vlm", "vllm"):
        raise ValueError(f"score_adapters: model must be vllm-vlm or vllm (vLLM multi-LoRA), got {model!r}")
    if not adapters:
        raise ValueError("score_adapters: no adapters given")
    ranks = [adapter_rank(path) for path in adapters.values()]
    first = str(next(iter(adapters.values())))
    args = {"pretrained": str(base), "lora_local_path": first, "max_lora_rank": max(ranks), **(model_args or {})}
    return get_model(model).create_from_arg_obj(args)


def close_engine(lm) -> None:
    """Stop an lm-eval vLLM model's engine processes now, not at garbage collection.

    An engine still running when the interpreter exits can hang it: ``multiprocessing`` joins the engine's
    process at exit, and that process stops only when told to (seen with vLLM 0.32: a script that kept a
    reference to its engine never exited). Does nothing for a model without a vLLM engine, or one already
    stopped.
    """
    core = getattr(getattr(getattr(lm, "model", None), "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()


def score_adapters(base: str, adapters: dict[str, str | Path], tasks: list[str], model: str = "vllm-vlm",
                   model_args: dict | None = None, metadata: dict | None = None, engine=None,
                   **evaluate_kwargs) -> dict[str, dict]:
    """Score every adapter of ``adapters`` (``{name: adapter folder}``) on ``tasks`` with one vLLM engine.

    ``engine``: an :func:`adapter_engine` to reuse (e.g. across calls; the caller stops it with
    :func:`close_engine`); built here and stopped before returning when None.
    ``metadata``: the suite's settings (``source``, ``forget_ratio``); ``pretrained`` is set to ``base``.
    ``evaluate_kwargs`` go to ``lm_eval.simple_evaluate`` (``limit``, ``log_samples``, ``apply_chat_template``).

    Returns:
        ``{name: lm-eval results dict}``, in the order of ``adapters``.

    Raises:
        FileNotFoundError, ValueError: see :func:`adapter_engine`.
    """
    from lm_eval import simple_evaluate
    from vllm.lora.request import LoRARequest

    from .cli import suite_task_manager

    lm = engine if engine is not None else adapter_engine(base, adapters, model, model_args)
    manager = suite_task_manager(include_defaults=False)(metadata={**(metadata or {}), "pretrained": str(base)})
    # vLLM caches an adapter by its integer ID: one ID per folder for the engine's whole life
    ids = lm.__dict__.setdefault("_mllmu_adapter_ids", {})
    out = {}
    try:
        for name, path in adapters.items():
            lora_id = ids.setdefault(str(Path(path).resolve()), len(ids) + 1)
            lm.lora_request = LoRARequest(str(name), lora_id, str(path))
            out[name] = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, **evaluate_kwargs)
    finally:
        if engine is None:
            close_engine(lm)
    return out
