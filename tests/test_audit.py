"""The privacy audit's scores against independent computations (issue 16)."""

import json
import math
import time
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


def test_the_bootstrap_draws_auc_is_sklearns():
    from sklearn.metrics import roc_auc_score

    from unlearners.audit.attacks import _rank_auc

    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 6, (50, 7)).astype(float), rng.integers(0, 6, (50, 9)).astype(float)  # many ties
    expected = [roc_auc_score([1] * 7 + [0] * 9, np.r_[p, n]) for p, n in zip(pos, neg)]
    assert _rank_auc(pos, neg) == pytest.approx(expected, abs=1e-12)


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


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """12 fictitious profiles (forget_15: 2 of them, retain_85: 10), 2 celebrities."""
    from mllmu_tasks.mini.generator import generate_benchmark, write_hub_layout

    return str(write_hub_layout(generate_benchmark(num_profiles=12, num_celebrities=2, seed=5),
                                tmp_path_factory.mktemp("bench")))


def test_holdout_mirror_leaves_the_holdout_profiles_out_of_every_training_and_retain_set(bench, tmp_path):
    from mllmu_tasks.ft_data import load_ft_profiles
    from mllmu_tasks.sources import load_config, profile_ids, resolve_source
    from unlearners.audit.holdout import choose_holdout, holdout_mirror

    source = resolve_source(bench)
    retain = profile_ids("retain_85", source)
    holdout = choose_holdout(source, 15, 3, seed=0)
    assert holdout == choose_holdout(source, 15, 3, seed=0) != choose_holdout(source, 15, 3, seed=1)
    assert len(set(holdout)) == 3 and set(holdout) <= set(retain)
    mirror = resolve_source(str(holdout_mirror(source, 15, holdout, tmp_path / "m")))
    assert [p.profile_id for p in load_ft_profiles(mirror)] == \
        [p.profile_id for p in load_ft_profiles(source) if p.profile_id not in holdout]
    for config in ("Full_Set", "retain_85", "Test_Set"):
        assert profile_ids(config, mirror) == [i for i in profile_ids(config, source) if i not in holdout]
    def without_paths(rows):  # the copy holds every image as bytes
        for row in rows:
            for cell in row.get("images") or [row["image"]]:
                cell["path"] = None
        return rows

    for config in ("forget_15", "Retain_Set"):
        assert without_paths(load_config(config, mirror).to_list()) == without_paths(load_config(config, source).to_list())
    assert json.loads((tmp_path / "m" / "holdout.json").read_text()) == {"forget_ratio": 15, "holdout": holdout}
    with pytest.raises(ValueError, match="must be 0 to 9"):
        choose_holdout(source, 15, 10)
    with pytest.raises(ValueError, match="are in forget_15"):
        holdout_mirror(source, 15, profile_ids("forget_15", source)[:1], tmp_path / "bad")


def _labelled_logprob(lm, collate, example):
    """Summed log p and count of the tokens the training collator labels (independent of the audit's path)."""
    batch = collate.encode([example])
    with torch.no_grad():
        logits = lm.model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0].double()
    labels = batch["labels"][0]
    logps = [torch.log_softmax(logits[t - 1], -1)[labels[t]].item() for t in range(1, len(labels)) if labels[t] != -100]
    return sum(logps), len(logps)


def test_truth_ratios_are_the_options_labelled_likelihoods(bench, tmp_path):
    from transformers import AutoProcessor

    from mllmu_tasks.backend import MLLMUVisionLM
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
    from unlearners.audit.run import audit_data, truth_ratios
    from unlearners.collator import AnswerOnlyCollator
    from unlearners.data import Example

    path = build_tiny_vlm(tmp_path / "m", size="test")
    lm = MLLMUVisionLM(pretrained=str(path), device="cpu", batch_size=1)
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(path))
    data = audit_data(bench, 15, ["003"])
    assert [len(data.mc[m]) for m in ("image+text", "text-only")] == [10, 10]  # 2 forget profiles x 5 questions
    for modality in ("image+text", "text-only"):
        question, correct, wrong = data.mc[modality][0]
        assert (question.image is not None) == (modality == "image+text") and len(wrong) == 3
        per_token = [math.exp(lp / n) for lp, n in (_labelled_logprob(
            lm, collate, Example(question.profile_id, question.question, option, question.image))
            for option in [correct, *wrong])]
        assert truth_ratios(lm, data.mc[modality][:1])[0] == pytest.approx(sum(per_token[1:]) / 3 / per_token[0],
                                                                          rel=1e-4)


