"""``--protocol released``: the authors' training scripts as written, checked against hand computations.

Labels: every non-pad token (RELEASED-PROTOCOL.md section 9). Losses: the
model's own mean token loss (``outputs.loss``), KL_Min's ``batchmean`` KL over
every position, NPO on batch-mean losses (section 10).
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from unlearners import api, data
from unlearners.config import DataArguments, ModelArguments, UnlearnTrainingArguments
from unlearners.methods import get_method
from unlearners.released import SequentialPasses, per_epoch_linear_schedule

MINI = DataArguments(source="mini", forget_ratio=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny base VLM and a second one with other weights and the same tokenizer (a reference)."""
    root = tmp_path_factory.mktemp("released")
    return build_tiny_vlm(root / "base", size="test"), build_tiny_vlm(root / "other", size="test", seed=7)


def targs(out, **kw):
    return UnlearnTrainingArguments(**{"output_dir": str(out), "use_cpu": True, "max_steps": 1, "seed": 0,
                                       "disable_tqdm": True, "per_device_train_batch_size": 3,
                                       "protocol": "released", **kw})


def trainer_for(name, base, reference, tmp_path, **kw):
    method = get_method(name)(None, protocol="released")
    margs = ModelArguments(model=str(base), lora=False, reference_model=str(reference) if reference else None)
    return api.build_trainer(method, margs, MINI, targs(tmp_path / name, **kw))


def test_text_layout_and_labels_on_every_non_pad_token(models, tmp_path):
    base, _ = models
    trainer = trainer_for("ga", base, None, tmp_path)
    collator, tok = trainer.data_collator, trainer.processing_class.tokenizer
    examples = data.load_examples("mini", "forget", "image+text", forget_ratio=10)[:3]
    batch = collator.encode(examples)
    ids, labels = batch["input_ids"], batch["labels"]
    pad = tok.pad_token_id
    assert (ids[:, -1] == pad).any()  # answers of different lengths: right padding
    assert torch.equal(labels, ids.masked_fill(ids == pad, -100))
    image = tok.convert_ids_to_tokens(trainer.model.config.image_token_id)
    for row, ex in zip(ids, examples):
        text = tok.decode(row[row != pad])
        # BOS, the released LLaVA layout, the image token expanded; no EOS after the answer
        assert text == f"{tok.bos_token}USER: {image * 16}\n{ex.question}\nASSISTANT: {ex.answer}"


@pytest.mark.parametrize("name", ["finetune", "ga", "grad_diff", "kl_min", "npo"])
def test_one_step_loss_equals_the_hand_computation(models, tmp_path, name):
    base, other = models
    reference = other if name in ("kl_min", "npo") else None  # a reference unlike the model: KL > 0
    trainer = trainer_for(name, base, reference, tmp_path)
    model, method = trainer.model, trainer.method
    ref_model = None
    if reference:
        from transformers import AutoModelForImageTextToText
        ref_model = AutoModelForImageTextToText.from_pretrained(reference).eval()
    loader = trainer.get_train_dataloader()
    batches = list(loader) if name in ("grad_diff", "kl_min") else [next(iter(loader))]
    if name in ("grad_diff", "kl_min"):  # whole forget pass, then whole retain pass
        streams = [next(iter(b)) for b in batches]
        n_forget = math.ceil(len(data.load_examples("mini", "forget", "image+text", forget_ratio=10)) / 3)
        assert streams[:n_forget] == ["forget"] * n_forget and set(streams[n_forget:]) == {"retain"}
        batches = [batches[0], batches[-1]]
    for inputs in batches:
        [(stream, batch)] = inputs.items() if len(inputs) == 1 else [(s, inputs[s]) for s in inputs][:1]
        loss, _ = method.loss(model, inputs, trainer.reference)
        with torch.no_grad():
            out = model(**batch)  # the released "outputs.loss": mean over every non-pad target token
            hand = {"finetune": out.loss, "ga": -out.loss}.get(name)
            if name == "grad_diff":
                hand = -out.loss if stream == "forget" else out.loss
            if name == "kl_min":
                if stream == "forget":
                    hand = -out.loss
                else:
                    p_ref = torch.softmax(ref_model(**{k: v for k, v in batch.items() if k != "labels"}).logits, -1)
                    log_p = torch.log_softmax(out.logits, -1)
                    kl = (p_ref * (torch.log(p_ref) - log_p)).sum() / batch["input_ids"].shape[0]
                    assert kl > 0
                    hand = out.loss + kl
            if name == "npo":
                ref_loss = ref_model(**batch).loss
                hand = -F.logsigmoid(0.4 * (out.loss - ref_loss)) * 2 / 0.4
        assert loss.item() == pytest.approx(hand.item(), rel=1e-5, abs=1e-6), (name, stream)


@pytest.mark.parametrize("name", ["finetune", "ga", "grad_diff", "kl_min", "npo"])
def test_one_released_step_writes_a_checkpoint(models, tmp_path, name):
    base, other = models
    margs = ModelArguments(model=str(base), reference_model=str(other) if name == "npo" else None)
    out = api.run(name, margs, MINI, targs(tmp_path / "out", learning_rate=1e-3))
    card = json.loads((out / "unlearn_config.json").read_text())
    assert card["protocol"] == "released" and card["method"] == name
    assert (out / "model.safetensors").exists()


def test_released_settings_refused_before_loading(models, tmp_path):
    base, _ = models
    with pytest.raises(ValueError, match="image\\+text pairs only"):
        api.run("ga", ModelArguments(model=str(base)), DataArguments(source="mini", modality="text-only"),
                targs(tmp_path / "a"))
    with pytest.raises(ValueError, match="needs --reference_model"):
        api.run("npo", ModelArguments(model=str(base)), MINI, targs(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_optimizer_defaults_and_schedules(models, tmp_path):
    base, _ = models
    trainer = trainer_for("grad_diff", base, None, tmp_path, max_steps=-1, num_train_epochs=2)
    assert trainer.args.adam_epsilon == 1e-6 and trainer.args.max_grad_norm == 0.0
    assert trainer.args.per_device_train_batch_size == 1 and isinstance(trainer.train_dataset, SequentialPasses)
    # per-epoch step of a linear schedule over (forget + retain batches) x epochs (released GA_Difference)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = per_epoch_linear_schedule(opt, num_training_steps=6, steps_per_epoch=3)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1, 1, 1, 5 / 6, 5 / 6, 5 / 6])
    # each epoch reshuffles within each set, forget first
    passes = trainer.train_dataset
    first = [id(ex) for item in passes.items for ex in next(iter(item.values()))]
    passes.set_epoch(1)
    second = [id(ex) for item in passes.items for ex in next(iter(item.values()))]
    assert sorted(first) == sorted(second) and first != second
    assert next(iter(passes.items[0])) == "forget"
    # the corrected protocol keeps the Trainer's defaults
    corrected = api.build_trainer(get_method("grad_diff")(), ModelArguments(model=str(base), lora=False), MINI,
                                  targs(tmp_path / "c", protocol="corrected"))
    assert corrected.args.adam_epsilon == 1e-8 and corrected.args.max_grad_norm == 1.0


def test_cli_help_lists_the_protocol():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "unlearners.cli", "--method", "npo", "-h"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--protocol {corrected,released}" in proc.stdout
