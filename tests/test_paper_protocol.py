"""The paper protocol, exactly: released prompts byte for byte, few-shot demonstrations, scored questions, answer cut.

Expected prompts are written out below as literals (every space and newline
as the released ``eval.py`` writes them: RELEASED-PROTOCOL.md sections 2-4);
the demonstration draw is checked against its documented formula; scored
question counts are recomputed from the parquet files with pyarrow; answers
from a scripted backend are scored by hand.
"""

import json
import random

import pyarrow.parquet as pq
import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager

from conftest import eval_row, make_test_set_row, png_bytes, write_config
from mllmu_tasks import MINI_DATA_DIR, TASKS_DIR, docs, metrics

SETS, KINDS, MODS = docs.SETS, docs.KINDS, ("img", "txt")
PEOPLE = {"001": ("Ann Lee", "doctor"), "002": ("Bo Ruiz", "painter"), "003": ("Cy Oto", "baker"),
          "004": ("Di Park", "farmer"), "005": ("Ed Wu", "tailor"), "900": ("Famous Person", "actor"),
          "901": ("Other Star", "singer")}
FORGET, RETAIN, CELEBRITY = ["001", "002"], ["003", "004", "005"], ["900", "901"]
CLOZE_INSTR = "Please **ONLY** provide the correct answer that should replace the [Blank]."
CLS_INSTR = "Just give ONE letter representing the answer directly."


def paraphrased(row: dict) -> dict:
    """A Test_Set version of a row: every question ends in " (p)"; 001's cloze list is reordered and longer."""
    out = json.loads(json.dumps({k: v for k, v in row.items() if k != "image"}))
    for items in (out["Classification_Task"]["Image_Textual_Questions"], out["Classification_Task"]["Pure_Text_Questions"],
                  out["Generation_Task"], out["Mask_Task"]):
        for item in items:
            item["Question"] += " (p)"
    if row["ID"] == "001":  # [Pure_Text, Image_Textual, Image_Textual]: positions differ from Full_Set's [img, txt]
        img, txt = out["Mask_Task"]
        out["Mask_Task"] = [txt, img, {"Question": "This person is employed as a __. (p)", "Ground_Truth": "doctor",
                                       "Type": "Image_Textual"}]
    return make_test_set_row({**out, "image": None}, [png_bytes((10, 10, 10)), png_bytes((20, 20, 20))])


def write_bench(root, celebrities=CELEBRITY):
    rows = {pid: eval_row(pid, *PEOPLE[pid], png_bytes((int(pid[-1]) * 40, 0, 0))) for pid in PEOPLE}
    write_config(root, "Full_Set", [rows[p] for p in FORGET + RETAIN])
    write_config(root, "forget_5", [rows[p] for p in FORGET])
    write_config(root, "retain_95", [rows[p] for p in RETAIN])
    write_config(root, "Test_Set", [paraphrased(rows[p]) for p in FORGET + RETAIN])
    write_config(root, "Retain_Set", [rows[p] for p in celebrities])
    return root


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_bench(tmp_path_factory.mktemp("proto"))


def load_tasks(source, names, family, forget_ratio=5, **extra):
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False,
                          metadata={"source": str(source), "forget_ratio": forget_ratio, "model_family": family, **extra})
    return manager.load_task_or_group(names)


# ----------------------------------------------------------------- literal prompts

def target(pid, kind, mod, test=False):
    """The released zero-shot prompt of profile ``pid``'s first question, written out literally."""
    name, job = PEOPLE[pid]
    p = " (p)" if test else ""
    if (kind, mod) == ("cls", "img"):
        return (f"USER: <image>\nWhat is this person's job?{p}\nA: {job}\nB: nurse\nC: pilot\nD: chef\n"
                f"Just give ONE letter representing the answer directly.\nASSISTANT:")
    if (kind, mod) == ("cls", "txt"):
        return (f"USER:\nWhat is {name}'s job?{p}\nA: chef\nB: pilot\nC: nurse\nD: {job}\n"
                f"Just give ONE letter representing the answer directly.\nASSISTANT:")
    if (kind, mod) == ("gen", "img"):
        return (f"USER: <image>\nWhat does this person do?{p}\nAnswer the question based on your trained knowledge "
                f"in one sentence accurately in ENGLISH.\nASSISTANT: ")
    if (kind, mod) == ("gen", "txt"):
        return (f"USER: What does {name} do?{p}\nAnswer the question based on your trained knowledge "
                f"in one sentence in ENGLISH.\nASSISTANT:")
    if (kind, mod) == ("cloze", "img"):
        return f"USER: <image>\nThis person works as a [Blank].{p}\n{CLOZE_INSTR}\nASSISTANT:"
    return f"USER:\n{name} works as a [Blank].{p}\n{CLOZE_INSTR}\nASSISTANT:"


