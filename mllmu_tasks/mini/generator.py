"""Deterministic generator of a mini MLLMU-Bench in the hub schema.

:func:`generate_benchmark` builds all ten configurations of
``MLLMMU/MLLMU-Bench`` (:data:`mllmu_tasks.schema.CONFIGS`) for a small set
of fictitious people, so the whole evaluation and unlearning pipeline runs
offline; :func:`write_hub_layout` stores them as
``<root>/<config>/train-00000-of-00001.parquet``.

Profiles. Each person has the 15 facts of :data:`FACT_KINDS` (name, birth
place, date of birth, gender, job, height, education, salary, residence,
medical condition, parents' jobs, hobby, favourite food, pet), drawn from
:mod:`mllmu_tasks.mini.wordlists`, and a distinct drawn portrait
(:mod:`mllmu_tasks.mini.portraits`). ``biography`` is the JSON object of
these facts, keyed by :attr:`FactKind.key`. Fictitious profiles get IDs
``"001"`` .. ``f"{num_profiles:03d}"``.

Celebrity stand-ins. The real ``Retain_Set`` holds 153 real celebrities: it
measures model utility on knowledge the model had BEFORE fine-tuning and
must not be touched by unlearning. No real person is available offline, so
here ``Retain_Set`` holds ``num_celebrities`` separate generated profiles
with IDs continuing after the fictitious ones. They are absent from
``ft_Data``, ``Full_Set`` and every forget/retain split; a model that
should "know" them must learn them elsewhere (e.g. a pre-training step of
the tiny test model).

Questions. Every evaluation row has 5 image+text and 5 text-only multiple
choice questions, 2 + 2 generation and 2 + 2 cloze questions on facts
chosen at random per profile. Image+text questions say "this person";
text-only ones name the person (the name itself is only asked with the
image). Multiple-choice distractors are the same kind of fact taken from
other profiles (fictitious and stand-ins alike). ``Full_Set`` and the splits
use the wording of ``ft_Data``; ``Test_Set`` asks the same facts in other
words, reshuffles the options, keeps the generation answers and shows three
transformed portraits.

Determinism: every random choice comes from :class:`random.Random` seeded
with a string made of ``seed`` and a purpose, so the same arguments give
identical rows and PNG bytes in any process. Forget sets hold
``max(1, round(num_profiles * X / 100))`` profiles (Python's ``round``,
half to even), drawn independently per ratio (not nested).
"""

from __future__ import annotations

import datetime
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import datasets

from mllmu_tasks import schema
from mllmu_tasks.mini import portraits, wordlists
from mllmu_tasks.prompts import CLOZE_BLANK

SHARD_NAME = "train-00000-of-00001.parquet"
MC_PER_MODALITY = 5
OPEN_PER_MODALITY = 2
TEST_IMAGES = 3
MIN_PROFILES = 4
MAX_IDS = 999
NAME_QUESTION = "What is the name of this person?"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


@dataclass(frozen=True)
class FactKind:
    """One kind of fact and its sentences.

    ``questions`` and ``statements`` hold two wordings: index 0 for
    ``ft_Data``/``Full_Set``, index 1 the ``Test_Set`` paraphrase. Question
    placeholders: ``{s}`` subject, ``{p}`` possessive ("this person",
    "this person's" or the name). Statement placeholders: ``{S}``/``{P}`` the
    same at the start of a sentence, ``{s}`` mid-sentence, ``{v}`` the value,
    ``{an}`` its indefinite article.
    """

    key: str
    questions: tuple[str, str]
    statements: tuple[str, str]
    multiple_choice: bool = True  # False: too few distinct values for 4 options
    reveals_name: bool = False  # True: cannot be asked with the name in the question


