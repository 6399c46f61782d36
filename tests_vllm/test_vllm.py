"""The vLLM lane: the suite under lm-eval's vllm-vlm / vllm backends, against the Hugging Face path.

Runs in the environment of ``scripts/setup-vllm.sh`` (``.venv-vllm``), from ``.ci/run`` after the main
suite: ``.venv-vllm/bin/python -m pytest -q tests_vllm``. Each vLLM run starts an engine (25-40 s on 2 cores).
"""

import json

import pytest

from conftest import agree, evaluate

pytest.importorskip("vllm")

LEAVES = {m: [f"mllmu_{s}_{k}_{m}" for s in ("forget", "test", "retain", "celebrity") for k in ("cls", "gen", "cloze")]
          for m in ("img", "txt")}


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
@pytest.mark.parametrize("modality,backend", [("img", "vllm-vlm"), ("txt", "vllm")])
def test_every_leaf_task_under_vllm_matches_hf(checkpoints, tmp_path, modality, backend, chat):
    """All 12 image+text leaves under vllm-vlm and all 12 text-only leaves under vllm, with and without the
    chat template, against lm-eval's stock hf-multimodal on the same documents: same prompts, same greedy
    answers, same scores. (Each run holds one modality, which stock hf-multimodal handles; tests/test_backend.py
    shows the suite's mllmu-vlm answers exactly as it does.)"""
    vanilla, _ = checkpoints
    extra = ("--apply_chat_template",) if chat else ()
    hf, hf_samples = evaluate("hf-multimodal", vanilla, LEAVES[modality], tmp_path / "hf", extra, limit=4)
    vl, vl_samples = evaluate(backend, vanilla, LEAVES[modality], tmp_path / "vllm", extra, limit=4)
    assert set(vl["results"]) == set(LEAVES[modality]) and hf_samples.keys() == vl_samples.keys()
    assert len(vl_samples) == 12 * 4
    for key, row in vl_samples.items():
        prompt = row["arguments"]["gen_args_0"]["arg_0"]
        assert prompt == hf_samples[key]["arguments"]["gen_args_0"]["arg_0"], key
        assert ("<image>" in prompt) == (modality == "img"), prompt
        assert prompt.endswith("ASSISTANT:") or not chat, prompt
    answers = {k: (hf_samples[k]["filtered_resps"][0], vl_samples[k]["filtered_resps"][0]) for k in hf_samples}
    same = [agree(*pair) for pair in answers.values()]
    # Greedy decoding of the same float32 weights. (vLLM on CPU runs a float32 checkpoint in bfloat16 unless
    # told dtype=float32: then about 1 answer in 8 of this small model diverged where two tokens' logits
    # nearly tie.) In float32 the answers were identical in trials; the bound leaves room for a rare tie
    # broken differently by the two backends' kernels (attention, matmul), after which the texts diverge.
    assert sum(same) / len(same) >= 0.9, [k for k, s in zip(answers, same) if not s]
    for task in LEAVES[modality]:
        metrics = [m for m in hf["results"][task] if m.split(",")[0] in ("acc", "acc_robust", "rougeL", "cloze_acc")]
        assert metrics, task
        # Each metric is a mean over the 4 documents of a per-answer score in [0, 1]: identical answers
        # score identically, so the means differ by at most the share of answers that are not identical.
        differ = sum(a.strip() != b.strip() for (t, _), (a, b) in answers.items() if t == task) / 4
        for metric in metrics:
            assert abs(hf["results"][task][metric] - vl["results"][task][metric]) <= differ + 1e-9, (task, metric)


def test_unlearned_checkpoint_under_vllm_with_chat_template(checkpoints, tmp_path):
    _, unlearned = checkpoints
    results, samples = evaluate("vllm-vlm", unlearned, ["mllmu_forget_cloze_img"], tmp_path / "out",
                                extra=("--apply_chat_template",))
    assert "cloze_acc,none" in results["results"]["mllmu_forget_cloze_img"]
    prompt = next(iter(samples.values()))["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("USER: <image>\n") and prompt.endswith("ASSISTANT:")


def test_released_fewshot_with_demonstration_images_under_vllm(checkpoints, tmp_path):
    """The paper protocol's classification: one copy of the demonstration image per demonstration question."""
    vanilla, _ = checkpoints
    task = "mllmu_retain_cls_img"
    meta = json.dumps({"source": "mini", "forget_ratio": 10, "fewshot_seed": 5})
    results, samples = evaluate("vllm-vlm", vanilla, [task], tmp_path / "out", limit=4, meta=meta)
    rows = list(samples.values())
    meta = results["configs"][task]["metadata"]
    assert len(rows) == 4 and not {r["doc"]["ID"] for r in rows} & set(meta["demo_profiles"])
    assert meta["demo_questions"] == 5
    assert all(r["arguments"]["gen_args_0"]["arg_0"].count("<image>") == 6 for r in rows)
    assert all(len(r["arguments"]["gen_args_0"]["arg_2"]["visual"]) == 6 for r in rows)