def demo(pid, kind, mod):
    """The released demonstration block of Full_Set profile ``pid`` (one question per kind and modality)."""
    name, job = PEOPLE[pid]
    if (kind, mod) == ("cls", "img"):
        return (f"USER: <image>\nQuestion: What is this person's job?\nA: {job}\nB: nurse\nC: pilot\nD: chef\n"
                f"Correct Answer: A\n")
    if (kind, mod) == ("cls", "txt"):
        return f"USER:\nQuestion: What is {name}'s job?\nA: chef\nB: pilot\nC: nurse\nD: {job}\nCorrect Answer: D\n"
    if (kind, mod) == ("cloze", "img"):
        return f"USER:<image>\nThis person works as a [Blank].\n{CLOZE_INSTR}\nCorrect Answer: {job}\n"
    return f"USER:\n{name} works as a [Blank].\n{CLOZE_INSTR}\nCorrect Answer: {job}\n"


def drawn(set_name, kind, k, seed=1234):
    """The documented draw, computed here independently."""
    pool = sorted({"forget": FORGET, "test": FORGET, "retain": RETAIN, "celebrity": CELEBRITY}[set_name])
    return random.Random(f"{seed}-{set_name}-{kind}-5").sample(pool, min(k, len(pool)))


SET_IDS = {"forget": FORGET, "test": FORGET, "retain": RETAIN, "celebrity": CELEBRITY}


@pytest.mark.parametrize("family", ["llava", "idefics2"])
def test_every_zero_shot_leaf_prompt_is_the_released_string(bench, family):
    names = [f"mllmu-zs_{s}_{k}_{m}" for s in SETS for k in KINDS for m in MODS]
    tasks = load_tasks(bench, names, family)
    for name in names:
        _, set_name, kind, mod = name.split("_")
        task = tasks[name]
        got = {d["ID"]: task.fewshot_context(d, 0) for d in task.test_docs() if d["question_index"] == 0}
        assert sorted(got) == sorted(SET_IDS[set_name]), name
        for pid, prompt in got.items():
            assert prompt == target(pid, kind, mod, test=set_name == "test"), (name, pid)
        meta = task.config.metadata
        assert meta["protocol"] == "zero-shot" and meta["demo_profiles"] == [] and meta["model_family"] == family


@pytest.mark.parametrize("family", ["llava", "idefics2"])
def test_every_paper_protocol_leaf_prompt_is_the_released_string(bench, family):
    names = [f"mllmu_{s}_{k}_{m}" for s in SETS for k in KINDS for m in MODS]
    tasks = load_tasks(bench, names, family)
    for name in names:
        _, set_name, kind, mod = name.split("_")
        task = tasks[name]
        k = {"cls": 1, "cloze": 2 if family == "llava" else 1, "gen": 0}[kind]
        demo_ids = drawn(set_name, kind, k) if k else []
        meta = task.config.metadata
        assert meta["demo_profiles"] == demo_ids and meta["protocol"] == "released", name
        # demonstration rows come from Full_Set, in its order (celebrities are not in it: nothing shown)
        in_full = [p for p in FORGET + RETAIN if p in demo_ids]
        prefix = "".join(demo(p, kind, mod) for p in in_full) if kind != "gen" else ""
        for doc in task.test_docs():
            assert doc["ID"] not in in_full or (set_name == "test" and doc["ID"] == "001" and kind == "cloze"), name
            if doc["question_index"] == 0:
                assert task.fewshot_context(doc, 0) == prefix + target(doc["ID"], kind, mod, set_name == "test")
                images = task.doc_to_image(doc)
                # one copy of the demonstration image per image+text demonstration question, then the question's
                assert len(images) == (len(in_full) + 1 if mod == "img" else 0), name
                if mod == "img" and in_full:
                    assert images[0].getpixel((0, 0)) == (int(in_full[0][-1]) * 40, 0, 0)


