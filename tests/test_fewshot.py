"""The seeded few-shot protocol with images: reproducible prompts, demonstration profiles never scored."""

import json

import pytest

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

from test_suite_e2e import load_results, run_cli

TASKS = ["mllmu-fs_retain_cls_img", "mllmu-fs_forget_cloze_txt"]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-fs"), size="test")


def fewshot_run(model, out, seed, extra=()):
    meta = {"source": "mini", "forget_ratio": 10, "num_demo_profiles": 2, "fewshot_seed": seed}
    run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={model},max_images=3", "--device", "cpu",
             "--tasks", *TASKS, "--metadata", json.dumps(meta), "--limit", "4", "--log_samples",
             "--output_path", str(out), *extra], cwd=out.parent)
    return load_results(out)


def prompts(samples, task):
    return [s["arguments"]["gen_args_0"]["arg_0"] for s in sorted(samples[task], key=lambda s: s["doc_id"])]


def test_seeded_fewshot_is_reproducible_and_never_scores_demonstrations(tiny_vlm, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    results_a, samples_a = fewshot_run(tiny_vlm, tmp_path / "a" / "out", seed=7)
    results_b, samples_b = fewshot_run(tiny_vlm, tmp_path / "b" / "out", seed=7)
    _, samples_c = fewshot_run(tiny_vlm, tmp_path / "c" / "out", seed=8)
    for task in TASKS:
        assert prompts(samples_a, task) == prompts(samples_b, task)
        demo_ids = results_a["configs"][task]["metadata"]["demo_profiles"]
        assert len(demo_ids) == 2 and demo_ids == results_b["configs"][task]["metadata"]["demo_profiles"]
        scored = {s["doc"]["ID"] for s in samples_a[task]}
        assert not scored & set(demo_ids)
        first = prompts(samples_a, task)[0]
        # two demonstration profiles answered before the question, in the released layout
        assert first.startswith("USER: ") and first.endswith("\nASSISTANT:")
        assert first.count("ASSISTANT:") > 2
    # the image+text task shows each demonstration profile's image, then the question's
    args = samples_a["mllmu-fs_retain_cls_img"][0]["arguments"]["gen_args_0"]
    assert len(args["arg_2"]["visual"]) == 3 and args["arg_0"].count("<image>") == 3
    assert "<image>" not in prompts(samples_a, "mllmu-fs_forget_cloze_txt")[0]
    assert prompts(samples_c, "mllmu-fs_retain_cls_img") != prompts(samples_a, "mllmu-fs_retain_cls_img")


def test_too_many_images_for_the_backend(tiny_vlm, tmp_path):
    proc = run_cli(["--model", "mllmu-vlm", "--model_args", f"pretrained={tiny_vlm},max_images=2", "--device", "cpu",
                    "--tasks", "mllmu-fs_retain_cls_img", "--limit", "1",
                    "--metadata", json.dumps({"source": "mini", "num_demo_profiles": 2})], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "2 demonstration profiles + the question need 3 images but the backend takes max_images=2" in proc.stderr
