"""The suite's backend generates exactly what stock hf-multimodal generates, text-only requests included."""

import gc
import subprocess
import sys

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM
from lm_eval.models.huggingface import HFLM
from transformers import AutoTokenizer

from mllmu_tasks import docs
from mllmu_tasks.backend import GeneratedStopStrings, MLLMUVisionLM, no_per_batch_gc
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from mllmu_tasks.sources import resolve_source

GEN = {"until": ["\n\n"], "do_sample": False, "max_gen_toks": 12}


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-backend"), size="test", seed=1)


def requests(modality, n=6, gen=GEN):
    out = []
    for doc in docs.build_docs("retain", "gen", modality, resolve_source("mini"), 10).select(range(n)):
        args = (docs.doc_to_released_prompt(doc), dict(gen))
        if modality == "img":
            args += ({"visual": docs.doc_to_image(doc)},)
        out.append(Instance("generate_until", doc, args, 0))
    return out


def test_answers_equal_stock_backends_in_mixed_order(tiny_vlm):
    images, texts = requests("img"), requests("txt")
    stock = HFMultimodalLM(pretrained=str(tiny_vlm), device="cpu", batch_size=4)
    want_images = stock.generate_until(images, True)
    want_texts = HFLM.generate_until(stock, texts, True)  # stock's text-only path
    ours = MLLMUVisionLM(pretrained=str(tiny_vlm), device="cpu", batch_size=4)
    mixed = [r for pair in zip(images, texts) for r in pair]
    got = ours.generate_until(mixed, True)
    assert got[0::2] == want_images and got[1::2] == want_texts


def test_gc_collect_is_restored():
    before = gc.collect
    with no_per_batch_gc():
        assert gc.collect() == 0
    assert gc.collect is before
    with pytest.raises(RuntimeError):
        with no_per_batch_gc():
            raise RuntimeError("boom")
    assert gc.collect is before


# Stop strings this random tiny model does produce, at different steps in different rows
# (its untrained answers repeat fragments such as " K" and "occupation").
CUTTING = {"until": [" K", "occupation"], "do_sample": False, "max_gen_toks": 50}


def test_token_level_stops_cut_like_stock_without_decoding_each_step(tiny_vlm):
    stock = HFMultimodalLM(pretrained=str(tiny_vlm), device="cpu", batch_size=3)
    uncut = stock.generate_until(requests("img", gen={**CUTTING, "until": []}), True)
    calls = {"stock": 0}
    batch_decode = stock.tokenizer.batch_decode

    def counted(*args, **kwargs):
        calls["stock"] += 1
        return batch_decode(*args, **kwargs)

    stock.tokenizer.batch_decode = counted
    want = stock.generate_until(requests("img", gen=CUTTING), True)
    want_texts = HFLM.generate_until(stock, requests("txt", gen=CUTTING), True)
    # The stops really cut: several answers are shorter than uncut, at different lengths.
    cut = [len(w) for w, u in zip(want, uncut) if len(w) < len(u)]
    assert len(cut) >= 3 and len(set(cut)) >= 2 and calls["stock"] > 0

    ours = MLLMUVisionLM(pretrained=str(tiny_vlm), device="cpu", batch_size=3)
    ours.tokenizer.batch_decode = lambda *a, **k: pytest.fail("decoded the batch during generation")
    got = ours.generate_until(requests("img", gen=CUTTING) + requests("txt", gen=CUTTING), True)
    assert got == want + want_texts


def test_generated_stop_strings_ignore_the_prompt(tiny_vlm):
    tok = AutoTokenizer.from_pretrained(tiny_vlm)
    prompt = tok("Q: name?\n", add_special_tokens=False, return_tensors="pt").input_ids
    newline = tok("\n", add_special_tokens=False, return_tensors="pt").input_ids
    word = tok("Ann", add_special_tokens=False, return_tensors="pt").input_ids
    stop = GeneratedStopStrings(tok, ["\n\n"], prompt_len=prompt.shape[1])
    # Row 0: the prompt's "\n" + a generated "\n" spans the prompt's end: not a stop.
    assert stop(torch.cat([prompt, newline], 1), None).tolist() == [False]
    # Two rows at once, per row: "\nAnn\n" goes on, "Ann\n\n" stops.
    rows = torch.cat([torch.cat([prompt, newline, word, newline], 1), torch.cat([prompt, word, newline, newline], 1)])
    assert stop(rows, None).tolist() == [False, True]