def test_generation_stays_zero_shot_and_scores_everything(bench):
    tasks = load_tasks(bench, ["mllmu_forget_gen_img", "mllmu_retain_gen_txt"], "llava")
    assert {d["ID"] for d in tasks["mllmu_forget_gen_img"].test_docs()} == set(FORGET)
    assert {d["ID"] for d in tasks["mllmu_retain_gen_txt"].test_docs()} == set(RETAIN)


def test_test_set_skips_by_position_and_type(bench):
    """LLaVA cloze on the test set: both forget profiles are demonstrations (Full_Set [img@0, txt@1]).

    Test_Set 002 keeps [img@0, txt@1]: both skipped. Test_Set 001 is [txt@0, img@1, img@2]: no position
    matches a demonstration of its own type, so all three are scored (the released rule).
    """
    tasks = load_tasks(bench, ["mllmu_test_cloze_img", "mllmu_test_cloze_txt"], "llava")
    img = [(d["ID"], d["item_index"]) for d in tasks["mllmu_test_cloze_img"].test_docs()]
    txt = [(d["ID"], d["item_index"]) for d in tasks["mllmu_test_cloze_txt"].test_docs()]
    assert img == [("001", 1), ("001", 2)] and txt == [("001", 0)]
    assert tasks["mllmu_test_cloze_img"].config.metadata["scored_questions"] == 2


def test_celebrity_ids_in_full_set(tmp_path):
    """A celebrity ID that Full_Set also has: cloze shows it as a demonstration; classification shows no
    demonstration text and passes no demonstration image, but skips its questions (released rule)."""
    root = write_bench(tmp_path, celebrities=["003", "900"])
    names = ["mllmu_celebrity_cls_img", "mllmu_celebrity_cls_txt", "mllmu_celebrity_cloze_img"]
    tasks = load_tasks(root, names, "idefics2", fewshot_seed=0)
    for name in names:
        task = tasks[name]
        kind, mod = name.split("_")[2:]
        random_ids = random.Random(f"0-celebrity-{kind}-5").sample(["003", "900"], 1)
        assert task.config.metadata["demo_profiles"] == random_ids
        scored = {d["ID"] for d in task.test_docs()}
        assert scored == ({"900"} if random_ids == ["003"] else {"003", "900"})
        doc = next(iter(task.test_docs()))
        prefix = demo("003", kind, mod) if random_ids == ["003"] and kind == "cloze" else ""
        assert task.fewshot_context(doc, 0) == prefix + target(doc["ID"], kind, mod)
        assert len(task.doc_to_image(doc)) == (2 if prefix and mod == "img" else 1 if mod == "img" else 0)


def test_idefics2_text_only_classification_allows_five_new_tokens(bench):
    llava = load_tasks(bench, ["mllmu_forget_cls_txt"], "llava")["mllmu_forget_cls_txt"]
    idefics = load_tasks(bench, ["mllmu_forget_cls_txt", "mllmu_forget_cls_img"], "idefics2")
    assert llava.config.generation_kwargs["max_gen_toks"] == 50
    assert idefics["mllmu_forget_cls_txt"].config.generation_kwargs["max_gen_toks"] == 5
    assert idefics["mllmu_forget_cls_img"].config.generation_kwargs["max_gen_toks"] == 50
    for task in (llava, *idefics.values()):
        assert task.config.generation_kwargs["until"] == ["ASSISTANT:"]
        assert task.config.generation_kwargs["do_sample"] is False


def test_model_family_from_the_checkpoint(bench, tmp_path, caplog):
    from mllmu_tasks.family import resolve_model_family

    for model_type, family in [("idefics2", "idefics2"), ("llava", "llava"), ("llava_next", "llava")]:
        ckpt = tmp_path / model_type
        ckpt.mkdir()
        (ckpt / "config.json").write_text(json.dumps({"model_type": model_type}))
        assert resolve_model_family({"pretrained": str(ckpt)}) == family
    other = tmp_path / "qwen"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    with caplog.at_level("WARNING"):
        assert resolve_model_family({"pretrained": str(other)}) == "llava"
    assert "model family assumed 'llava'" in caplog.text and "qwen2_vl" in caplog.text
    assert resolve_model_family({"pretrained": str(other), "model_family": "idefics2"}) == "idefics2"


# ----------------------------------------------------------------- scored questions, independently

