"""The suite's backend generates exactly what stock hf-multimodal generates, text-only requests included."""

import gc

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.hf_vlms import HFMultimodalLM
from lm_eval.models.huggingface import HFLM

from mllmu_tasks import docs
from mllmu_tasks.backend import MLLMUVisionLM, no_per_batch_gc
from mllmu_tasks.mini.tiny_vlm import build_tiny_vlm
from mllmu_tasks.prompts import wrap_released
from mllmu_tasks.sources import resolve_source

GEN = {"until": ["\n\n"], "do_sample": False, "max_gen_toks": 12}


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-backend"), size="test", seed=1)


def requests(modality, n=6):
    out = []
    for doc in docs.build_docs("retain", "gen", modality, resolve_source("mini"), 10).select(range(n)):
        args = (wrap_released(docs.doc_to_body(doc)), dict(GEN))
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