def test_backend_declared_under_the_lm_eval_models_entry_points():
    """For harness versions that discover backends from installed packages (group ``lm_eval.models``)."""
    from importlib.metadata import entry_points

    from mllmu_tasks.backend_registry import BACKEND_NAMES, BACKEND_TARGET

    ours = {e.name: e for e in entry_points(group="lm_eval.models") if e.value.startswith("mllmu_tasks")}
    assert set(ours) == set(BACKEND_NAMES) and {e.value for e in ours.values()} == {BACKEND_TARGET}
    assert ours["mllmu-vlm"].load() is MLLMUVisionLM


def test_registering_the_backend_imports_neither_torch_nor_the_backend():
    """mllmu-eval registers ``mllmu-vlm`` at start-up; the heavy import waits until a run asks for it."""
    code = ("import sys; from mllmu_tasks.backend_registry import register; register(); "
            "print(sorted(m for m in ('torch', 'transformers', 'mllmu_tasks.backend') if m in sys.modules)); "
            "from lm_eval.api.registry import get_model; print(get_model('mllmu-vlm').__name__, "
            "get_model('hf-multimodal-ll').__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "MLLMUVisionLM MLLMUVisionLM"]


def test_token_limit_beats_the_checkpoints_generation_config(tiny_vlm, tmp_path):
    """A checkpoint whose generation_config sets max_new_tokens (many hub ones do) cannot lengthen answers past
    the task's max_gen_toks (the released 5 tokens of Idefics2 text-only classification, for one)."""
    import json
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_vlm, ckpt)
    cfg = json.loads((ckpt / "generation_config.json").read_text())
    (ckpt / "generation_config.json").write_text(json.dumps({**cfg, "max_new_tokens": 50}))
    gen = {"until": [], "do_sample": False, "max_gen_toks": 3}
    lm = MLLMUVisionLM(pretrained=str(ckpt), device="cpu", batch_size=4)
    tok = AutoTokenizer.from_pretrained(ckpt)
    reqs = requests("img", n=4, gen=gen) + requests("txt", n=4, gen=gen)
    answers = lm.generate_until(reqs, True)
    # (a token that decodes to part of a character shows as U+FFFD, which re-encodes as 3 byte tokens: dropped)
    lengths = [len(tok(a.replace("\ufffd", ""), add_special_tokens=False)["input_ids"]) for a in answers]
    assert all(n <= 3 for n in lengths) and max(lengths) == 3, (answers, lengths)


def test_a_prompt_longer_than_the_context_is_refused_not_cut(tiny_vlm):
    """lm-eval would left-truncate the ids (not the images): the first demonstrations lost, or a crash."""
    from mllmu_tasks.backend import ContextOverflowError
    from mllmu_tasks.sources import SettingsError

    gen = {"until": ["ASSISTANT:"], "do_sample": False, "max_gen_toks": 8}
    lm = MLLMUVisionLM(pretrained=str(tiny_vlm), device="cpu", batch_size=4, max_length=40)
    for modality in ("img", "txt"):
        with pytest.raises(ContextOverflowError, match=r"a prompt of \d+ tokens .* leaves 32"):
            lm.generate_until(requests(modality, n=2, gen=gen), True)
    assert issubclass(ContextOverflowError, SettingsError)  # mllmu-eval: one line, exit 2
    roomy = MLLMUVisionLM(pretrained=str(tiny_vlm), device="cpu", batch_size=4)
    assert len(roomy.generate_until(requests("img", n=2, gen=gen), True)) == 2