def independent_counts(config_rows, full_rows, demo_ids, kind, mod):
    """Questions of a set's rows that the released rules score, recomputed from the raw parquet rows."""
    wanted = "Image_Textual" if mod == "img" else "Pure_Text"
    skip = {}
    for row in full_rows:
        if row["ID"] not in demo_ids:
            continue
        if kind == "cls":
            items = row["Classification_Task"][f"{wanted}_Questions" if mod == "txt" else "Image_Textual_Questions"]
            skip[row["ID"]] = set(range(len(items)))
        elif kind == "cloze":
            skip[row["ID"]] = {i for i, q in enumerate(row["Mask_Task"]) if q["Type"] == wanted}
    count = 0
    for row in config_rows:
        if kind == "cls":
            items = list(enumerate(row["Classification_Task"]["Image_Textual_Questions" if mod == "img"
                                                              else "Pure_Text_Questions"]))
        else:
            field = "Mask_Task" if kind == "cloze" else "Generation_Task"
            items = [(i, q) for i, q in enumerate(row[field]) if q["Type"] == wanted]
        count += sum(1 for i, _ in items if i not in skip.get(row["ID"], set()))
    return count


@pytest.mark.parametrize("family", ["llava", "idefics2"])
@pytest.mark.parametrize("forget_ratio", [5, 10])
def test_scored_question_counts_match_the_parquet_files(family, forget_ratio):
    def rows(config):
        return pq.read_table(f"{MINI_DATA_DIR}/{config}/train-00000-of-00001.parquet").to_pylist()

    full = rows("Full_Set")
    forget_ids = {r["ID"] for r in rows(f"forget_{forget_ratio}")}
    set_rows = {"forget": rows(f"forget_{forget_ratio}"), "retain": rows(f"retain_{100 - forget_ratio}"),
                "test": [r for r in rows("Test_Set") if r["ID"] in forget_ids], "celebrity": rows("Retain_Set")}
    names = [f"mllmu_{s}_{k}_{m}" for s in SETS for k in KINDS for m in MODS]
    tasks = load_tasks("mini", names, family, forget_ratio=forget_ratio)
    for name in names:
        _, set_name, kind, mod = name.split("_")
        meta = tasks[name].config.metadata
        want = independent_counts(set_rows[set_name], full, set(meta["demo_profiles"]), kind, mod)
        assert meta["scored_questions"] == len(tasks[name].test_docs()) == want, name
        k = {"cls": 1, "cloze": 2 if family == "llava" else 1, "gen": 0}[kind]
        assert len(meta["demo_profiles"]) == (min(k, len({r["ID"] for r in set_rows[set_name]}))
                                              if set_name != "test" else min(k, len(forget_ids)))
    if forget_ratio == 5 and family == "llava":  # 2 forget profiles, both cloze demonstrations
        assert tasks["mllmu_forget_cloze_img"].config.metadata["scored_questions"] == 0


def test_same_seed_same_prompts_other_seed_other_draw():
    names = ["mllmu_retain_cls_img", "mllmu_retain_cloze_txt"]
    a, b = (load_tasks("mini", names, "llava", forget_ratio=10, fewshot_seed=7) for _ in range(2))
    for name in names:
        assert [a[name].fewshot_context(d, 0) for d in a[name].test_docs()] == \
               [b[name].fewshot_context(d, 0) for d in b[name].test_docs()]
    draws = {tuple(load_tasks("mini", names[:1], "llava", forget_ratio=10, fewshot_seed=s)[names[0]]
                   .config.metadata["demo_profiles"]) for s in range(6)}
    assert len(draws) > 1
    # image+text and text-only tasks of one set and kind share the draw (one draw per released task function)
    both = load_tasks("mini", ["mllmu_retain_cls_img", "mllmu_retain_cls_txt"], "llava", forget_ratio=10)
    assert both["mllmu_retain_cls_img"].config.metadata["demo_profiles"] == \
           both["mllmu_retain_cls_txt"].config.metadata["demo_profiles"]


# ----------------------------------------------------------------- scripted answers, scored by hand

