"""Seeded, versioned generator of synthetic shop-floor defect reports.

The demo, the tests and the benchmarks all stand on this data, so it is built to
resist a keyword lookup: wide synonym tables with their inflections, vocabulary shared
across classes, negated and false-lead mentions of other classes, typos and
abbreviations, site jargon, site products and site class mixes, label noise in
training parts, and lengths from one word to a few sentences.
``tests/export/test_datasets.py`` checks that a bag-of-words baseline stays well below
a pretrained encoder trained on the same few labels.

Pure standard library on purpose: importing it must stay cheap for the CLI and GUI.
Randomness comes only from ``random.Random`` instances seeded through ``zlib.crc32``
(never ``hash()``, which is salted per process), so a seed means the same data in
every process. Changing what a seed produces means bumping ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import json
import os
import random
import string
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from export.datasets import vocabulary as vocab

GENERATOR_VERSION: str = "1.0.0"
LABELS: tuple[str, ...] = ("scratch", "dent", "contamination", "misalignment", "missing_part", "no_defect")
SITES: tuple[str, ...] = ("site-a", "site-b", "site-c")

CENTRAL = "central"
NO_DEFECT = "no_defect"
DEFECT_LABELS: tuple[str, ...] = tuple(label for label in LABELS if label != NO_DEFECT)

# Share of training reports whose recorded label is wrong (operators mis-click).
LABEL_NOISE_RATE = 0.05
# Per-report chances of each ingredient. Tuned with the realism test: every one of
# them costs the pretrained model more than the bag-of-words baseline, so they are
# present at realistic, not maximal, rates.
IDIOM_RATE = 0.25
HEADING_RATE = 0.4
NEGATED_MENTION_RATE = 0.06
FALSE_LEAD_RATE = 0.03
NO_DEFECT_AS_NEGATION_RATE = 0.08
DISPOSITION_RATE = 0.15
HEADER_RATE = 0.25
CONTEXT_RATE = 0.12
ABBREVIATION_RATE = 0.15
TYPO_RATE = 0.05
# How strongly operators prefer the everyday word (first in each table) to rare ones.
ZIPF_EXPONENT = 0.8

_CENTRAL_LINES = 3
_SITE_LINES = 4
_SHIFTS = ("day", "swing", "night")


@dataclass(frozen=True)
class Report:
    """One defect report as an operator wrote it."""

    text: str
    label: str  # the recorded label (training parts carry some label noise)
    true_label: str  # ground truth
    group: str  # "<source>/line-<n>/<shift>", e.g. "site-a/line-2/night"

    def to_json(self) -> dict[str, str]:
        """The JSONL record every Genba input file uses (DESIGN: input files)."""
        return {"text": self.text, "label": self.label, "group": self.group}


@dataclass(frozen=True)
class Split:
    """A training part and a fixed, noise-free evaluation part."""

    train: tuple[Report, ...]  # central: IT's training part; site: the site's training pool
    eval: tuple[Report, ...]  # labels == true labels (no noise)


def central_split(seed: int = 0, n_train: int = 600, n_eval: int = 300) -> Split:
    """IT's data: balanced classes, general vocabulary, no site jargon."""
    priors = dict.fromkeys(LABELS, 1.0)
    return _split(CENTRAL, priors, seed, n_train, n_eval)


def site_split(site: str, seed: int = 0, n_pool: int = 600, n_eval: int = 300) -> Split:
    """One site's data: its own class mix, its own products and its own words for some classes."""
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; valid sites: {', '.join(SITES)}")
    return _split(site, vocab.SITE_PRIORS[site], seed, n_pool, n_eval)


def sample_per_class(reports: Iterable[Report], per_class: int, seed: int) -> list[Report]:
    """A stratified few-label sample: ``per_class`` reports of each recorded label.

    Stratifies on the recorded label, as an operator's labelling queue would. Raises
    ValueError when a label has fewer reports than asked for, rather than silently
    returning a smaller sample that would misstate "N labels per class".
    """
    by_label: dict[str, list[Report]] = {label: [] for label in LABELS}
    for report in reports:
        by_label[report.label].append(report)
    rng = _rng("sample", seed, per_class)
    sample: list[Report] = []
    for label in LABELS:
        pool = by_label[label]
        if len(pool) < per_class:
            raise ValueError(f"only {len(pool)} reports labelled {label!r}, {per_class} asked for")
        sample.extend(rng.sample(pool, per_class))
    rng.shuffle(sample)
    return sample