FACT_KINDS = (
    FactKind("name", ("What is the name of {s}?", "Who is {s}?"),
             ("{P} name is {v}.", "{S} is called {v}."), reveals_name=True),
    FactKind("birth place", ("Where was {s} born?", "In which city was {s} born?"),
             ("{S} was born in {v}.", "{P} birthplace is {v}.")),
    FactKind("date of birth", ("What is {p} date of birth?", "When was {s} born?"),
             ("{P} date of birth is {v}.", "{S} was born on {v}.")),
    FactKind("gender", ("What is {p} gender?", "Is {s} male or female?"),
             ("{S} is {v}.", "{S} identifies as {v}."), multiple_choice=False),
    FactKind("job", ("What is {p} profession?", "What does {s} do for a living?"),
             ("{S} is {an} {v}.", "{S} works as {an} {v}.")),
    FactKind("height", ("What is {p} height?", "How tall is {s}?"),
             ("{S} is {v} tall.", "{P} height is {v}.")),
    FactKind("education", ("Where did {s} complete their education?", "Which university did {s} attend?"),
             ("{S} was educated at {v}.", "{S} studied at {v}.")),
    FactKind("salary", ("What is {p} annual salary?", "How much does {s} earn per year?"),
             ("{P} annual salary is {v}.", "{S} earns {v} per year.")),
    FactKind("residence", ("Where does {s} currently reside?", "In which city does {s} live now?"),
             ("{S} resides in {v}.", "{S} currently lives in {v}.")),
    FactKind("medical conditions", ("What medical condition does {s} have?",
                                    "Which health condition has {s} been diagnosed with?"),
             ("{S} has been diagnosed with {v}.", "{S} lives with {v}.")),
    FactKind("father's job", ("What is the occupation of {p} father?", "What does {p} father do for a living?"),
             ("{P} father is {an} {v}.", "{P} father works as {an} {v}.")),
    FactKind("mother's job", ("What is the occupation of {p} mother?", "What does {p} mother do for a living?"),
             ("{P} mother is {an} {v}.", "{P} mother works as {an} {v}.")),
    FactKind("hobby", ("What is {p} favorite hobby?", "What does {s} like to do in their free time?"),
             ("{P} favorite hobby is {v}.", "In their free time, {s} enjoys {v}.")),
    FactKind("favorite food", ("What is {p} favorite food?", "Which dish does {s} like most?"),
             ("{P} favorite food is {v}.", "The dish {s} likes most is {v}.")),
    FactKind("pet", ("What pet does {s} have?", "Does {s} own a pet?"),
             ("{S} has {v}.", "{S} owns {v}.")),
)
KINDS = {kind.key: kind for kind in FACT_KINDS}


@dataclass(frozen=True)
class Profile:
    """A generated person: ``ID``, facts keyed like :data:`FACT_KINDS`, portrait spec."""

    id: str
    facts: dict
    portrait: portraits.PortraitSpec
    celebrity: bool = False

    @property
    def name(self) -> str:
        return self.facts["name"]


# ---------------------------------------------------------------- facts

def _rng(seed: int, *purpose) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *purpose)))


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _height(inches: int) -> str:
    feet, rest = divmod(inches, 12)
    return f"{feet} feet" + (f" {rest} inch" + ("es" if rest != 1 else "") if rest else "")


def _value_pools() -> dict[str, list[str]]:
    """Every value a fact kind can take (name, gender, date of birth are drawn apart)."""
    places = [f"{city}, {country}" for city, country in wordlists.CITIES]
    pets = [f"{_article(animal)} {animal} named {pet}"
            for animal, pet in itertools.product(wordlists.PET_ANIMALS, wordlists.PET_NAMES)]
    return {
        "birth place": places,
        "job": list(wordlists.PROFESSIONS),
        "height": [_height(i) for i in range(59, 78)],
        "education": list(wordlists.UNIVERSITIES),
        "salary": [f"${k:,},000" for k in range(36, 182, 3)],
        "residence": places,
        "medical conditions": list(wordlists.MEDICAL_CONDITIONS),
        "father's job": list(wordlists.PROFESSIONS),
        "mother's job": list(wordlists.PROFESSIONS),
        "hobby": list(wordlists.HOBBIES),
        "favorite food": list(wordlists.FOODS),
        "pet": pets,
    }