class ScriptedLM(LM):
    """Answers every request with a fixed text, cut at the request's stop strings as lm-eval's backends do."""

    MULTIMODAL = True

    def __init__(self, answers):
        super().__init__()
        self.answers, self.seen = answers, []

    def generate_until(self, requests, disable_tqdm=False):
        out = []
        for req in requests:
            context, gen = req.args[0], req.args[1]
            self.seen.append((req.doc, context, gen))
            text = self.answers(req.doc)
            for stop in gen["until"]:
                text = text.split(stop)[0]
            out.append(text)
        return out

    def loglikelihood(self, requests, disable_tqdm=False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError


def run_scripted(source, tasks, answers):
    lm = ScriptedLM(answers)
    manager = TaskManager(include_path=TASKS_DIR, include_defaults=False,
                          metadata={"source": str(source), "forget_ratio": 5, "model_family": "llava"})
    results = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, log_samples=True)
    return results, lm


# (answer with {k} = the correct key, released first-letter acc); text-only questions' key here is D
CLS_CASES = [("\n\n{k}", 1.0), ("{k}\n\nUSER: next", 1.0), ("ASSISTANT: {k}", 0.0), ("({k})", 0.0), ("", 0.0),
             (" {lower}) nurse", 1.0), ("Answer: {k}", 0.0), ("A scientist", 0.0), ("**{k}**", 0.0)]


@pytest.mark.parametrize("template,acc", CLS_CASES)
def test_scripted_classification_answers(bench, template, acc):
    results, _ = run_scripted(bench, ["mllmu-zs_retain_cls_txt"],
                              lambda doc: template.format(k=doc["answer"], lower=doc["answer"].lower()))
    samples = results["samples"]["mllmu-zs_retain_cls_txt"]
    assert len(samples) == 3 and {s["doc"]["answer"] for s in samples} == {"D"}
    for s in samples:
        answer = template.format(k="D", lower="d")
        assert s["filtered_resps"][0] == answer.split("ASSISTANT:")[0]  # the backend stops at ASSISTANT:
        assert s["acc"] == acc, (template, s["filtered_resps"])
    # the robust extractor reads Markdown bold and brackets, never a turn the model wrote after its answer
    robust = samples[0]["acc_robust"]
    # (" d) nurse" names option C's text: the robust reading is C, the released first letter D)
    assert robust == (1.0 if template in ("\n\n{k}", "{k}\n\nUSER: next", "({k})", "Answer: {k}", "**{k}**")
                      else 0.0), template


def test_scripted_generation_and_cloze_answers(bench):
    def answers(doc):
        if doc["kind"] == "cloze":
            return {"001": "", "002": doc["answer"].upper() + "\nUSER: x\nASSISTANT: y"}.get(doc["ID"], "\n\nno")
        return {"001": doc["answer"] + "\nUSER: x\nASSISTANT: y", "002": "ASSISTANT: " + doc["answer"]}[doc["ID"]]

    results, lm = run_scripted(bench, ["mllmu-zs_forget_gen_txt", "mllmu-zs_forget_cloze_img"], answers)
    gen = {s["doc"]["ID"]: s for s in results["samples"]["mllmu-zs_forget_gen_txt"]}
    # 001: "Ann Lee is a doctor.\nUSER: x": ground truth 5 tokens (ann lee is a doctor), answer 7 (+ user x)
    # ROUGE-1 = ROUGE-L = 2*(5/7)*1/(5/7+1) = 10/12; ROUGE-2: 4 of 6 answer bigrams match: 2*(4/6)/(4/6+1) = 0.8
    assert gen["001"]["rouge1"] == pytest.approx(10 / 12) and gen["001"]["rougeL"] == pytest.approx(10 / 12)
    assert gen["001"]["rouge2"] == pytest.approx(0.8)
    # 002 wrote the ASSISTANT: turn first: the released answer is empty: every score 0
    assert (gen["002"]["rouge1"], gen["002"]["rougeL"], gen["002"]["bleu"]) == (0.0, 0.0, 0.0)
    cloze = {s["doc"]["ID"]: s["cloze_acc"] for s in results["samples"]["mllmu-zs_forget_cloze_img"]}
    assert cloze == {"001": 0.0, "002": 1.0}  # empty answer; ground truth upper-cased, then a turn: found
    # every request: greedy, 50 new tokens, stop only at "ASSISTANT:"
    assert {json.dumps(gen_kwargs, sort_keys=True) for _, _, gen_kwargs in lm.seen} == {json.dumps(
        {"until": ["ASSISTANT:"], "do_sample": False, "temperature": 0.0, "max_gen_toks": 50}, sort_keys=True)}
    assert results["results"]["mllmu-zs_forget_cloze_img"]["cloze_acc,none"] == 0.5