def test_audit_data_pairs_and_compare_by_hand(bench):
    from unlearners.audit.run import PRIVLEAK_ATTACK, audit_data, compare, privacy_markdown
    from unlearners.data import PERSON_REFERENCE, load_examples

    data = audit_data(bench, 15, ["003", "004"])
    forget = load_examples(bench, "forget", "image+text", forget_ratio=15)
    assert [(e.question, e.answer) for e in data.forget["image+text"]] == [(e.question, e.answer) for e in forget]
    assert {e.profile_id for e in data.holdout["image+text"]} == {"003", "004"}
    text_only = data.holdout["text-only"]
    assert text_only and all(e.image is None and not PERSON_REFERENCE.search(e.question) for e in text_only)
    with pytest.raises(ValueError, match="needs holdout profiles"):
        audit_data(bench, 15, [])
    from mllmu_tasks.sources import load_config, resolve_source
    rows = {r["ID"]: r for r in load_config("Full_Set", resolve_source(bench)).to_list()}
    for modality, kind_type in (("image+text", "Image_Textual"), ("text-only", "Pure_Text")):
        for examples, ids in ((data.gen_forget, {e.profile_id for e in forget}), (data.gen_holdout, {"003", "004"})):
            expected = [(pid, g["Question"], g["Ground_Truth"]) for pid in sorted(ids)
                        for g in rows[pid]["Generation_Task"] if g["Type"] == kind_type]
            got = sorted((e.profile_id, e.question, e.answer) for e in examples[modality])
            assert got == sorted(expected) and len(got) == 2 * len(ids)  # 2 generation questions per modality
            assert all((e.image is not None) == (modality == "image+text") for e in examples[modality])

    def fake(a, ratios):
        return {"auc": {k: {"auc": a, "low": a - 0.1, "high": a + 0.1} for k in ("loss", "zlib", "min_k",
                                                                                  "min_k_plus_plus")},
                "truth_ratios": ratios}

    retrained = {"image+text": fake(0.5, [0.9, 0.8, 1.1, 0.7])}
    vanilla = {"image+text": fake(0.9, [0.1, 0.2, 0.15, 0.05])}
    assert PRIVLEAK_ATTACK == "min_k"
    c = compare(vanilla, retrained)["image+text"]
    assert c["privleak"] == pytest.approx(100 * (0.9 - 0.5) / 0.5)
    from scipy import stats
    assert c["forget_quality"] == pytest.approx(stats.ks_2samp([0.1, 0.2, 0.15, 0.05], [0.9, 0.8, 1.1, 0.7]).pvalue)
    same = compare(retrained, retrained)["image+text"]
    assert (same["privleak"], same["forget_quality"]) == (0.0, 1.0)
    table = privacy_markdown({"vanilla": compare(vanilla, retrained)})
    assert "| vanilla | image+text | 0.90 [0.80, 1.00] |" in table and "| +80.0 |" in table


