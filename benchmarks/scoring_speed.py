"""Benchmark: scoring image+text questions up to five ways on the demo-size tiny VLM (2 CPU cores).

    python benchmarks/scoring_speed.py [--docs 200] [--batch_size 32] [--model DIR] [--repeats 3]

1. a per-question, batch-1 greedy ``generate`` loop (the released evaluation's way);
2. a plain batched greedy ``generate`` (left padding, no harness): the limit;
3. lm-eval's stock ``hf-multimodal`` in-process (batched);
4. the suite's ``mllmu-vlm`` (the same path without lm-eval's per-batch ``gc.collect()`` and per-step
   stop-string decoding);
5. lm-eval's ``vllm-vlm`` (float32), when vLLM is installed (the lane's ``.venv-vllm``).

Prints docs/s, wall time and whether the batched ways gave answers identical to hf-multimodal's. Model
loading (and vLLM's engine start) is outside every clock; each way runs ``--repeats`` times and the table
gives the median. Asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time

import torch

from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM

from mllmu_tasks import docs
from mllmu_tasks.backend import MLLMUVisionLM
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from mllmu_tasks.sources import resolve_source

GEN = {"until": ["\n\n"], "do_sample": False, "max_gen_toks": 50}


def requests_for(n: int) -> list[Instance]:
    """Image+text generation requests of the mini benchmark's retain set (gen, cloze, cls), first ``n``."""
    source = resolve_source("mini")
    out = []
    for kind in ("gen", "cloze", "cls"):
        for doc in docs.build_docs("retain", kind, "img", source, 10):
            prompt = docs.doc_to_released_prompt(doc)
            out.append(Instance("generate_until", doc, (prompt, dict(GEN), {"visual": docs.doc_to_image(doc)}), 0))
    return out[:n]


def load(model_dir: str):
    """The checkpoint's model (eval mode) and processor (left padding), for the two harness-free ways."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    return AutoModelForImageTextToText.from_pretrained(model_dir).eval(), processor


def loop(model, processor, requests: list[Instance]) -> list[str]:
    """One greedy ``generate`` per question (the released evaluation's way)."""
    answers = []
    with torch.no_grad():
        for r in requests:
            enc = processor(text=[r.args[0]], images=r.args[2]["visual"], return_tensors="pt")
            out = model.generate(**enc, do_sample=False, max_new_tokens=50)
            answers.append(processor.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return answers


def batched(model, processor, requests: list[Instance], batch_size: int) -> list[str]:
    """Plain batched greedy ``generate`` (left padding, no harness): the practical limit for this model."""
    answers = []
    with torch.no_grad():
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            enc = processor(text=[r.args[0] for r in chunk], images=[r.args[2]["visual"] for r in chunk],
                            padding=True, return_tensors="pt")
            out = model.generate(**enc, do_sample=False, max_new_tokens=50)
            answers += processor.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return answers


def timed(repeats: int, fn, *args):
    """``(fn(*args), median wall seconds over repeats runs)``: one 1-2 s run varies by up to 40 % here."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        seconds.append(time.perf_counter() - start)
    return out, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--model", default=None, help="a VLM checkpoint (default: build the demo tiny VLM)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per way; the table gives the median")
    args = parser.parse_args()
    model_dir = args.model or str(build_tiny_vlm(tempfile.mkdtemp(), size="demo"))
    requests = requests_for(args.docs)
    rows = []
    model, processor = load(model_dir)  # every way loads its model before its clock starts
    _, t_loop = timed(args.repeats, loop, model, processor, requests)
    rows.append(("batch-1 generate loop", t_loop))
    plain_out, t_plain = timed(args.repeats, batched, model, processor, requests, args.batch_size)
    rows.append((f"plain batched generate, batch {args.batch_size}", t_plain))
    stock = HFMultimodalLM(pretrained=model_dir, device="cpu", batch_size=args.batch_size)
    stock_out, t_stock = timed(args.repeats, stock.generate_until, requests, True)
    rows.append((f"hf-multimodal, batch {args.batch_size}", t_stock))
    ours = MLLMUVisionLM(pretrained=model_dir, device="cpu", batch_size=args.batch_size)
    ours_out, t_ours = timed(args.repeats, ours.generate_until, requests, True)
    rows.append((f"mllmu-vlm, batch {args.batch_size}", t_ours))
    VLLM_VLM = None
    if importlib.util.find_spec("vllm") is not None:
        from lm_eval.models.vllm_vlms import VLLM_VLM
    if VLLM_VLM is not None:
        start = time.perf_counter()
        engine = VLLM_VLM(pretrained=model_dir, max_images=1, enforce_eager=True, dtype="float32", max_model_len=1024)
        start_s = time.perf_counter() - start
        vllm_out, t_vllm = timed(args.repeats, engine.generate_until, requests, True)
        rows.append((f"vllm-vlm (engine start {start_s:.0f} s not counted)", t_vllm))
    n = len(requests)
    print(f"\n{n} image+text questions, up to 50 new tokens, {torch.get_num_threads()} threads, median of "
          f"{args.repeats} runs\n")
    print("| way | wall s | docs/s | x loop | x plain batched |\n|---|---:|---:|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {n / seconds:.1f} | {t_loop / seconds:.1f} | {seconds / t_plain:.2f} |")
    print(f"\nmllmu-vlm answers identical to hf-multimodal: {ours_out == stock_out}")
    same = sum(a.strip() == b.strip() for a, b in zip(plain_out, stock_out))
    print(f"plain batched generate answers identical to hf-multimodal (stripped): {same}/{n}")
    if VLLM_VLM is not None:
        pairs = [(a.strip(), b.strip()) for a, b in zip(vllm_out, stock_out)]
        same = sum(a == b for a, b in pairs)
        prefix = sum(a.startswith(b) or b.startswith(a) for a, b in pairs)
        print(f"vllm-vlm answers identical to hf-multimodal: {same}/{n}; one a prefix of the other "
              f"(a tail cut at the token limit, detokenised differently): {prefix}/{n}")


if __name__ == "__main__":
    main()
