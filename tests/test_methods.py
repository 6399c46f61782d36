"""The methods beyond the paper's four: each loss against an independent computation on a tiny batch."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageTextToText, AutoProcessor

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from unlearners import data
from unlearners.collator import AnswerOnlyCollator
from unlearners.methods import get_method
from unlearners.methods.losses import forward_logits, weighted_ascent
from unlearners.methods.refusals import REFUSALS, refusal_for


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = build_tiny_vlm(tmp_path_factory.mktemp("base"), size="test")
    model = AutoModelForImageTextToText.from_pretrained(base).eval()
    collate = AnswerOnlyCollator(AutoProcessor.from_pretrained(base))
    forget = data.load_examples("mini", "forget", "image+text", forget_ratio=10)[:3]
    retain = data.load_examples("mini", "retain", "text-only", forget_ratio=10)[:3]
    batches = {"forget": collate.encode(forget), "retain": collate.encode(retain)}
    return model, collate, forget, batches


def per_token(logits, labels):
    """Per answer token: (row, log p) with F.cross_entropy, position by position (independent of the losses)."""
    out = []
    for b in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            if labels[b, t] != -100:
                out.append((b, -F.cross_entropy(logits[b, t - 1:t].double(), labels[b, t:t + 1]).item()))
    return out


def retain_ce(model, batches):
    return model(**batches["retain"]).loss.item()  # transformers' own causal-LM loss


def perturbed(model, scale=0.5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    def reference(batch):
        logits = forward_logits(model, batch)
        return logits + scale * torch.randn(logits.shape, generator=generator)
    return reference


def test_simnpo_is_length_normalised_npo(setup):
    model, _, _, batches = setup
    method = get_method("simnpo")()
    cfg = method.config
    assert (cfg.beta, cfg.gamma, cfg.forget_weight, cfg.retain_weight) == (4.5, 0.0, 0.125, 1.0)
    with torch.no_grad():
        loss, parts = method.loss(model, batches, None)
        logits = model(**batches["forget"]).logits
    tokens = per_token(logits, batches["forget"]["labels"])
    terms = []
    for b in range(3):
        logps = [lp for row, lp in tokens if row == b]
        terms.append(-(2 / 4.5) * math.log(1 / (1 + math.exp(4.5 * sum(logps) / len(logps)))))
    expected = 0.125 * sum(terms) / 3 + retain_ce(model, batches)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["retain_nll"] == pytest.approx(retain_ce(model, batches), rel=1e-5)


@pytest.mark.parametrize("name", ["wga", "satimp"])
def test_weighted_ascent_weights_each_token_by_its_probability(setup, name):
    model, _, _, batches = setup
    method = get_method(name)()
    cfg = method.config
    weight = (lambda p: p ** cfg.beta) if name == "wga" else (lambda p: p ** cfg.beta1 * (1 - p) ** cfg.beta2)
    logits = model(**batches["forget"]).logits
    loss, _ = method.loss(model, batches, None)
    tokens = per_token(logits.detach(), batches["forget"]["labels"])
    forget = sum(weight(math.exp(lp)) * lp for _, lp in tokens) / len(tokens)
    assert loss.item() == pytest.approx(cfg.forget_weight * forget + cfg.retain_weight * retain_ce(model, batches),
                                        rel=1e-5)
    # the weight carries no gradient: d loss / d log p_t = w_t / N (checked through one token's logit)
    logits = forward_logits(model, batches["forget"]).detach().requires_grad_(True)
    weighted_ascent(logits, batches["forget"]["labels"], weight).backward()
    labels = batches["forget"]["labels"]
    b, t = next((b, t) for b in range(3) for t in range(1, labels.shape[1]) if labels[b, t] != -100)
    p = torch.softmax(logits[b, t - 1].double(), -1)
    target = labels[b, t].item()
    w = weight(p[target].item())
    # d(w log p_target)/dz_target = w (1 - p_target), over N answer tokens
    assert logits.grad[b, t - 1, target].item() == pytest.approx(w * (1 - p[target].item()) / len(tokens), rel=1e-4)


def test_undial_distils_the_adjusted_reference(setup):
    model, _, _, batches = setup
    method = get_method("undial")()
    assert (method.config.beta, method.config.forget_weight, method.config.retain_weight) == (10.0, 1.0, 0.0)
    assert method.data_streams() == ("forget",)
    reference = perturbed(model)
    torch.manual_seed(0)
    with torch.no_grad():
        ref_logits = reference(batches["forget"])
        loss, _ = method.loss(model, batches, lambda batch: ref_logits)
        logits = model(**batches["forget"]).logits
    labels = batches["forget"]["labels"]
    total, count = 0.0, 0
    for b in range(3):
        for t in range(1, labels.shape[1]):
            if labels[b, t] == -100:
                continue
            teacher = ref_logits[b, t - 1].double().clone()
            teacher[labels[b, t]] -= 10.0
            total += F.cross_entropy(logits[b, t - 1:t].double(), torch.softmax(teacher, -1)[None]).item()
            count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_idk_dpo_prefers_the_refusal_against_the_reference(setup):
    model, collate, forget, batches = setup
    method = get_method("idk_dpo")()
    streams = method.prepare_streams({"forget": forget, "retain": forget[:1]})
    assert list(streams) == ["forget", "forget_idk", "retain"]
    assert [e.answer for e in streams["forget_idk"]] == [refusal_for(e.question) for e in forget]
    assert [e.question for e in streams["forget_idk"]] == [e.question for e in forget]
    batches = {**batches, "forget_idk": collate.encode(streams["forget_idk"])}
    with torch.no_grad():
        same, _ = method.loss(model, batches, lambda batch: forward_logits(model, batch))
        assert same.item() == pytest.approx((2 / 0.1) * math.log(2) + retain_ce(model, batches), rel=1e-5)
        reference = perturbed(model)
        cache = {}
        fixed = lambda batch: cache.setdefault(id(batch), reference(batch))  # noqa: E731
        loss, _ = method.loss(model, batches, fixed)
        ratios = {}
        for stream in ("forget", "forget_idk"):
            labels = batches[stream]["labels"]
            own = per_token(model(**batches[stream]).logits, labels)
            ref = per_token(cache[id(batches[stream])], labels)
            ratios[stream] = [sum(lp for r, lp in own if r == b) - sum(lp for r, lp in ref if r == b)
                              for b in range(3)]
    dpo = [-(2 / 0.1) * math.log(1 / (1 + math.exp(-0.1 * (w - l))))
           for w, l in zip(ratios["forget_idk"], ratios["forget"])]
    assert loss.item() == pytest.approx(sum(dpo) / 3 + retain_ce(model, batches), rel=1e-5)


def test_idk_nll_trains_on_refusals(setup):
    model, collate, forget, batches = setup
    method = get_method("idk_nll")()
    streams = method.prepare_streams({"forget": forget, "retain": forget})
    assert list(streams) == ["forget_idk", "retain"]
    idk = collate.encode(streams["forget_idk"])
    tokenizer = collate.tokenizer
    answers = [tokenizer.decode(row[row != -100], skip_special_tokens=True).strip() for row in idk["labels"]]
    assert answers == [refusal_for(e.question) for e in forget] and set(answers) <= set(REFUSALS)
    with torch.no_grad():
        loss, _ = method.loss(model, {"forget_idk": idk, "retain": batches["retain"]}, None)
    assert loss.item() == pytest.approx(model(**idk).loss.item() + retain_ce(model, batches), rel=1e-5)


def test_refusals_spread_over_the_list_and_aligned_streams_stay_paired():
    questions = [e.question for e in data.load_examples("mini", "forget", "text-only", forget_ratio=10)]
    assert len({refusal_for(q) for q in questions}) >= 15  # 116 questions over 20 refusals
    forget = data.load_examples("mini", "forget", "text-only", forget_ratio=10)
    method = get_method("idk_dpo")()
    streams = method.prepare_streams({"forget": forget, "retain": forget[:7]})
    ds = data.PairedDataset(streams, seed=3, aligned=method.aligned_streams)
    for i in range(len(ds)):
        assert ds[i]["forget"].question == ds[i]["forget_idk"].question
    with pytest.raises(ValueError, match="must align"):
        data.PairedDataset({"forget": forget, "forget_idk": forget[:3]}, aligned=("forget_idk",))


@pytest.mark.parametrize("name", ["simnpo", "idk_nll", "idk_dpo", "wga", "satimp", "undial", "mmunlearner"])
def test_one_full_fine_tuning_step_changes_the_language_model(setup, tmp_path, name):
    from safetensors.torch import load_file

    from unlearners import api
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments

    model = setup[0]
    base = model.name_or_path
    out = api.run(name, ModelArguments(model=base, lora=False), DataArguments(source="mini", forget_ratio=10),
                  UnlearnTrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=1,
                                           learning_rate=1e-2, per_device_train_batch_size=2, disable_tqdm=True,
                                           save_strategy="no", report_to=[]))
    before, after = load_file(f"{base}/model.safetensors"), load_file(str(out / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("language_model.") for k in changed)
    assert not any(k.startswith("vision_tower.") for k in changed)  # frozen by default
    reloaded = AutoModelForImageTextToText.from_pretrained(out)
    assert reloaded.config.model_type == "llava"


def test_rmu_pushes_forget_activations_to_the_scaled_direction(setup):
    from unlearners.methods.rmu import RMUConfig
    from unlearners.model import frozen_copy_reference

    model, _, _, batches = setup
    method = get_method("rmu")(RMUConfig(steering_coeff=3.0, alpha=2.0, direction_seed=4))
    assert method.layer_index(model) == 0  # 2 decoder layers: not more than 7, so (2 - 1) // 2
    with torch.no_grad():
        loss, parts = method.loss(model, batches, frozen_copy_reference(model, "cpu"))
        hidden = model(**{k: v for k, v in batches["forget"].items() if k != "labels"},
                       output_hidden_states=True).hidden_states[1]
    assert parts["retain_activation_mse"] == pytest.approx(0.0, abs=1e-10)  # the reference is the model
    u = torch.rand(hidden.shape[-1], generator=torch.Generator().manual_seed(4)).double()
    target = 3.0 * u / math.sqrt(float((u ** 2).sum()))
    labels = batches["forget"]["labels"]
    squares = [float(((hidden[b, t].double() - target) ** 2).mean())
               for b in range(labels.shape[0]) for t in range(labels.shape[1]) if labels[b, t] != -100]
    assert loss.item() == pytest.approx(sum(squares) / len(squares), rel=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_rmu_trains_only_the_chosen_down_projections(setup, tmp_path, lora):
    from unlearners import api
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments

    base = setup[0].name_or_path
    trainer = api.build_trainer(get_method("rmu")(), ModelArguments(model=base, lora=lora),
                                DataArguments(source="mini", forget_ratio=10),
                                UnlearnTrainingArguments(output_dir=str(tmp_path), use_cpu=True, max_steps=1,
                                                         report_to=[], disable_tqdm=True))
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    suffix = ["layers.0.mlp.down_proj.lora_A.default.weight", "layers.0.mlp.down_proj.lora_B.default.weight"] \
        if lora else ["layers.0.mlp.down_proj.weight"]
    assert [n.split("language_model.")[-1] for n in trainable] == suffix
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)]
    # under LoRA, B starts at zero, so A's first gradient is zero: only B moves in step one
    assert changed == (trainable[1:] if lora else trainable)


def test_mmunlearner_mask_is_the_fisher_ratio_and_masks_only_the_ascent(setup):
    from unlearners.methods.mmunlearner import MMUnlearnerConfig

    model, collate, forget, batches = setup
    retain = data.load_examples("mini", "retain", "image+text", forget_ratio=10)[:4]
    method = get_method("mmunlearner")(MMUnlearnerConfig(retain_weight=0.0))
    method.prepare(model, {"forget": forget, "retain": retain}, collate, 2, "cpu")
    # independently: squared gradients of transformers' own loss, batch by batch
    def fisher(examples):
        total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
        chunks = [examples[i:i + 2] for i in range(0, len(examples), 2)]
        for chunk in chunks:
            model.zero_grad()
            model(**collate.encode(chunk)).loss.backward()
            for n, p in model.named_parameters():
                if p.grad is not None:  # unused weights (LLaVA's last vision layer) get none
                    total[n] += p.grad ** 2 / len(chunks)
        model.zero_grad()
        return total
    f, r = fisher(forget), fisher(retain)
    for n, p in model.named_parameters():
        assert torch.equal(method.masks[id(p)], (f[n] + 1e-15) / (r[n] + 1e-15) >= 1.0), n
    selected, total = method.selected
    assert total == sum(p.numel() for p in model.parameters()) and 0 < selected < total
    assert method.card_notes()["mask_selected_percent"] == pytest.approx(100 * selected / total, abs=1e-4)
    # the forget term's gradient is the plain ascent gradient times the mask
    loss, _ = method.loss(model, batches, None)
    loss.backward()
    masked = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    (-model(**batches["forget"]).loss).backward()
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(masked[n], p.grad * method.masks[id(p)], rtol=1e-4, atol=1e-7)
        else:
            assert n not in masked
    model.zero_grad()


def test_manu_prunes_the_neurons_the_forget_set_uses_more(setup, tmp_path):
    import copy

    from unlearners.methods.manu import MANUConfig

    model, collate, forget, _ = setup
    retain = data.load_examples("mini", "retain", "image+text", forget_ratio=10)[:4]
    edited = copy.deepcopy(model)
    method = get_method("manu")(MANUConfig(fraction=0.1))
    streams = method.prepare_streams({"forget": forget, "retain": retain})
    assert sorted(streams) == ["forget", "forget_text", "retain", "retain_text"]
    assert all(e.image is None for e in streams["forget_text"])
    method.prepare(edited, streams, collate, 2, "cpu")

    # independently: every token's activation entering each down_proj, then the four functions
    names = [n for n, _ in model.named_modules() if n.endswith("mlp.down_proj") and "language_model" in n]
    def stats(examples):
        seen = {n: [] for n in names}
        handles = [model.get_submodule(n).register_forward_pre_hook(
            lambda m, args, n=n: seen[n].append(args[0])) for n in names]
        with torch.no_grad():
            for i in range(0, len(examples), 2):
                batch = collate.encode(examples[i:i + 2])
                before = {n: len(v) for n, v in seen.items()}
                model(**{k: v for k, v in batch.items() if k != "labels"})
                for n in names:
                    seen[n][before[n]] = seen[n][before[n]][batch["attention_mask"].bool()]
        for h in handles:
            h.remove()
        out = {}
        for n in names:
            a = torch.cat(seen[n]).double()
            out[n] = torch.stack([a.abs().mean(0), (a > 0).double().mean(0), a.var(0, unbiased=False),
                                  a.pow(2).mean(0).sqrt()])
        return out
    best = None
    for f_ex, r_ex in [(forget, retain), (streams["forget_text"], streams["retain_text"])]:
        f, r = stats(f_ex), stats(r_ex)
        ratio = torch.cat([f[n] / (r[n] + 1e-8) for n in names], dim=1)
        score = (ratio / ratio.median(dim=1).values[:, None]).mean(0)
        best = score if best is None else torch.maximum(best, score)
    k = round(0.1 * best.numel())
    chosen = set(torch.argsort(-best, stable=True)[:k].tolist())
    width = model.get_submodule(names[0]).in_features
    assert {i + width * j for j, n in enumerate(names) for i in method.pruned[n]} == chosen
    for j, n in enumerate(names):
        w_before, w_after = model.get_submodule(n).weight, edited.get_submodule(n).weight
        idx = method.pruned[n]
        assert (w_after[:, idx] == 0).all()
        keep = [i for i in range(width) if i not in idx]
        assert torch.equal(w_after[:, keep], w_before[:, keep])


def test_manu_writes_an_ordinary_checkpoint_without_training(setup, tmp_path):
    import json

    from safetensors.torch import load_file

    from unlearners import api
    from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments

    base = setup[0].name_or_path
    out = api.run("manu", ModelArguments(model=base), DataArguments(source="mini", forget_ratio=10),
                  UnlearnTrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[],
                                           disable_tqdm=True, per_device_train_batch_size=8))
    before, after = load_file(f"{base}/model.safetensors"), load_file(str(out / "model.safetensors"))
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed and set(changed) <= {"language_model.model.layers.0.mlp.down_proj.weight",
                                        "language_model.model.layers.1.mlp.down_proj.weight"}
    card = json.loads((out / "unlearn_config.json").read_text())
    pruned = sum(len(v) for v in card["pruned_neurons"].values())
    assert card["lora"] is False and pruned == round(0.05 * 2 * 256)
    zeroed = sum(int((after[k] == 0).all(dim=0).sum()) for k in changed)
    assert zeroed == pruned


def _token_mean_worker(rank: int, port: int, out):
    import torch.distributed as dist

    from unlearners.methods.losses import token_mean

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    total, count = torch.tensor([6.0, 30.0][rank]), torch.tensor([2, 8][rank])
    out[rank] = float(token_mean(total, count))
    dist.destroy_process_group()


def test_token_mean_normalises_by_the_global_token_count_across_processes():
    """Two gloo processes with 2 and 8 answer tokens: each divides by the mean count 5, so DDP's average of the
    two losses (and gradients) is the single process's token mean (6 + 30) / 10, not (6/2 + 30/8) / 2."""
    import socket

    import torch.multiprocessing as mp

    from unlearners.methods.losses import token_mean

    assert float(token_mean(torch.tensor(6.0), torch.tensor(2))) == 3.0  # one process: the plain mean
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_token_mean_worker, args=(port, out), nprocs=2, join=True)
    assert (out[0], out[1]) == (6.0 / 5, 30.0 / 5)
    assert (out[0] + out[1]) / 2 == pytest.approx((6.0 + 30.0) / 10)


@pytest.mark.parametrize("name", sorted(__import__("unlearners.methods", fromlist=["METHODS"]).METHODS))
def test_every_method_setting_has_its_help_in_the_cli(name, capsys):
    import dataclasses
    import re

    from unlearners.cli import parse

    with pytest.raises(SystemExit):
        parse(["--method", name, "-h"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for field in dataclasses.fields(get_method(name).config_class):
        help_text = field.metadata.get("help", "")
        assert help_text, f"{name}.{field.name} has no help"
        assert f"--{field.name} {field.name.upper()}" in text and re.sub(r"\s+", " ", help_text) in text
