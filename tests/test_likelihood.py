"""Likelihood-scored multiple choice with images: the backend against a forward pass computed by hand."""

import json

import pytest
import torch
from lm_eval.api.instance import Instance
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from mllmu_tasks.backend import MLLMUVisionLM
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

from test_suite_e2e import load_results, run_cli


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-ll"), size="test", seed=3)


def by_hand(path, context, continuation, image):
    """log P(continuation | image, context) with transformers alone: tokens of context+continuation
    after the context's tokens, each scored by the softmax of the logits one position earlier."""
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    images = [[image]] if image is not None else None
    ctx = processor(text=[context], images=images, return_tensors="pt")["input_ids"][0]
    full = processor(text=[context + continuation], images=images, return_tensors="pt")
    with torch.no_grad():
        logits = model(**full).logits[0]
    total = 0.0
    for pos in range(len(ctx), full["input_ids"].shape[1]):
        token = full["input_ids"][0, pos]
        total += torch.log_softmax(logits[pos - 1], dim=-1)[token].item()
    return total


def test_loglikelihood_equals_a_hand_forward_pass(tiny_vlm):
    lm = MLLMUVisionLM(pretrained=str(tiny_vlm), device="cpu", batch_size=1)
    image = Image.new("RGB", (40, 40), (120, 30, 200))
    context = "USER: <image>\nWhat is this person's job?\nASSISTANT:"
    requests = [Instance("loglikelihood", {}, (context, " painter", {"visual": [image]}), 0),
                Instance("loglikelihood", {}, (context, " B", {"visual": [image]}), 1),
                Instance("loglikelihood", {}, ("USER: What is Ann Lee's job?\nASSISTANT:", " nurse"), 2)]
    got = lm.loglikelihood(requests)
    expected = [by_hand(tiny_vlm, context, " painter", image), by_hand(tiny_vlm, context, " B", image),
                by_hand(tiny_vlm, "USER: What is Ann Lee's job?\nASSISTANT:", " nurse", None)]
    for (logp, greedy), want in zip(got, expected):
        assert logp == pytest.approx(want, abs=1e-5)
        assert isinstance(greedy, bool)
    # the image matters: another image gives another likelihood
    other = lm.loglikelihood([Instance("loglikelihood", {}, (context, " painter",
                                                             {"visual": [Image.new("RGB", (40, 40), (0, 0, 0))]}), 0)])
    assert other[0][0] != pytest.approx(got[0][0], abs=1e-6)


def test_likelihood_tasks_through_mllmu_eval(tiny_vlm, tmp_path):
    out = tmp_path / "out"
    run_cli(["--model", "hf-multimodal-ll", "--model_args", f"pretrained={tiny_vlm}", "--device", "cpu",
             "--tasks", "mllmu-ll_forget_letter_img", "mllmu-ll_retain_text_txt", "--limit", "3", "--log_samples",
             "--metadata", json.dumps({"source": "mini"}), "--output_path", str(out)], cwd=tmp_path)
    results, samples = load_results(out)
    for task in ("mllmu-ll_forget_letter_img", "mllmu-ll_retain_text_txt"):
        logged = samples[task]
        assert len(logged) == 3
        for sample in logged:
            scores = [r[0] for r in sample["filtered_resps"]]
            assert len(scores) == 4
            # acc is whether the highest log-likelihood option is the correct one
            assert sample["acc"] == float(max(range(4), key=lambda i: float(scores[i])) == sample["target"])
        assert results["results"][task]["acc,none"] == pytest.approx(sum(s["acc"] for s in logged) / 3)
    letter = samples["mllmu-ll_forget_letter_img"][0]["arguments"]
    assert [letter[f"gen_args_{i}"]["arg_1"] for i in range(4)] == [" A", " B", " C", " D"]
