"""The privacy audit's scores against independent computations (issue 16)."""

import math
import zlib

import numpy as np
import pytest
import torch

from unlearners.audit.attacks import attack_scores, auc


def test_attack_scores_by_hand():
    logp = torch.tensor([-0.1, -2.0, -0.5, -3.0, -0.2])
    mean = torch.tensor([-1.0, -1.5, -1.0, -2.0, -0.5])
    std = torch.tensor([0.5, 1.0, 0.25, 2.0, 0.1])
    answer = "This person is a baker."
    scores = attack_scores({"logp": logp, "mean": mean, "std": std}, answer, k=0.4)
    assert scores["loss"] == pytest.approx((-0.1 - 2.0 - 0.5 - 3.0 - 0.2) / 5)
    assert scores["zlib"] == pytest.approx(-5.8 / len(zlib.compress(answer.encode())))
    assert scores["min_k"] == pytest.approx((-3.0 - 2.0) / 2)  # ceil(0.4 * 5) = 2 lowest
    z = [(-0.1 + 1.0) / 0.5, (-2.0 + 1.5) / 1.0, (-0.5 + 1.0) / 0.25, (-3.0 + 2.0) / 2.0, (-0.2 + 0.5) / 0.1]
    assert scores["min_k_plus_plus"] == pytest.approx(sum(sorted(z)[:2]) / 2)  # -0.5 and -0.5
    assert attack_scores({"logp": logp[:1], "mean": mean[:1], "std": std[:1]}, "x", k=0.2)["min_k"] == \
        pytest.approx(-0.1)  # at least one token
    with pytest.raises(ValueError, match="k must be in"):
        attack_scores({"logp": logp, "mean": mean, "std": std}, answer, k=0)


def test_auc_is_the_rank_count_with_a_bootstrap_interval():
    members, non_members = [0.9, 0.8, 0.4, 0.7], [0.1, 0.5, 0.4, 0.3, 0.2]
    pairs = [(m > n) + 0.5 * (m == n) for m in members for n in non_members]
    result = auc(members, non_members, resamples=200, seed=1)
    assert result["auc"] == pytest.approx(sum(pairs) / len(pairs))  # 18.5 / 20
    assert result["low"] <= result["auc"] <= result["high"] <= 1.0
    rng = np.random.default_rng(0)
    same = auc(list(rng.normal(size=400)), list(rng.normal(size=400)), resamples=200)
    assert same["low"] < 0.5 < same["high"]
    with pytest.raises(ValueError, match="needs both groups"):
        auc([], [0.1])


def test_token_stats_match_the_logits(tmp_path):
    from PIL import Image

    from mllmu_tasks.backend import MLLMUVisionLM
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm

    path = build_tiny_vlm(tmp_path / "m", size="test")
    lm = MLLMUVisionLM(pretrained=str(path), device="cpu", batch_size=1)
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    context, answer = "USER: <image>\nWhat is this person's job?\nASSISTANT:", " This person is a baker."
    stats = lm.continuation_token_stats(context, answer, [image])
    ids = lm.processor(text=[context + answer], images=[[image]], return_tensors="pt")
    n = lm.processor(text=[context], images=[[image]], return_tensors="pt")["input_ids"].shape[1]
    with torch.no_grad():
        logits = lm.model(**ids).logits[0].double()
    targets = ids["input_ids"][0, n:]
    for i, t in enumerate(targets.tolist()):
        p = torch.softmax(logits[n - 1 + i], -1)
        mu = float((p * p.log()).sum())
        sigma = math.sqrt(float((p * (p.log() - mu) ** 2).sum()))
        assert stats["logp"][i].item() == pytest.approx(math.log(p[t].item()), abs=1e-4)
        assert (stats["mean"][i].item(), stats["std"][i].item()) == (pytest.approx(mu, abs=1e-9),
                                                                     pytest.approx(sigma, abs=1e-9))
    loglik, _ = lm._continuation_logprob(context, answer, [image])
    assert loglik == pytest.approx(float(stats["logp"].sum()), abs=1e-5)


def test_truth_ratio_and_forget_quality():
    from scipy import stats

    from unlearners.audit.forget_quality import forget_quality, truth_ratio

    # correct option: 3 tokens, log p = -1.5 -> per-token p = e^-0.5; distractors: e^-1 and e^-2 per token
    r = truth_ratio((-1.5, 3), [(-2.0, 2), (-8.0, 4)])
    assert r == pytest.approx(((math.exp(-1) + math.exp(-2)) / 2) / math.exp(-0.5))
    with pytest.raises(ValueError, match="at least one distractor"):
        truth_ratio((-1.0, 1), [])
    same = [0.2, 0.5, 0.9, 0.4, 0.7]
    assert forget_quality(same, same) == 1.0  # the retrained model against itself
    a, b = [0.1, 0.15, 0.2, 0.12, 0.18, 0.11], [0.8, 0.9, 0.95, 0.85, 0.7, 0.99]
    assert forget_quality(a, b) == pytest.approx(stats.ks_2samp(a, b).pvalue) and forget_quality(a, b) < 0.01


def test_membership_scores_cover_the_training_labels(tmp_path):
    """The audit's scored span is the training collator's labelled span, token for token."""
    from transformers import AutoProcessor

    from mllmu_tasks.backend import MLLMUVisionLM
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
    from unlearners import data
    from unlearners.audit.likelihood import membership_scores
    from unlearners.collator import AnswerOnlyCollator

    path = build_tiny_vlm(tmp_path / "m", size="test")
    lm = MLLMUVisionLM(pretrained=str(path), device="cpu", batch_size=1)
    examples = data.load_examples("mini", "forget", "image+text", forget_ratio=10)[:3]
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(path))
    for with_image in (True, False):
        scores = membership_scores(lm, examples, with_image=with_image)
        for example, row in zip(examples, scores):
            shown = example if with_image else data.Example(example.profile_id, example.question, example.answer, None)
            batch = collate.encode([shown])
            with torch.no_grad():
                logits = lm.model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0].double()
            labels = batch["labels"][0]
            logps = [torch.log_softmax(logits[t - 1], -1)[labels[t]].item()
                     for t in range(1, labels.shape[0]) if labels[t] != -100]
            assert row["image"] is with_image
            assert row["loss"] == pytest.approx(sum(logps) / len(logps), abs=1e-5)
            assert row["zlib"] == pytest.approx(sum(logps) / len(zlib.compress(example.answer.encode())), abs=1e-5)