def _spread(pool: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` values cycling through a shuffled pool: min(count, len(pool)) distinct values."""
    order = list(pool)
    rng.shuffle(order)
    return [order[i % len(order)] for i in range(count)]


def _names(genders: list[str], rng: random.Random) -> list[str]:
    taken, names = set(), []
    for gender in genders:
        firsts = wordlists.FEMALE_FIRST_NAMES if gender == "female" else wordlists.MALE_FIRST_NAMES
        name = f"{rng.choice(firsts)} {rng.choice(wordlists.LAST_NAMES)}"
        while name in taken:
            name = f"{rng.choice(firsts)} {rng.choice(wordlists.LAST_NAMES)}"
        taken.add(name)
        names.append(name)
    return names


def _birth_dates(count: int, rng: random.Random) -> list[str]:
    first, last = datetime.date(1950, 1, 1).toordinal(), datetime.date(2002, 12, 31).toordinal()
    days = rng.sample(range(first, last + 1), count)
    return [_format_date(datetime.date.fromordinal(d)) for d in days]


def _format_date(day: datetime.date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"  # not strftime: that follows the locale


def _check_counts(num_profiles: int, num_celebrities: int) -> None:
    if num_profiles < MIN_PROFILES:
        raise ValueError(f"num_profiles must be at least {MIN_PROFILES}, got {num_profiles}")
    if num_celebrities < 1:
        raise ValueError(f"num_celebrities must be at least 1, got {num_celebrities}")
    if num_profiles + num_celebrities > MAX_IDS:
        raise ValueError(f"IDs are three digits: num_profiles + num_celebrities must be at most {MAX_IDS}, "
                         f"got {num_profiles + num_celebrities}")


def profile_facts(num_profiles: int = 40, num_celebrities: int = 10, seed: int = 0) -> list[Profile]:
    """All generated people: fictitious profiles first, then celebrity stand-ins.

    Returns ``num_profiles + num_celebrities`` :class:`Profile` objects with
    IDs ``"001"``, ``"002"``, ... in order; names are unique. Each non-unique
    kind cycles through a shuffled word list, so every kind has at least
    ``min(total, list size) >= 5`` distinct values (enough distractors).

    Raises:
        ValueError: fewer than 4 profiles, no celebrity, or more than 999 in all.
    """
    _check_counts(num_profiles, num_celebrities)
    total = num_profiles + num_celebrities
    genders = _spread(["female", "male"], total, _rng(seed, "gender"))
    columns = {
        "name": _names(genders, _rng(seed, "name")),
        "date of birth": _birth_dates(total, _rng(seed, "date of birth")),
        "gender": genders,
    }
    for key, pool in _value_pools().items():
        columns[key] = _spread(pool, total, _rng(seed, key))
    specs = portraits.portrait_specs(total, _rng(seed, "portrait"), bearded=[g == "male" for g in genders])
    return [Profile(id=f"{i + 1:03d}", facts={kind.key: columns[kind.key][i] for kind in FACT_KINDS},
                    portrait=specs[i], celebrity=i >= num_profiles)
            for i in range(total)]


# ------------------------------------------------------------ sentences

def _subject(profile: Profile | None) -> dict[str, str]:
    """Placeholders for "this person" (``None``) or the named person."""
    if profile is None:
        return {"s": "this person", "p": "this person's", "S": "This person", "P": "This person's"}
    name = profile.name
    return {"s": name, "p": f"{name}'s", "S": name, "P": f"{name}'s"}


def question_text(kind: FactKind, named: Profile | None, wording: int = 0) -> str:
    """The question on ``kind``; ``named=None`` asks about "this person"."""
    return kind.questions[wording].format(**_subject(named))


def statement(kind: FactKind, value: str, named: Profile | None, wording: int = 0, blank: bool = False) -> str:
    """The sentence stating ``value``; with ``blank`` the value becomes ``__``."""
    shown = CLOZE_BLANK if blank else value
    return kind.statements[wording].format(v=shown, an=_article(value), **_subject(named))


# ------------------------------------------------------------ questions

@dataclass(frozen=True)
class _Plan:
    """Which facts a profile's evaluation row asks, with MC distractors."""

    mc: dict  # modality -> list of (kind key, distractors)
    generation: dict  # modality -> list of kind keys
    cloze: dict


def _distractors(kind: str, profile: Profile, people: list[Profile], rng: random.Random) -> list[str]:
    answer = profile.facts[kind]
    others = sorted({p.facts[kind] for p in people if p.id != profile.id} - {answer})
    return rng.sample(others, len(schema.OPTION_KEYS) - 1)


def _plan(profile: Profile, people: list[Profile], seed: int) -> _Plan:
    rng = _rng(seed, "plan", profile.id)
    every = [k.key for k in FACT_KINDS]
    textual = [k.key for k in FACT_KINDS if not k.reveals_name]
    mc_image = [k.key for k in FACT_KINDS if k.multiple_choice]
    mc_text = [k for k in mc_image if k in textual]
    mc = {modality: [(k, _distractors(k, profile, people, rng)) for k in rng.sample(pool, MC_PER_MODALITY)]
          for modality, pool in ((schema.IMAGE_TEXTUAL, mc_image), (schema.PURE_TEXT, mc_text))}
    pools = ((schema.IMAGE_TEXTUAL, every), (schema.PURE_TEXT, textual))
    generation = {m: rng.sample(pool, OPEN_PER_MODALITY) for m, pool in pools}
    cloze = {m: rng.sample(pool, OPEN_PER_MODALITY) for m, pool in pools}
    return _Plan(mc=mc, generation=generation, cloze=cloze)


def _named(profile: Profile, modality: str) -> Profile | None:
    return None if modality == schema.IMAGE_TEXTUAL else profile


def _mc_item(profile: Profile, modality: str, key: str, distractors: list[str], wording: int,
             rng: random.Random) -> dict:
    options = [profile.facts[key], *distractors]
    rng.shuffle(options)
    return {
        "Question": question_text(KINDS[key], _named(profile, modality), wording),
        "Options": dict(zip(schema.OPTION_KEYS, options)),
        "Correct_Answer": schema.OPTION_KEYS[options.index(profile.facts[key])],
    }


def _eval_tasks(profile: Profile, plan: _Plan, wording: int, option_rng: random.Random) -> dict:
    """The three task columns; ``wording`` 0 as in ft_Data, 1 paraphrased (answers unchanged)."""
    mc = {m: [_mc_item(profile, m, key, d, wording, option_rng) for key, d in items]
          for m, items in plan.mc.items()}
    generation = [{"Question": question_text(KINDS[key], _named(profile, m), wording),
                   "Ground_Truth": statement(KINDS[key], profile.facts[key], _named(profile, m)),
                   "Type": m}
                  for m, keys in plan.generation.items() for key in keys]
    cloze = [{"Question": statement(KINDS[key], profile.facts[key], _named(profile, m), wording, blank=True),
              "Ground_Truth": profile.facts[key], "Type": m}
             for m, keys in plan.cloze.items() for key in keys]
    return {
        "Classification_Task": {"Image_Textual_Questions": mc[schema.IMAGE_TEXTUAL],
                                "Pure_Text_Questions": mc[schema.PURE_TEXT]},
        "Generation_Task": generation,
        "Mask_Task": cloze,
    }


# ----------------------------------------------------------------- rows

def _image(png: bytes) -> dict:
    return {"bytes": png, "path": None}


def _eval_row(profile: Profile, plan: _Plan, image_column: dict, wording: int, option_rng: random.Random) -> dict:
    return {
        **image_column,
        "ID": profile.id,
        "Directory": profile.name.replace(" ", "_"),
        "question": NAME_QUESTION,
        "answer": statement(KINDS["name"], profile.name, None),
        "biography": json.dumps(profile.facts),
        **_eval_tasks(profile, plan, wording, option_rng),
    }


def ft_pairs(profile: Profile) -> list[dict]:
    """Fine-tuning pairs of a profile: every fact asked about "this person",
    then every fact but the name asked with the name; answers are the
    generation ground-truth sentences."""
    pairs = []
    for named in (None, profile):
        for kind in FACT_KINDS:
            if named is not None and kind.reveals_name:
                continue
            pairs.append({"ID": profile.id, "Question": question_text(kind, named),
                          "Answer": statement(kind, profile.facts[kind.key], named)})
    return pairs


def _forget_ids(fictitious: list[Profile], seed: int) -> dict[int, set[str]]:
    ids = [p.id for p in fictitious]
    return {ratio: set(_rng(seed, "forget", ratio).sample(ids, max(1, round(len(ids) * ratio / 100))))
            for ratio in schema.FORGET_RATIOS}


def _dataset(rows: list[dict], config: str) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows, features=schema.features_for(config))


def generate_benchmark(num_profiles: int = 40, num_celebrities: int = 10, seed: int = 0,
                       image_size: int = 64) -> dict[str, datasets.Dataset]:
    """Build the ten configurations of the mini benchmark.

    Args:
        num_profiles: fictitious profiles (``Full_Set``, ``ft_Data``, ``Test_Set`` rows).
        num_celebrities: celebrity stand-ins (``Retain_Set`` rows), IDs after the fictitious ones.
        seed: every random choice derives from it; same arguments -> identical rows and PNG bytes.
        image_size: portrait width = height in pixels (RGB PNG).

    Returns:
        ``{config: Dataset}`` for every name in :data:`mllmu_tasks.schema.CONFIGS`, each with
        ``features == schema.features_for(config)``; ``forget_X`` holds
        ``max(1, round(num_profiles * X / 100))`` rows, ``retain_{100-X}`` the rest, rows in ID order.

    Raises:
        ValueError: ``num_profiles < 4``, ``num_celebrities < 1``, more than 999 profiles in all,
            or ``image_size < 16``.
    """
    _check_counts(num_profiles, num_celebrities)
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    people = profile_facts(num_profiles, num_celebrities, seed)
    eval_rows, test_rows, ft_rows = {}, [], []
    for profile in people:
        picture = portraits.draw_portrait(profile.portrait, image_size)
        image = {"image": _image(portraits.png_bytes(picture))}
        plan = _plan(profile, people, seed)
        eval_rows[profile.id] = _eval_row(profile, plan, image, 0, _rng(seed, "options", profile.id))
        if profile.celebrity:
            continue
        ft_rows.append({**image, "metadata": json.dumps(ft_pairs(profile))})
        variants = portraits.transformed_variants(picture, _rng(seed, "variants", profile.id))
        images = {"images": [_image(portraits.png_bytes(v)) for v in variants]}
        test_rows.append(_eval_row(profile, plan, images, 1, _rng(seed, "test options", profile.id)))
    fictitious = [p for p in people if not p.celebrity]
    rows = {
        schema.FULL_CONFIG: [eval_rows[p.id] for p in fictitious],
        schema.FT_CONFIG: ft_rows,
        schema.TEST_CONFIG: test_rows,
        schema.CELEBRITY_CONFIG: [eval_rows[p.id] for p in people if p.celebrity],
    }
    for ratio, forget in _forget_ids(fictitious, seed).items():
        rows[schema.forget_config(ratio)] = [eval_rows[p.id] for p in fictitious if p.id in forget]
        rows[schema.retain_config(ratio)] = [eval_rows[p.id] for p in fictitious if p.id not in forget]
    return {config: _dataset(rows[config], config) for config in schema.CONFIGS}


def write_hub_layout(benchmark: dict[str, datasets.Dataset], root: str | Path) -> Path:
    """Write ``<root>/<config>/train-00000-of-00001.parquet`` for every configuration.

    ``benchmark`` maps configuration names (those of :data:`schema.CONFIGS`) to datasets,
    as :func:`generate_benchmark` returns; directories are created as needed and existing
    shards overwritten. Returns ``Path(root)``.

    Raises:
        ValueError: a key is not a configuration name.
    """
    root = Path(root)
    for config, dataset in benchmark.items():
        schema.check_config_name(config)
        folder = root / config
        folder.mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(folder / SHARD_NAME))
    return root