def test_a_set_with_every_profile_a_demonstration_reports_no_score(bench):
    results, lm = run_scripted(bench, ["mllmu-forget"], lambda doc: "A")
    res = results["results"]
    for mod in MODS:
        assert res[f"mllmu_forget_cloze_{mod}"]["sample_len"] == 0
        assert "cloze_acc,none" not in res[f"mllmu_forget_cloze_{mod}"]
        assert results["configs"][f"mllmu_forget_cloze_{mod}"]["metadata"]["scored_questions"] == 0
    assert "cloze_acc,none" not in res["mllmu-forget"]
    assert res["mllmu_forget_cls_img"]["acc,none"] == 1.0  # "A" is every image+text key
    assert not any(doc["kind"] == "cloze" for doc, _, _ in lm.seen)


def test_chat_template_variant_gives_each_demonstration_a_turn(bench):
    task = load_tasks(bench, ["mllmu_retain_cls_txt"], "llava")["mllmu_retain_cls_txt"]
    [demo_id] = task.config.metadata["demo_profiles"]
    doc = next(iter(task.test_docs()))
    seen = []
    rendered = task.fewshot_context(doc, 0, apply_chat_template=True,
                                    chat_template=lambda m, add_generation_prompt: seen.append((m, add_generation_prompt))
                                    or "rendered")
    (dname, djob), (tname, tjob) = PEOPLE[demo_id], PEOPLE[doc["ID"]]
    assert rendered == "rendered" and seen == [([
        {"role": "user", "content": f"What is {dname}'s job?\nA: chef\nB: pilot\nC: nurse\nD: {djob}\n{CLS_INSTR}"},
        {"role": "assistant", "content": "D"},
        {"role": "user", "content": f"What is {tname}'s job?\nA: chef\nB: pilot\nC: nurse\nD: {tjob}\n{CLS_INSTR}"},
    ], True)]


def test_num_fewshot_is_refused(bench):
    task = load_tasks(bench, ["mllmu_retain_cls_txt"], "llava")["mllmu_retain_cls_txt"]
    with pytest.raises(ValueError, match="build their own demonstrations"):
        task.fewshot_context(next(iter(task.test_docs())), 2)


def test_too_few_images_for_the_backend_fail_at_load(bench):
    from mllmu_tasks.sources import SettingsError

    load_tasks(bench, ["mllmu_retain_cls_img"], "llava", max_images=2)  # 1 demonstration question + 1
    with pytest.raises(SettingsError, match="shows 3 images .* max_images=2"):
        load_tasks(bench, ["mllmu_retain_cloze_img"], "llava", max_images=2)  # 2 LLaVA cloze profiles + 1


def test_demonstration_profiles_chosen_by_hand(bench):
    """Reproducing a released run: the IDs it printed ("Selected few-shot IDs") replace the seeded draw."""
    from mllmu_tasks.sources import SettingsError

    chosen = {"retain_cloze": ["005", "003"], "forget_cls": []}
    tasks = load_tasks(bench, ["mllmu_retain_cloze_txt", "mllmu_forget_cls_txt", "mllmu_retain_cls_txt"], "llava",
                       fewshot_profiles=chosen)
    cloze = tasks["mllmu_retain_cloze_txt"]
    assert cloze.config.metadata["demo_profiles"] == ["005", "003"]
    doc = next(iter(cloze.test_docs()))
    assert doc["ID"] == "004"  # Full_Set order: 003's block first, then 005's
    assert cloze.fewshot_context(doc, 0) == demo("003", "cloze", "txt") + demo("005", "cloze", "txt") + \
        target("004", "cloze", "txt")
    assert tasks["mllmu_forget_cls_txt"].config.metadata["demo_profiles"] == []  # zero-shot, all scored
    assert len(tasks["mllmu_forget_cls_txt"].test_docs()) == 2
    assert tasks["mllmu_retain_cls_txt"].config.metadata["demo_profiles"] == drawn("retain", "cls", 1)
    with pytest.raises(SettingsError, match="not IDs of forget_5"):
        load_tasks(bench, ["mllmu_test_cls_img"], "llava", fewshot_profiles={"test_cls": ["003"]})
    with pytest.raises(SettingsError, match="must map"):
        load_tasks(bench, ["mllmu_test_cls_img"], "llava", fewshot_profiles=["003"])