def write_jsonl(reports: Iterable[Report], path: str | os.PathLike[str]) -> None:
    """Write one ``Report.to_json()`` per line, UTF-8, non-ASCII kept as is."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for report in reports:
            handle.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")


# --- splits -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Voice:
    """How one source writes: what it makes, how it heads a report, its own words."""

    source: str
    parts: tuple[str, ...]
    headers: tuple[str, ...]
    jargon: Mapping[str, tuple[str, ...]]


def _voice(source: str) -> _Voice:
    if source == CENTRAL:
        return _Voice(CENTRAL, vocab.PARTS, vocab.HEADERS, {})
    headers = vocab.HEADERS + vocab.SITE_HEADERS[source]
    return _Voice(source, vocab.SITE_PARTS[source], headers, vocab.SITE_JARGON[source])


def _split(source: str, priors: Mapping[str, float], seed: int, n_train: int, n_eval: int) -> Split:
    voice = _voice(source)
    # Separate streams per part, so asking for more training reports never changes eval.
    train = _generate(voice, priors, n_train, _rng(source, seed, "train"), noisy=True)
    evaluation = _generate(voice, priors, n_eval, _rng(source, seed, "eval"), noisy=False)
    return Split(train=train, eval=evaluation)


def _rng(*parts: object) -> random.Random:
    key = "|".join([GENERATOR_VERSION, *map(str, parts)])
    return random.Random(zlib.crc32(key.encode("utf-8")))


def _generate(
    voice: _Voice, priors: Mapping[str, float], count: int, rng: random.Random, *, noisy: bool
) -> tuple[Report, ...]:
    labels = _label_sequence(priors, count)
    rng.shuffle(labels)
    reports = []
    for true_label in labels:
        mislabelled = noisy and rng.random() < LABEL_NOISE_RATE
        recorded = _other_label(true_label, rng) if mislabelled else true_label
        text = _compose(true_label, voice, rng)
        reports.append(Report(text=text, label=recorded, true_label=true_label, group=_group(voice, rng)))
    return tuple(reports)


def _label_sequence(priors: Mapping[str, float], count: int) -> list[str]:
    """Exact class counts from the priors (largest remainder), in LABELS order."""
    total = sum(priors.values())
    shares = {label: count * priors[label] / total for label in LABELS}
    counts = {label: int(share) for label, share in shares.items()}
    by_remainder = sorted(LABELS, key=lambda label: counts[label] - shares[label])
    for label in by_remainder[: count - sum(counts.values())]:
        counts[label] += 1
    return [label for label in LABELS for _ in range(counts[label])]


def _other_label(true_label: str, rng: random.Random) -> str:
    return rng.choice([label for label in LABELS if label != true_label])


def _group(voice: _Voice, rng: random.Random) -> str:
    lines = _CENTRAL_LINES if voice.source == CENTRAL else _SITE_LINES
    return f"{voice.source}/line-{rng.randint(1, lines)}/{rng.choice(_SHIFTS)}"


# --- text -------------------------------------------------------------------------


def _compose(label: str, voice: _Voice, rng: random.Random) -> str:
    clauses = [_finding(label, voice, rng)]
    if label != NO_DEFECT and rng.random() < NEGATED_MENTION_RATE:
        # "no scratch found, dent on rim": another class is named, and ruled out.
        clauses.insert(rng.randint(0, 1), _negated_mention(_other_defect(label, rng), rng))
    if label != NO_DEFECT and rng.random() < DISPOSITION_RATE:
        clauses.append(rng.choice(vocab.DISPOSITIONS))
    text = rng.choice((", ", "; ", " - ", ". ")).join(clauses)
    if rng.random() < HEADER_RATE:
        text = f"{_header(voice, rng)}{rng.choice((': ', ' - ', ' '))}{text}"
    if rng.random() < CONTEXT_RATE:
        text = f"{_end_sentence(text)} {rng.choice(vocab.CONTEXT_SENTENCES)}"
    return _apply_casing(_misspell(text, rng), rng)


def _finding(label: str, voice: _Voice, rng: random.Random) -> str:
    if label == NO_DEFECT and rng.random() < NO_DEFECT_AS_NEGATION_RATE:
        ruled_out = rng.sample(DEFECT_LABELS, rng.randint(1, 2))
        return ", ".join(_negated_mention(other, rng) for other in ruled_out)
    phrase = _phrase(label, voice, rng)
    if label != NO_DEFECT and rng.random() < HEADING_RATE:
        # "dent - panel pushed in": the finding named first, then described.
        heading = _common_first(vocab.CLASS_HEADINGS[label], rng)
        phrase = f"{heading}{rng.choice((' - ', ', ', ': '))}{phrase}"
    if label != NO_DEFECT and rng.random() < FALSE_LEAD_RATE:
        mention = rng.choice(vocab.CLASS_MENTIONS[_other_defect(label, rng)])
        return rng.choice(vocab.FALSE_LEAD_TEMPLATES).format(mention=mention, phrase=phrase)
    return phrase


def _phrase(label: str, voice: _Voice, rng: random.Random) -> str:
    jargon = voice.jargon.get(label)
    if jargon and rng.random() < vocab.SITE_JARGON_RATE:
        return _fill(rng.choice(jargon), voice, rng)
    draw = rng.random()
    if draw < IDIOM_RATE:
        return _fill(rng.choice(vocab.CLASS_IDIOMS[label]), voice, rng)
    nouns = vocab.CLASS_NOUNS.get(label)
    if nouns and draw < IDIOM_RATE + (1 - IDIOM_RATE) / 2:
        sized = vocab.SIZED_NOUN_PATTERNS if label in vocab.SIZED_LABELS else ()
        return _fill(rng.choice(vocab.NOUN_PATTERNS + sized), voice, rng, noun=_common_first(nouns, rng))
    state = _common_first(vocab.CLASS_STATES[label], rng)
    return _fill(rng.choice(vocab.STATE_PATTERNS), voice, rng, state=state)


def _common_first(words: tuple[str, ...], rng: random.Random) -> str:
    """Zipf-like pick: the tables list the everyday word first and the rare one last."""
    weights = [1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(words))]
    return rng.choices(words, weights=weights)[0]


def _negated_mention(label: str, rng: random.Random) -> str:
    mention = rng.choice(vocab.CLASS_MENTIONS[label])
    return rng.choice(vocab.NEGATION_TEMPLATES).format(mention=mention)


def _other_defect(label: str, rng: random.Random) -> str:
    return rng.choice([other for other in DEFECT_LABELS if other != label])


def _fill(template: str, voice: _Voice, rng: random.Random, **slots: str) -> str:
    part, loc, size = rng.choice(voice.parts), rng.choice(vocab.LOCATIONS), rng.choice(vocab.SIZES)
    return template.format(part=part, loc=loc, size=size, **slots)


def _header(voice: _Voice, rng: random.Random) -> str:
    return rng.choice(voice.headers).format(
        pn=f"{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGH')}",
        stn=rng.randint(1, 40),
        ini="".join(rng.choices(string.ascii_uppercase, k=2)),
        lot=rng.randint(100, 9999),
        wo=rng.randint(10000, 99999),
    )


def _end_sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _misspell(text: str, rng: random.Random) -> str:
    """Abbreviate known words and mistype a few others, as hurried operators do."""
    return " ".join(_misspell_word(word, rng) for word in text.split(" "))


def _misspell_word(word: str, rng: random.Random) -> str:
    core = word.strip(string.punctuation)
    short_forms = vocab.ABBREVIATIONS.get(core.lower())
    if short_forms and rng.random() < ABBREVIATION_RATE:
        return word.replace(core, rng.choice(short_forms))
    if len(core) >= 4 and core.isalpha() and rng.random() < TYPO_RATE:
        return word.replace(core, _typo(core, rng))
    return word


def _typo(word: str, rng: random.Random) -> str:
    position = rng.randint(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:  # a dropped letter
        return word[:position] + word[position + 1 :]
    if kind == 1:  # swapped neighbours
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    return word[:position] + word[position] + word[position:]  # a doubled letter


def _apply_casing(text: str, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.15:
        return text.lower()
    if draw < 0.22:
        return text.upper()  # some terminals, some operators
    return text[:1].upper() + text[1:]
