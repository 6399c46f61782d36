"""The audit of one checkpoint: membership inference (forget vs holdout) and truth ratios, per modality.

:func:`audit_data` gathers what is scored, once per run: the forget and holdout
profiles' ``ft_Data`` pairs as the unlearning methods train on them (image+text
with the profile's image; text-only without, keeping only the questions that
name the person: a "this person" question sent without its image asks about
nobody in particular), and the forget set's multiple-choice questions.
:func:`audit_checkpoint` scores them under one model; :func:`compare` turns the
audits of several models and the retrained one into the figures of the report.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tqdm.auto import tqdm

from mllmu_tasks import docs
from mllmu_tasks.images import open_rgb
from mllmu_tasks.schema import FULL_CONFIG, forget_config
from mllmu_tasks.sources import Source, load_config

from ..data import MODALITIES, PERSON_REFERENCE, Example, forget_retain_ids, load_profiles, to_examples
from .attacks import ATTACKS, auc
from .forget_quality import forget_quality, truth_ratio
from .likelihood import membership_scores, training_span

#: The attack PrivLeak is computed with (MUSE, Shi et al. 2024, Sec. 3: Min-K% Prob).
PRIVLEAK_ATTACK = "min_k"
_DOC_MODALITY = {"image+text": "img", "text-only": "txt"}


@dataclasses.dataclass
class AuditData:
    """What the audit scores, per modality: ``forget`` and ``holdout`` pairs, ``mc`` forget-set questions, and the
    generation questions with their ground truths of the forget set (``gen_forget``) and of the holdout profiles'
    ``Full_Set`` rows (``gen_holdout``).

    ``mc[modality]``: ``(Example with the question and no answer, correct option text, distractor texts)``.
    """

    forget: dict[str, list[Example]]
    holdout: dict[str, list[Example]]
    mc: dict[str, list[tuple[Example, str, list[str]]]]
    gen_forget: dict[str, list[Example]] = dataclasses.field(default_factory=dict)
    gen_holdout: dict[str, list[Example]] = dataclasses.field(default_factory=dict)


def _pairs(profiles, modality: str, source: Source | None) -> list[Example]:
    examples = to_examples(profiles, modality, source)  # text-only: no image decoded
    if modality == "image+text":
        return examples
    return [e for e in examples if not PERSON_REFERENCE.search(e.question)]


def audit_data(source: str, forget_ratio: int, holdout: list[str], splits: str | None = None) -> AuditData:
    """The forget and holdout pairs and the forget set's multiple-choice questions of ``source`` (the original data,
    holdout profiles included).

    A JSON Lines source (with its ``splits``) has text only and no multiple-choice questions: text-only pairs
    alone, no truth ratios.

    Raises:
        ValueError: no holdout profile, a holdout ID missing from ``ft_Data`` or in the forget set.
        SchemaError: bad rows or images.
    """
    profiles, resolved = load_profiles(source)
    forget_ids = forget_retain_ids(forget_ratio, resolved, splits)[0]
    missing = sorted(set(holdout) - {p.profile_id for p in profiles})
    if not holdout or missing:
        raise ValueError(f"the audit needs holdout profiles present in ft_Data (given {holdout}, missing {missing})")
    if forget_ids & set(holdout):
        raise ValueError(f"holdout profiles {sorted(forget_ids & set(holdout))} are in {forget_config(forget_ratio)}: "
                         "members cannot be non-members")
    forget = [p for p in profiles if p.profile_id in forget_ids]
    held = [p for p in profiles if p.profile_id in holdout]
    if resolved is None:  # JSON Lines: no image, no multiple choice
        return AuditData({"text-only": _pairs(forget, "text-only", None)},
                         {"text-only": _pairs(held, "text-only", None)}, {})
    cls = _eval_docs(forget_config(forget_ratio), "cls", resolved)
    mc = {m: [(_doc_example(d, ""), d["answer_text"], [o for o in d["options"] if o != d["answer_text"]])
              for d in cls[m]] for m in MODALITIES}
    gen_forget = _eval_docs(forget_config(forget_ratio), "gen", resolved)
    gen_holdout = _eval_docs(FULL_CONFIG, "gen", resolved, set(holdout))
    return AuditData({m: _pairs(forget, m, resolved) for m in MODALITIES},
                     {m: _pairs(held, m, resolved) for m in MODALITIES}, mc,
                     {m: [_doc_example(d, d["answer"]) for d in gen_forget[m]] for m in MODALITIES},
                     {m: [_doc_example(d, d["answer"]) for d in gen_holdout[m]] for m in MODALITIES})


def _eval_docs(config: str, kind: str, source: Source, ids: set[str] | None = None) -> dict[str, list[dict]]:
    """Per modality, the documents (:func:`mllmu_tasks.docs.row_docs`) of a kind in a configuration's rows
    (only ``ids``' rows when given)."""
    out = {m: [] for m in MODALITIES}
    for index, row in enumerate(load_config(config, source)):
        if ids is None or row["ID"] in ids:
            for m in MODALITIES:
                out[m] += docs.row_docs(row, index, set_name="audit", config=config, kind=kind,
                                        modality=_DOC_MODALITY[m], source=source)
    return out


def _doc_example(doc: dict, answer: str) -> Example:
    return Example(doc["ID"], doc["question"], answer, open_rgb(doc["images"][0]["bytes"]) if doc["images"] else None)


def _option_logprob(lm, question: Example, option: str) -> tuple[float, int]:
    """(summed log-probability in nats, token count) of ``option`` as the assistant's answer, scored over the span
    training labels (the answer and the template's end of turn)."""
    context, continuation = training_span(lm.processor, dataclasses.replace(question, answer=option))
    logp = lm.continuation_logprobs(context, continuation, [question.image] if question.image else [])
    return float(logp.double().sum()), int(logp.numel())


def truth_ratios(lm, questions: list[tuple[Example, str, list[str]]]) -> list[float]:
    """The truth ratio (:func:`forget_quality.truth_ratio`) of each multiple-choice question, in order."""
    return [truth_ratio(_option_logprob(lm, q, correct), [_option_logprob(lm, q, d) for d in wrong])
            for q, correct, wrong in tqdm(questions, desc="truth ratios", leave=False)]


def audit_checkpoint(lm, data: AuditData) -> dict:
    """Per modality: each attack's AUC (forget pairs = members, holdout pairs = non-members; fractions, 95 %
    bootstrap interval), the per-pair scores, the forget set's truth ratios, and under ``generation`` the same
    AUCs and scores on the evaluation's generation questions and ground truths (forget set vs the holdout
    profiles' ``Full_Set`` rows).

    ``lm``: an ``MLLMUVisionLM`` of the checkpoint.
    """
    out = {}
    for modality in data.forget:
        image = modality == "image+text"
        out[modality] = {**_membership(lm, data.forget[modality], data.holdout[modality], image),
                         "truth_ratios": truth_ratios(lm, data.mc[modality]) if data.mc.get(modality) else None}
        if data.gen_forget.get(modality) and data.gen_holdout.get(modality):  # the evaluation's generation answers
            out[modality]["generation"] = _membership(lm, data.gen_forget[modality], data.gen_holdout[modality], image)
    return out


def _membership(lm, members: list[Example], non_members: list[Example], image: bool) -> dict:
    """``{"auc": {attack: auc}, "forget_scores", "holdout_scores"}`` of members against non-members."""
    own = membership_scores(lm, members, with_image=image)
    others = membership_scores(lm, non_members, with_image=image)
    return {"auc": {a: auc([s[a] for s in own], [s[a] for s in others]) for a in ATTACKS},
            "forget_scores": own, "holdout_scores": others}


def compare(audit: dict, retrained: dict) -> dict:
    """Per modality, a model's audit against the retrained model's: ``{"auc": {attack: auc}, "privleak": %,
    "forget_quality": p}``.

    ``privleak``: ``100 * (AUC - AUC_retrained) / AUC_retrained`` of :data:`PRIVLEAK_ATTACK` (MUSE, Shi et al.
    2024, Sec. 3; 0 = as private as never having trained on the forget set). ``forget_quality``: the KS p-value
    of the two models' truth ratios (:func:`forget_quality.forget_quality`; None without multiple-choice data).
    """
    out = {}
    for modality, own in audit.items():
        ref = retrained[modality]
        base = ref["auc"][PRIVLEAK_ATTACK]["auc"]
        out[modality] = {"auc": own["auc"],
                         "privleak": 100 * (own["auc"][PRIVLEAK_ATTACK]["auc"] - base) / base,
                         "forget_quality": forget_quality(own["truth_ratios"], ref["truth_ratios"])
                         if own["truth_ratios"] and ref["truth_ratios"] else None}
    return out


def privacy_markdown(compared: dict[str, dict]) -> str:
    """The report's privacy section: one row per model x question modality from :func:`compare` results."""
    head = ("| model | questions | AUC loss | AUC zlib | AUC Min-K% | AUC Min-K%++ | PrivLeak (%) | forget quality |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, per_modality in compared.items():
        for modality, c in per_modality.items():
            cells = [f"{c['auc'][a]['auc']:.2f} [{c['auc'][a]['low']:.2f}, {c['auc'][a]['high']:.2f}]" for a in ATTACKS]
            quality = "n/a" if c["forget_quality"] is None else f"{c['forget_quality']:.3g}"
            rows.append(f"| {name} | {modality} | {' | '.join(cells)} | {c['privleak']:+.1f} | {quality} |")
    return "\n".join([head, *rows])


def plot_forget_quality(compared: dict[str, dict], utility: dict[str, float], path) -> Path:
    """Forget quality (y, log scale) against model utility (x), one point per model and question modality (PNG).

    ``compared``: :func:`compare` results by model; ``utility``: each model's utility (0-1, the retain and
    celebrity sets' headline metrics, :func:`mllmu_tasks.report.set_score`). Models without one are left out.
    """
    from mllmu_tasks.report import new_plot, save_plot

    fig, ax = new_plot()
    for modality, marker in (("image+text", "o"), ("text-only", "s")):
        shown = [(name, c[modality]["forget_quality"]) for name, c in compared.items()
                 if name in utility and modality in c and c[modality]["forget_quality"] is not None]
        ax.scatter([utility[n] for n, _ in shown], [max(q, 1e-6) for _, q in shown], marker=marker,
                   label=f"{modality} questions")
        for name, q in shown:
            ax.annotate(name, (utility[name], max(q, 1e-6)), textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.set_yscale("log")
    return save_plot(fig, ax, path, "model utility: retain + celebrity sets, mean of acc / ROUGE-L / cloze (0-1)",
                     "forget quality (KS p-value vs the retrained model)",
                     "MLLMU-Bench: forget quality vs model utility", legend=True)
