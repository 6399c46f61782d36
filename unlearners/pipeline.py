"""The main job in one command: base model -> pretrain -> vanilla -> unlearn -> score -> report.

On the embedded default (``--source mini``, no ``--base_model``) on a CPU:

1. ``base``: build the tiny LLaVA-architecture VLM (``--size demo``);
2. ``pretrain``: teach it the celebrity stand-ins (``Retain_Set``) and the
   answer formats (:mod:`unlearners.drills`): its "pre-trained" knowledge;
3. ``vanilla``: fine-tune on every fictitious profile: the ``ft_Data`` pairs
   plus format drills over ``Full_Set`` (a real VLM knows the formats already);
4. ``unlearn/<method>-<modality>``: each method from the vanilla model at the
   forget ratio, image+text and text-only;
5. ``score/<model>``: the whole suite on every checkpoint (lm-eval results
   JSON; ``--suite``: the paper protocol ``mllmu``, or ``mllmu-zs`` for the
   embedded tiny model, which learned only zero-shot formats), plus ``identity``: the vanilla model on the forget set with each
   portrait swapped for another profile's (should fall to chance);
6. ``holdout`` (before ``vanilla``): ``--holdout_profiles`` retain profiles
   left out of every stage through a copy of the data; ``retrained``: the
   pre-trained model fine-tuned like the vanilla one on the retain profiles;
   ``audit/<model>`` and ``relearn/<model>``: the privacy audit
   (:mod:`unlearners.audit`; ``--audit false`` skips these);
7. ``report``: ``report.md`` (the paper's Table-2 layout, set summaries,
   privacy section), ``forget_vs_retain.png`` and ``forget_quality.png``.

With ``--source path/to/ft_qa.jsonl --splits splits.json`` (the real profile
text, no images) the pipeline is text-only: vanilla fine-tuning on every
pair, the methods on the forget set, and a generation probe (ROUGE-L of
greedy answers to training questions of forget vs retain profiles). The
questions name the person (``--named``, :func:`unlearners.data.named_jsonl`:
sent without the image, "this person" is the same question for everyone);
``--profiles N`` trains on N profiles with the forget share kept
(:func:`unlearners.data.cut_jsonl`); ``--method_args npo.retain_weight=3``
sets a method's hyper-parameters, ``--train_args weight_decay=0.01`` the
unlearning stages' ``TrainingArguments``.

Every stage records in ``manifest.json`` a key hashing its settings, its
data, its upstream stages' keys, the seed and the package version; a rerun
skips a stage whose key is unchanged and whose output is complete (outputs
are written atomically), and redoes the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import shutil
import sys
import typing
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mllmu_tasks import MINI_DATA_DIR, report
from mllmu_tasks.schema import CELEBRITY_CONFIG, FULL_CONFIG
from mllmu_tasks.sources import resolve_source

from . import __version__
from .api import run as train
from .checkpoint import staging_dir, trainer_checkpoints, write_json_atomic
from .config import DataArguments, ModelArguments, UnlearnTrainingArguments
from .audit.holdout import choose_holdout, holdout_jsonl, holdout_mirror
from .audit import relearn
from .audit.relearn import relearn_split
from .audit.run import audit_checkpoint, audit_data, compare, plot_forget_quality, privacy_markdown
from .data import cut_jsonl, load_examples, load_subsets, named_jsonl
from .drills import format_examples
from .methods import get_method
from .probe import generation_rouge_l, swapped_portraits_mirror
from .scoring import question_scores_path, score

MODALITIES = ("image+text", "text-only")
PRIVACY_HEADER = "### Privacy audit: membership inference and forget quality"
PRIVACY_NOTE = (
    "Members are the forget profiles' `ft_Data` pairs, non-members the holdout profiles' (never trained on); "
    "text-only rows keep the questions that name the person. AUC: how well an attack's score (mean log-likelihood, "
    "zlib ratio, Min-K%, Min-K%++ over the answer tokens) separates them (0.5: not at all; 95 % bootstrap interval). "
    "PrivLeak: the Min-K% AUC's relative distance from the retrained model's (0: as private as never trained on "
    "the forget set; MUSE). Forget quality: KS-test p-value between the model's and the retrained model's truth "
    "ratios on the forget set's multiple-choice questions (1: indistinguishable; TOFU). The retrained model is the "
    "pre-trained model fine-tuned like the vanilla model on the retain profiles only.")
#: The identity check: the forget set's image+text tasks, each portrait swapped for another profile's
#: (zero-shot: the swapped copy holds only the forget set, and demonstrations would show unswapped portraits).
IDENTITY_TASKS = ["mllmu-zs_forget_cls_img", "mllmu-zs_forget_gen_img", "mllmu-zs_forget_cloze_img"]


@dataclass
class PipelineConfig:
    """Settings of a pipeline run (CLI flags of ``mllmu-pipeline`` have the same names)."""

    out_dir: str = "runs/pipeline"
    base_model: str | None = None          # None: build the tiny VLM
    size: str = "demo"                     # tiny VLM size
    source: str = "mini"
    splits: str | None = None
    forget_ratio: int = 10
    methods: tuple[str, ...] = ("ga", "grad_diff", "kl_min", "npo")  # "all": every registered method
    modalities: tuple[str, ...] = MODALITIES
    seed: int = 0
    device: str = "cpu"
    pretrain_epochs: float = 20
    vanilla_epochs: float = 20
    train_lr: float = 2e-3
    train_batch_size: int = 32
    drills: bool = True                    # answer-format drills in vanilla fine-tuning (tiny demo model)
    mc_copies: int = 2                     # option orders per multiple-choice drill
    unlearn_epochs: float = 3
    unlearn_lr: float = 1e-3
    unlearn_batch_size: int = 8
    lora: bool = False                     # full fine-tuning suits the tiny model; LoRA for 7B
    vanilla_lora: bool | None = None       # LoRA for the pretrain/vanilla/retrained fine-tuning; None: as --lora
    score_batch_size: int = 64
    score_limit: int | None = None         # questions per task (None: all)
    probe_questions: int = 200             # JSONL mode: retain questions probed
    protocol: str = "corrected"            # "released": the authors' training scripts (unlearners.released)
    suite: str = "auto"                    # scoring group: mllmu (paper protocol), mllmu-zs, or auto (see scoring_suite)
    checkpoint_steps: int = 200            # training stages save a checkpoint this often (0: never); reruns resume
    profiles: int = 0                      # JSONL mode: train on this many profiles (forget share kept); 0: all
    method_args: str = ""                  # per-method settings, e.g. "npo.retain_weight=3,grad_diff.retain_weight=2"
    train_args: str = ""                   # unlearning stages' TrainingArguments, e.g. "weight_decay=0.01,seed=1"
    named: bool = True                     # JSONL mode: questions name the person (data.named_jsonl), not "this person"
    holdout_profiles: int = 4              # retain profiles no model is trained on: the audit's non-members
    audit: bool = True                     # privacy audit (unlearners.audit): a retrained model, MIA, forget quality
    relearn_steps: int = 10                # audit's relearning attack: fine-tuning steps on half the forget set (0: off)

    @property
    def text_jsonl(self) -> bool:
        return str(self.source).endswith(".jsonl")

    @property
    def released(self) -> bool:
        return self.protocol == "released"

    @property
    def finetune_lora(self) -> bool:
        """Whether the pretrain, vanilla and retrained fine-tuning train LoRA adapters (``--vanilla_lora``, else
        ``--lora``)."""
        return self.lora if self.vanilla_lora is None else self.vanilla_lora

    @property
    def scoring_suite(self) -> str:
        """``mllmu`` (the paper protocol) or ``mllmu-zs``; ``auto``: ``mllmu-zs`` for the embedded tiny model.

        The tiny model is built from scratch and taught the answer formats with
        zero-shot drills; it has never seen the released few-shot context
        (``Question: ... Correct Answer: X`` blocks and five or six images), which
        throws its cloze answers off (vanilla forget cloze 0 % few-shot vs 100 %
        zero-shot, 2026-12). A real base model (``--base_model``) is scored
        with the paper protocol.
        """
        if self.suite != "auto":
            return self.suite
        return "mllmu" if self.base_model or self.released else "mllmu-zs"


# ---------------------------------------------------------------- manifest


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_hash(cfg: PipelineConfig) -> str:
    """Hash of the data: every parquet of a local source (by configuration, file name and content, not by
    where the folder is: a moved or re-cloned checkout resumes), the JSONL and splits files, or the hub id."""
    parts = []
    if cfg.text_jsonl:
        parts.append(file_hash(cfg.source))
    else:
        source = resolve_source(cfg.source, flag="--source")
        files = sorted(Path(source.location).glob("*/*.parquet")) if source.kind == "local" else []
        parts += ["local" if source.kind == "local" else source.location]
        parts += [f"{f.parent.name}/{f.name}:{file_hash(f)}" for f in files]
    if cfg.splits:
        parts.append(file_hash(cfg.splits))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class Manifest:
    """``manifest.json``: per stage, its key, output and duration; a stage runs only when needed."""

    def __init__(self, out_dir: Path, log=print):
        self.path = out_dir / "manifest.json"
        self.entries = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.log = log

    def key(self, stage: str, settings: dict, upstream: list[str]) -> str:
        """The key of a stage: its settings, the upstream stages' keys, package version."""
        payload = {"stage": stage, "settings": settings, "upstream": [self.entries[u]["key"] for u in upstream],
                   "version": __version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def run(self, stage: str, output: Path, settings: dict, upstream: list[str], work) -> Path:
        """Run ``work()`` (which writes ``output`` atomically) unless the stage is complete and unchanged.

        A training stage interrupted after a checkpoint continues from it when
        its key is unchanged (the hidden ``.<output>.key`` file records the key
        its checkpoints were made under); another key's checkpoints are removed first.
        """
        key = self.key(stage, settings, upstream)
        entry = self.entries.get(stage)
        if entry and entry["key"] == key and output.exists():
            self.log(f"[{stage}] unchanged, skipped ({entry['seconds']:.1f} s when run)")
            return output
        start = time.time()
        marker = output.parent / f".{output.name}.key"
        if marker.exists() and marker.read_text() == key and trainer_checkpoints(output):
            self.log(f"[{stage}] resuming from {trainer_checkpoints(output)[-1].name} ...")
        else:
            shutil.rmtree(staging_dir(output), ignore_errors=True)  # leftovers of other settings, if any
            output.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(key)
            self.log(f"[{stage}] running ...")
        work()
        marker.unlink(missing_ok=True)
        seconds = time.time() - start
        self.entries[stage] = {"key": key, "output": str(output), "seconds": round(seconds, 2),
                               "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(self.path, self.entries)
        self.log(f"[{stage}] done in {seconds:.1f} s")
        return output


# ---------------------------------------------------------------- stages


def _train_args(cfg: PipelineConfig, out: Path, epochs: float, lr: float, batch: int,
                released: bool = False, max_steps: int = -1, warmup: int = 30,
                extra: dict | None = None) -> UnlearnTrainingArguments:
    """Training settings of a stage; ``released``: the released scripts' schedule (linear, no warm-up), else
    constant after ``warmup`` steps; ``max_steps`` > 0 overrides ``epochs``; ``extra``: fields set last
    (:func:`train_overrides`)."""
    on_gpu = cfg.device != "cpu"
    schedule = dict(lr_scheduler_type="linear", warmup_steps=0) if released else \
        dict(lr_scheduler_type="constant_with_warmup", warmup_steps=warmup)
    # checkpoints every checkpoint_steps (the last one kept): a killed stage continues from it on rerun
    saving = dict(save_strategy="steps", save_steps=cfg.checkpoint_steps, save_total_limit=1) \
        if cfg.checkpoint_steps else dict(save_strategy="no")
    settings = dict(num_train_epochs=epochs, max_steps=max_steps, learning_rate=lr, per_device_train_batch_size=batch,
                    seed=cfg.seed, bf16=on_gpu and torch.cuda.is_bf16_supported(), max_grad_norm=1.0,
                    logging_steps=50, disable_tqdm=False, **schedule, **saving)
    settings.update(extra or {})
    return UnlearnTrainingArguments(output_dir=str(out), overwrite=True, use_cpu=not on_gpu,
                                    resume_from_checkpoint="last" if trainer_checkpoints(out) else None,
                                    protocol="released" if released else "corrected", **settings)


def _finetune(cfg: PipelineConfig, start: str, out: Path, examples: list, epochs: float, note: str,
              released: bool = False) -> None:
    train("finetune", ModelArguments(model=start, lora=cfg.finetune_lora, freeze_vision_tower=False),
          {"train": examples},
          _train_args(cfg, out, epochs, cfg.train_lr, cfg.train_batch_size, released),
          card={"data": note, "source": cfg.source})


def build_base(cfg: PipelineConfig, out: Path) -> None:
    """The tiny VLM (its tokenizer trained on the data's text)."""
    from mllmu_tasks.mini.tiny_vlm import benchmark_corpus, build_tiny_vlm

    if cfg.text_jsonl:
        from mllmu_tasks.prompts import TEMPLATE_STRINGS

        pairs = load_examples(cfg.source, "all", "text-only")
        texts = [t for ex in pairs for t in (ex.question, ex.answer)] + list(TEMPLATE_STRINGS)
    else:
        source = resolve_source(cfg.source, flag="--source")
        texts = benchmark_corpus(source.location if source.kind == "local" else MINI_DATA_DIR)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_vlm(tmp, size=cfg.size, texts=texts, seed=cfg.seed)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def vanilla_examples(cfg: PipelineConfig, subset: str = "all") -> list:
    """``ft_Data`` pairs of every profile (with images unless JSONL) plus, with eval configs, Full_Set drills.

    ``subset="retain"``: the same of the retain profiles only (the retrained model's data).
    """
    modality = "text-only" if cfg.text_jsonl else "image+text"
    examples = load_examples(cfg.source, subset, modality, cfg.forget_ratio, cfg.splits)
    if cfg.drills and not cfg.text_jsonl and not cfg.released:  # released: the ft_Data pairs alone
        ids = None if subset == "all" else {e.profile_id for e in examples}
        examples += format_examples(FULL_CONFIG, resolve_source(cfg.source, flag="--source"), seed=cfg.seed,
                                    ids=ids, mc_copies=cfg.mc_copies)
    return examples


def parse_method_args(text: str) -> dict[str, dict[str, tuple[str, str]]]:
    """``--method_args`` as ``{method: {field: (value text, the entry)}}``.

    Raises:
        ValueError: an entry not of the form ``<method>.<field>=<value>`` (names the entry).
    """
    parsed: dict[str, dict[str, tuple[str, str]]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        target, _, value = entry.partition("=")
        name, _, field = target.partition(".")
        if not value or not field:
            raise ValueError(f"--method_args entry {entry!r}: expected <method>.<field>=<value>")
        parsed.setdefault(name, {})[field] = (value, entry)
    return parsed


def method_config(cfg: PipelineConfig, method: str):
    """The method's config: its defaults, with ``--method_args`` entries ``<method>.<field>=<value>`` applied.

    Raises:
        ValueError: an entry not of that form, or a field the method's config lacks (names the entry).
    """
    cls = get_method(method).config_class
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for field, (value, entry) in parse_method_args(cfg.method_args).get(method, {}).items():
        if field not in fields:
            raise ValueError(f"--method_args entry {entry!r}: {method} has no setting {field!r} "
                             f"(it has {', '.join(fields)})")
        values[field] = typed(value, type(fields[field].default))
    return cls(**values)


#: ``TrainingArguments`` the pipeline sets itself: ``--train_args`` cannot change them.
OWNED_TRAIN_ARGS = ("output_dir", "overwrite", "resume_from_checkpoint", "protocol", "use_cpu")


def field_type(hint) -> type:
    """The type a flag's text converts to: ``hint`` itself, or the first of its ``Optional``/``Union`` members
    (``str`` when that is not a plain bool, int, float or str)."""
    kind = next((t for t in typing.get_args(hint) or (hint,) if t is not type(None)), str)
    return kind if kind in (bool, int, float, str) else str


def typed(value: str, kind: type):
    """A flag's text as ``kind`` (bool: 1/true/yes or 0/false/no, case-insensitive).

    Raises:
        ValueError: the text is not a ``kind`` (a bool spelled otherwise included: never silently False).
    """
    if kind is not bool:
        return kind(value)
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"{value!r} is not a bool (true/false, yes/no, 1/0)")


def bool_flag(value: str) -> bool:
    """``argparse`` type of the pipeline's bool flags (:func:`typed`; its error becomes argparse's)."""
    try:
        return typed(value, bool)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def train_overrides(cfg: PipelineConfig) -> dict:
    """``--train_args`` (``<field>=<value>,...``) as typed ``UnlearnTrainingArguments`` fields for the
    unlearning stages, e.g. ``weight_decay=0.01,lr_scheduler_type=linear,seed=1``.

    Raises:
        ValueError: an entry not of that form, a field ``TrainingArguments`` lacks or the pipeline owns
            (:data:`OWNED_TRAIN_ARGS`), or a value of the wrong type (names the entry).
    """
    hints = typing.get_type_hints(UnlearnTrainingArguments)
    fields = {f.name for f in dataclasses.fields(UnlearnTrainingArguments) if f.init} - set(OWNED_TRAIN_ARGS)
    out = {}
    for entry in filter(None, (e.strip() for e in cfg.train_args.split(","))):
        name, _, value = (part.strip() for part in entry.partition("="))
        if not value or name not in fields:
            why = "the pipeline sets it" if name in OWNED_TRAIN_ARGS else "expected <TrainingArguments field>=<value>"
            raise ValueError(f"--train_args entry {entry!r}: {why}")
        kind = field_type(hints[name])
        try:
            out[name] = typed(value, kind)
        except ValueError:
            raise ValueError(f"--train_args entry {entry!r}: {value!r} is not a {kind.__name__}") from None
    return out


def expand_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """``--methods`` with ``all`` replaced by every registered unlearning method (registry order, not
    ``finetune``), duplicates dropped.

    Raises:
        ValueError: an unknown method name (the message lists the known ones).
    """
    from .methods import METHODS

    names = []
    for name in methods:
        for one in ([m for m in METHODS if m != "finetune"] if name == "all" else [name]):
            get_method(one)
            if one not in names:
                names.append(one)
    return tuple(names)


def check_method_args(cfg: PipelineConfig) -> None:
    """Every ``--method_args`` entry names a method of ``--methods`` and a setting it has (before any stage runs).

    Raises:
        ValueError: see :func:`method_config`; or an entry for a method that ``--methods`` does not run.
    """
    named = set(parse_method_args(cfg.method_args))
    for method in cfg.methods:
        method_config(cfg, method)
    if named - set(cfg.methods):
        raise ValueError(f"--method_args names {', '.join(sorted(named - set(cfg.methods)))}, which --methods "
                         f"({', '.join(cfg.methods)}) does not run")


def unlearn(cfg: PipelineConfig, vanilla: Path, method: str, modality: str, out: Path,
            reference: Path | None = None) -> None:
    """One method x modality from the vanilla model (the method's defaults, unless ``--method_args``).

    ``reference``: the frozen reference of NPO under the released protocol (a retain-only fine-tune).
    """
    reference_model = str(reference) if reference is not None and method == "npo" else None
    train(method, ModelArguments(model=str(vanilla), lora=cfg.lora, reference_model=reference_model),
          DataArguments(source=cfg.source, splits=cfg.splits, forget_ratio=cfg.forget_ratio, modality=modality),
          _train_args(cfg, out, cfg.unlearn_epochs, cfg.unlearn_lr, cfg.unlearn_batch_size, cfg.released,
                      extra=train_overrides(cfg)), method_config(cfg, method))


def probe_scores(cfg: PipelineConfig, checkpoint: Path, out_json: Path) -> None:
    """JSONL mode: generation ROUGE-L on forget vs (a sample of) retain training questions."""
    subsets = load_subsets(cfg.source, {"forget": "forget", "retain": "retain"}, "text-only", cfg.forget_ratio,
                           cfg.splits)
    forget, retain = subsets["forget"], subsets["retain"]
    retain = random.Random(cfg.seed).sample(retain, min(cfg.probe_questions, len(retain)))
    result = {"forget_rougeL": generation_rouge_l(checkpoint, forget, device=cfg.device),
              "retain_rougeL": generation_rouge_l(checkpoint, retain, device=cfg.device),
              "forget_questions": len(forget), "retain_questions": len(retain)}
    write_json_atomic(out_json, result)


def identity_lines(vanilla: dict, identity: dict) -> list[str]:
    """Markdown rows: the vanilla model's forget-set image+text scores with its own vs swapped portraits."""
    lines = ["Identity check (vanilla model, forget set, image+text; portraits swapped between profiles):", "",
             "| task | own portraits | swapped portraits |", "|---|---:|---:|"]
    for task in IDENTITY_TASKS:
        kind = task.split("_")[2]  # mllmu-zs_forget_<kind>_img
        metric = f"{report.HEADLINE[kind]},none"
        own, swapped = vanilla["results"][task][metric], identity["results"][task][metric]
        fmt = (lambda v: f"{v:.3f}") if kind == "gen" else (lambda v: f"{100 * v:.1f} %")
        lines.append(f"| {task} ({report.HEADLINE[kind]}) | {fmt(own)} | {fmt(swapped)} |")
    return lines + ["", "Classification chance is 25 %. A model that identifies people by their faces falls "
                    "towards chance with swapped portraits.", ""]


def unlearn_stage(method: str, modality: str) -> str:
    """The manifest stage of one method x unlearning modality: ``unlearn/<method>-<modality>``."""
    return f"unlearn/{method}-{modality}"


def results_json(out: Path, stage: str) -> Path:
    """Where a stage's model is scored: ``results/<stage with / as _>.json``."""
    return out / "results" / f"{stage.replace('/', '_')}.json"


def modality_headline_lines(cfg: PipelineConfig, out: Path) -> list[str]:
    """The report's unimodal-vs-multimodal section (:func:`mllmu_tasks.report.modality_headline`) over the
    methods unlearned in both modalities whose per-question scores were kept; empty when there are none."""
    pairs = {}
    for method in cfg.methods:
        files = [question_scores_path(results_json(out, unlearn_stage(method, m))) for m in ("text-only", "image+text")]
        if all(f.is_file() for f in files):
            pairs[method] = tuple(report.load_question_scores(f) for f in files)
    rows = report.modality_headline(pairs) if pairs else []
    return [report.headline_markdown(rows, list(pairs))] if rows else []


def holdout_stage(cfg: PipelineConfig, out: Path, manifest: Manifest) -> tuple[PipelineConfig, list[str]]:
    """Draw the holdout profiles and write the copy of the data without them (:mod:`unlearners.audit.holdout`);
    returns the settings with the copy as the source (and splits), and the holdout IDs."""
    if cfg.text_jsonl:
        jsonl, splits, holdout = holdout_jsonl(cfg.source, cfg.splits, cfg.forget_ratio, cfg.holdout_profiles,
                                               cfg.seed, out / "data" / "holdout")
        return dataclasses.replace(cfg, source=str(jsonl), splits=str(splits)), holdout
    original = resolve_source(cfg.source, flag="--source")
    holdout = choose_holdout(original, cfg.forget_ratio, cfg.holdout_profiles, cfg.seed)
    mirror = out / "data" / "holdout-mirror"

    def work():
        tmp = mirror.parent / f".{mirror.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        holdout_mirror(original, cfg.forget_ratio, holdout, tmp)
        shutil.rmtree(mirror, ignore_errors=True)
        tmp.replace(mirror)

    manifest.run("holdout", mirror, {"data": data_hash(cfg), "ratio": cfg.forget_ratio, "holdout": holdout}, [], work)
    return dataclasses.replace(cfg, source=str(mirror)), holdout


def audit_stages(cfg: PipelineConfig, out: Path, manifest: Manifest, audited: tuple[str, str | None],
                 holdout: list[str], models: dict[str, tuple[str, Path]], results: dict[str, dict]) -> str:
    """``audit/<model>.json`` for the retrained model and every scored one, and ``forget_quality.png`` (with suite
    results); returns the report's privacy table. ``audited``: the ``(source, splits)`` holding the holdout
    profiles."""
    from mllmu_tasks.backend import MLLMUVisionLM

    data = None
    audits = {}
    for name, (stage, folder) in {"retrained": ("retrained", out / "retrained"), **models}.items():
        target = out / "audit" / f"{stage.replace('/', '_')}.json"

        def work(f=folder, t=target):
            nonlocal data
            data = data or audit_data(audited[0], cfg.forget_ratio, holdout, audited[1])
            t.parent.mkdir(exist_ok=True)
            write_json_atomic(t, audit_checkpoint(MLLMUVisionLM(pretrained=str(f), device=cfg.device), data))

        manifest.run(f"audit/{stage.replace('/', '_')}", target, {"holdout": holdout}, [stage], work)
        audits[name] = json.loads(target.read_text())
    compared = {name: compare(a, audits["retrained"]) for name, a in audits.items()}
    if not cfg.text_jsonl:
        utility = {name: report.set_score(res) for name, res in results.items()}
        plot_forget_quality(compared, {n: u for n, u in utility.items() if u is not None}, out / "forget_quality.png")
    return privacy_markdown(compared)


def relearn_stages(cfg: PipelineConfig, out: Path, manifest: Manifest, models: dict[str, tuple[str, Path]]) -> str:
    """The relearning attack on every unlearned model (:mod:`unlearners.audit.relearn`): ``relearn/<method>-
    <modality>`` (the fine-tuned checkpoint) and its forget/test scores; returns the report's table."""
    forget = load_examples(cfg.source, "forget", "image+text", cfg.forget_ratio, cfg.splits)
    attack, evaluated = relearn_split(sorted({e.profile_id for e in forget}), cfg.seed)
    pairs = [e for e in forget if e.profile_id in attack]
    suite = cfg.scoring_suite
    tasks = [f"{suite}_{s}_{k}_{m}" for s in relearn.SETS for k in relearn.KINDS for m in report.MODS]
    vanilla = report.load_question_scores(question_scores_path(results_json(out, "vanilla")))
    rows = {}
    for name, (stage, folder) in models.items():
        if stage == "vanilla":
            continue
        relearned = out / "relearn" / Path(stage).name
        settings = {"steps": cfg.relearn_steps, "lr": cfg.unlearn_lr, "batch": cfg.unlearn_batch_size,
                    "attack": attack, "lora": cfg.lora}
        manifest.run(f"relearn/{Path(stage).name}", relearned, settings, [stage], lambda f=folder, r=relearned: train(
            "finetune", ModelArguments(model=str(f), lora=cfg.lora), {"train": pairs},
            _train_args(cfg, r, 1, cfg.unlearn_lr, cfg.unlearn_batch_size, max_steps=cfg.relearn_steps, warmup=0),
            card={"data": f"relearning attack: ft_Data pairs of forget profiles {attack}", "source": cfg.source}))
        target = results_json(out, f"relearn/{Path(stage).name}")
        manifest.run(f"score/{target.stem}", target, {"tasks": tasks, "limit": cfg.score_limit},
                     [f"relearn/{Path(stage).name}"], lambda r=relearned, t=target: score(
                         r, tasks, cfg.source, cfg.forget_ratio, t, cfg.score_batch_size, cfg.device, cfg.score_limit))
        unlearned = report.load_question_scores(question_scores_path(results_json(out, stage)))
        relearned_scores = report.load_question_scores(question_scores_path(target))
        rows[name] = relearn.recovery(vanilla, unlearned, relearned_scores, evaluated)
    write_json_atomic(out / "audit" / "relearning.json", {"attack": attack, "evaluated": evaluated, "models": rows})
    return relearn.recovery_markdown(rows, cfg.relearn_steps)


def write_report(cfg: PipelineConfig, out: Path, results: dict[str, dict], identity: dict | None,
                 privacy: list[str] = ()) -> str:
    """``report.md`` (+ ``forget_vs_retain.png`` with suite results); returns the markdown."""
    lines = [f"# MLLMU-Bench pipeline report (forget ratio {cfg.forget_ratio} %, source {cfg.source})", ""]
    if not cfg.text_jsonl:
        lines += [f"Scored with `{cfg.scoring_suite}`" + (" (the paper protocol)." if cfg.scoring_suite == "mllmu" else
                  " (the paper's prompts, zero-shot: the embedded tiny model learned the answer formats from "
                  "zero-shot drills, and the released few-shot context is new to it)."), ""]
    if cfg.text_jsonl:
        lines += ["| model | forget ROUGE-L | retain ROUGE-L |", "|---|---:|---:|"]
        lines += [f"| {n} | {r['forget_rougeL']:.3f} | {r['retain_rougeL']:.3f} |" for n, r in results.items()] + [""]
    else:
        lines += [report.markdown_table(results), "Set summaries (mean of the six headline metrics, 0-1):", "",
                  report.summary_table(results)]
        lines += modality_headline_lines(cfg, out)
        if identity is not None:
            lines += identity_lines(results["vanilla"], identity)
        report.plot_forget_vs_retain(results, out / "forget_vs_retain.png")
        lines += ["![forget vs retain](forget_vs_retain.png)", ""]
    if privacy:  # the audit's table, then the relearning attack's
        lines += [PRIVACY_HEADER, "", privacy[0], "", PRIVACY_NOTE, ""] + [x for block in privacy[1:] for x in (block, "")]
        if (out / "forget_quality.png").is_file():
            lines += ["![forget quality vs model utility](forget_quality.png)", ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text, encoding="utf-8")
    return text


# settings that must be > 0 (epochs, learning rates, batch sizes, counts) and >= 0 (0: off / all)
POSITIVE = ("pretrain_epochs", "vanilla_epochs", "train_lr", "train_batch_size", "mc_copies", "unlearn_epochs",
            "unlearn_lr", "unlearn_batch_size", "score_batch_size", "probe_questions")
NON_NEGATIVE = ("checkpoint_steps", "profiles", "holdout_profiles", "relearn_steps")


def check_numbers(cfg: PipelineConfig) -> None:
    """Refuse epochs, learning rates, batch sizes and counts that cannot train or score.

    Raises:
        ValueError: one of :data:`POSITIVE` <= 0, one of :data:`NON_NEGATIVE` < 0, or ``--score_limit`` <= 0
            (names the flag and the value).
    """
    for name in POSITIVE + NON_NEGATIVE + ("score_limit",):
        value = getattr(cfg, name)
        if value is None or value > 0 or (value == 0 and name in NON_NEGATIVE):
            continue
        rule = ">= 0" if name in NON_NEGATIVE else "> 0"
        raise ValueError(f"--{name} must be {rule}, got {value:g}")


def check_config(cfg: PipelineConfig) -> PipelineConfig:
    """The settings checked before anything is written or loaded; returns them with ``--methods all`` expanded.

    Raises:
        ValueError: a bad ``--suite``, ``--protocol released`` with JSON Lines text, an unknown method or
            ``--method_args`` or ``--train_args`` entry, ``--profiles`` without a JSON Lines source and splits,
            or a number out of range (:func:`check_numbers`).
    """
    check_numbers(cfg)
    if cfg.suite not in ("auto", "mllmu", "mllmu-zs"):
        raise ValueError(f"--suite must be auto, mllmu (the paper protocol) or mllmu-zs, got {cfg.suite!r}")
    if cfg.released and cfg.text_jsonl:
        raise ValueError("--protocol released trains image+text pairs (the released scripts have no text-only path): "
                         "it needs an evaluation-schema source (mini, hub or a mirror), not JSON Lines text")
    if cfg.profiles and not (cfg.text_jsonl and cfg.splits):
        raise ValueError("--profiles cuts a JSON Lines source (--source ft_qa.jsonl --splits splits.json); "
                         "the evaluation-schema sources keep their own forget/retain configurations")
    cfg = dataclasses.replace(cfg, methods=expand_methods(cfg.methods))
    check_method_args(cfg)
    train_overrides(cfg)
    return cfg


def run_pipeline(cfg: PipelineConfig, log=print) -> str:
    """Run (or resume) every stage; returns the report's markdown.

    Raises:
        ValueError: see :func:`check_config` (nothing is written then).
    """
    checked = check_config(cfg)
    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    cfg = checked
    given = {"source": cfg.source, "splits": cfg.splits}  # as the user gave them: stage keys do not depend on --out_dir
    if cfg.text_jsonl and cfg.named:  # text-only "this person" questions cannot tell people apart
        cfg = dataclasses.replace(cfg, source=str(named_jsonl(cfg.source, out / "data" / "named.jsonl")))
    if cfg.profiles:
        jsonl, splits = cut_jsonl(cfg.source, cfg.splits, cfg.forget_ratio, cfg.profiles, out / "data")
        cfg = dataclasses.replace(cfg, source=str(jsonl), splits=str(splits))
    manifest = Manifest(out, log)
    label, holdout, audited = cfg.source, [], (cfg.source, cfg.splits)  # audited: the data the audit reads
    if cfg.holdout_profiles:
        cfg, holdout = holdout_stage(cfg, out, manifest)
    data_key = data_hash(cfg)
    common = {"seed": cfg.seed, "data": data_key, **given, "protocol": cfg.protocol, "base_model": cfg.base_model}
    tuning = {"lr": cfg.train_lr, "batch": cfg.train_batch_size, "lora": cfg.finetune_lora, "mc_copies": cfg.mc_copies}

    if cfg.base_model:
        start, upstream = cfg.base_model, []
    else:
        manifest.run("base", out / "base", {**common, "size": cfg.size}, [], lambda: build_base(cfg, out / "base"))
        start, upstream = str(out / "base"), ["base"]
        if not cfg.text_jsonl:
            celebrity = format_examples(CELEBRITY_CONFIG, resolve_source(cfg.source, flag="--source"), seed=cfg.seed,
                                        mc_copies=cfg.mc_copies)
            manifest.run("pretrain", out / "pretrain", {**common, **tuning, "epochs": cfg.pretrain_epochs}, upstream,
                         lambda: _finetune(cfg, start, out / "pretrain", celebrity, cfg.pretrain_epochs,
                                           "celebrity stand-ins and answer formats"))
            start, upstream = str(out / "pretrain"), ["pretrain"]
    manifest.run("vanilla", out / "vanilla", {**common, **tuning, "epochs": cfg.vanilla_epochs, "drills": cfg.drills},
                 upstream,
                 lambda: _finetune(cfg, start, out / "vanilla", vanilla_examples(cfg), cfg.vanilla_epochs,
                                   "all fictitious profiles: ft_Data pairs" + ("" if cfg.released else
                                                                               " and answer-format drills"),
                                   released=cfg.released))
    audit = cfg.audit and bool(holdout)
    if cfg.audit and not holdout:
        log("[audit] skipped: it needs holdout profiles (--holdout_profiles)")
    reference = None
    if audit or (cfg.released and "npo" in cfg.methods):  # the retrained model; the released NPO reference too
        reference = out / "retrained"
        manifest.run("retrained", reference, {**common, **tuning, "epochs": cfg.vanilla_epochs,
                                              "ratio": cfg.forget_ratio, "drills": cfg.drills}, upstream,
                     lambda: _finetune(cfg, start, reference, vanilla_examples(cfg, "retain"), cfg.vanilla_epochs,
                                       "retain profiles only (the retrained model)", released=cfg.released))
    models = {"vanilla": ("vanilla", out / "vanilla")}
    modalities = ("text-only",) if cfg.text_jsonl else cfg.modalities
    if cfg.released and "text-only" in modalities:
        log("[protocol released] image+text unlearning only (the released scripts have no text-only path)")
        modalities = tuple(m for m in modalities if m != "text-only")
    for method in cfg.methods:
        for modality in modalities:
            name = f"{method} ({modality})"
            stage, folder = unlearn_stage(method, modality), out / "unlearn" / f"{method}-{modality}"
            settings = {**common, "method": method, "modality": modality, "ratio": cfg.forget_ratio,
                        "epochs": cfg.unlearn_epochs, "lr": cfg.unlearn_lr, "batch": cfg.unlearn_batch_size,
                        "lora": cfg.lora,
                        "method_config": dataclasses.asdict(method_config(cfg, method)),
                        **({"train_args": train_overrides(cfg)} if cfg.train_args else {})}
            released_npo = cfg.released and method == "npo"
            needs = ["vanilla"] + (["retrained"] if released_npo else [])
            manifest.run(stage, folder, settings, needs,
                         lambda m=method, mod=modality, f=folder: unlearn(cfg, out / "vanilla", m, mod, f,
                                                                          reference if released_npo else None))
            models[name] = (stage, folder)

    results, identity = {}, None
    for name, (stage, folder) in models.items():
        target = results_json(out, stage)
        target.parent.mkdir(exist_ok=True)
        settings = {"ratio": cfg.forget_ratio, "limit": cfg.score_limit, "probe": cfg.probe_questions,
                    "suite": cfg.scoring_suite}
        if cfg.text_jsonl:
            work = lambda f=folder, t=target: probe_scores(cfg, f, t)  # noqa: E731
        else:
            suite = cfg.scoring_suite  # the identity tasks (zero-shot) are in mllmu-zs already
            tasks = [suite, *IDENTITY_TASKS] if name == "vanilla" and suite != "mllmu-zs" else [suite]
            work = lambda f=folder, t=target, ts=tasks: score(f, ts, cfg.source, cfg.forget_ratio, t,  # noqa: E731
                                                              cfg.score_batch_size, cfg.device, cfg.score_limit)
        manifest.run(f"score/{target.stem}", target, settings, [stage], work)
        results[name] = json.loads(target.read_text())
    if not cfg.text_jsonl:
        mirror, target = out / "identity-mirror", out / "results" / "identity.json"
        manifest.run("identity", target, {"ratio": cfg.forget_ratio}, ["vanilla"], lambda: score(
            out / "vanilla", IDENTITY_TASKS, str(swapped_portraits_mirror(
                resolve_source(cfg.source, flag="--source"), cfg.forget_ratio, mirror)), cfg.forget_ratio, target, cfg.score_batch_size,
            cfg.device))
        identity = json.loads(target.read_text())
    privacy = [audit_stages(cfg, out, manifest, audited, holdout, models, results)] if audit else []
    if audit and cfg.relearn_steps and cfg.text_jsonl:
        log("[relearn] skipped: the relearning attack scores the suite's forget and test sets (not in JSON Lines mode)")
    elif audit and cfg.relearn_steps:
        privacy.append(relearn_stages(cfg, out, manifest, models))
    return write_report(dataclasses.replace(cfg, source=label), out, results, identity, privacy)


def parse(argv: list[str]) -> PipelineConfig:
    """Command-line flags: one per :class:`PipelineConfig` field (lists comma-separated)."""
    parser = argparse.ArgumentParser(prog="mllmu-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(PipelineConfig)
    for f in dataclasses.fields(PipelineConfig):
        default = f.default
        if isinstance(default, tuple):
            parser.add_argument(f"--{f.name}", default=",".join(default), help=f"comma-separated (default {default})")
        else:
            kind = field_type(hints[f.name])
            parser.add_argument(f"--{f.name}", default=default, type=bool_flag if kind is bool else kind)
    ns = vars(parser.parse_args(argv))
    for f in dataclasses.fields(PipelineConfig):
        if isinstance(f.default, tuple):
            ns[f.name] = tuple(x for x in ns[f.name].split(",") if x)
    return PipelineConfig(**ns)


def main(argv: list[str] | None = None) -> None:
    """``mllmu-pipeline``: run or resume the pipeline and print the report."""
    cfg = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        check_config(cfg)
    except ValueError as err:  # bad settings: one line, before anything is written
        sys.exit(f"mllmu-pipeline: error: {err}")
    start = time.time()
    text = run_pipeline(cfg, log=lambda line: print(f"mllmu-pipeline {line}", flush=True))
    print(text)
    print(f"mllmu-pipeline: finished in {time.time() - start:.0f} s; outputs in {Path(cfg.out_dir).resolve()}")


if __name__ == "__main__":
    main()