def test_the_audit_tells_the_vanilla_model_from_the_retrained_one(bench, tmp_path):
    """Forget (members) vs holdout (non-members) on a test-size VLM fine-tuned 12 epochs on the 9 trained profiles
    (vanilla) or on the 7 retain ones (retrained); 2 forget and 3 holdout profiles, 58 vs 87 image+text pairs.

    Measured (2026-12, one thread): vanilla Min-K% AUC 0.98 [0.96, 1.00] image+text and 0.99 text-only;
    retrained 0.56 [0.46, 0.66] and 0.56; forget quality of the vanilla model 0.02 image+text, the retrained
    model's against itself 1.0.
    """
    from mllmu_tasks.backend import MLLMUVisionLM
    from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
    from mllmu_tasks.sources import resolve_source
    from unlearners.api import run as train
    from unlearners.audit.holdout import choose_holdout, holdout_mirror
    from unlearners.audit.run import audit_checkpoint, audit_data, compare
    from unlearners.config import ModelArguments, UnlearnTrainingArguments
    from unlearners.data import load_examples

    t0 = time.time()
    base = build_tiny_vlm(tmp_path / "base", size="test")
    holdout = choose_holdout(resolve_source(bench), 15, 3)
    mirror = str(holdout_mirror(resolve_source(bench), 15, holdout, tmp_path / "mirror"))
    data = audit_data(bench, 15, holdout)
    audits = {}
    for name, subset in (("vanilla", "all"), ("retrained", "retain")):
        examples = load_examples(mirror, subset, "image+text", forget_ratio=15)
        args = UnlearnTrainingArguments(output_dir=str(tmp_path / name), num_train_epochs=8, learning_rate=3e-3,
                                        per_device_train_batch_size=16, use_cpu=True, save_strategy="no",
                                        lr_scheduler_type="constant_with_warmup", warmup_steps=10, disable_tqdm=True,
                                        report_to=[])
        path = train("finetune", ModelArguments(model=str(base)), {"train": examples}, args)
        audits[name] = audit_checkpoint(MLLMUVisionLM(pretrained=str(path), device="cpu", batch_size=1), data)
    assert len(data.forget["image+text"]) == 58 and len(data.holdout["image+text"]) == 87
    vanilla, retrained = compare(audits["vanilla"], audits["retrained"]), compare(audits["retrained"], audits["retrained"])
    for modality in ("image+text", "text-only"):
        assert vanilla[modality]["auc"]["min_k"]["low"] > 0.8 > retrained[modality]["auc"]["min_k"]["high"]
        assert abs(retrained[modality]["auc"]["min_k"]["auc"] - 0.5) < 0.2  # 2 forget profiles: profile-level spread
        assert retrained[modality]["forget_quality"] == 1.0 and retrained[modality]["privleak"] == 0.0
        assert vanilla[modality]["privleak"] > 30
    print(time.time() - t0, {m: {k: (round(c["auc"]["min_k"]["auc"], 3), round(c["auc"]["min_k"]["low"], 3),
                   round(c["auc"]["min_k"]["high"], 3), round(c["forget_quality"], 3)) for k, c in
               (("vanilla", vanilla[m]), ("retrained", retrained[m]))} for m in vanilla})


def test_relearning_recovery_by_hand():
    from unlearners.audit.relearn import pooled_recovery, recovery, recovery_markdown, relearn_split

    attack, evaluated = relearn_split(["009", "001", "005"], seed=0)
    assert len(attack) == 2 and len(evaluated) == 1 and sorted(attack + evaluated) == ["001", "005", "009"]
    assert relearn_split(["009", "001", "005"], seed=0) == (attack, evaluated)
    with pytest.raises(ValueError, match="at least 2"):
        relearn_split(["001"])
    task, test_task = "mllmu-zs_forget_gen_img", "mllmu-zs_test_cls_txt"
    other = attack[0]
    q = lambda pid, i: (pid, i, f"q{i}")  # noqa: E731
    vanilla = {task: {q(evaluated[0], 0): 0.9, q(evaluated[0], 1): 0.7, q(other, 0): 1.0},
               test_task: {q(other, 0): 1.0, q(evaluated[0], 0): 1.0}}
    unlearned = {task: {q(evaluated[0], 0): 0.1, q(evaluated[0], 1): 0.1, q(other, 0): 0.0},
                 test_task: {q(other, 0): 1.0, q(evaluated[0], 0): 0.98}}
    relearned = {task: {q(evaluated[0], 0): 0.5, q(evaluated[0], 1): 0.3, q(other, 0): 1.0},
                 test_task: {q(other, 0): 1.0, q(evaluated[0], 0): 1.0}}
    rec = recovery(vanilla, unlearned, relearned, evaluated)
    gen = rec["forget"]["gen"]["img"]  # only the evaluated profile's two questions: gap 0.7, back 0.3
    assert (gen["vanilla"], gen["unlearned"], gen["relearned"], gen["questions"]) == \
        (pytest.approx(0.8), pytest.approx(0.1), pytest.approx(0.4), 2)
    assert gen["recovered"] == pytest.approx(0.3 / 0.7)
    assert rec["test"]["cls"]["txt"]["recovered"] is None  # gap 0.01 < 0.05: nothing was forgotten
    assert pooled_recovery(rec["forget"]["gen"]) == pytest.approx(0.3 / 0.7)
    table = recovery_markdown({"ga (image+text)": rec}, steps=10)
    assert "| ga (image+text) | n/a | 43 % | n/a | n/a | n/a | n/a |" in table
