"""The split rule: by normalised content, keyed by the site; identical reports never straddle it."""

from __future__ import annotations

import random
import unicodedata

import pytest

from edge_agent.split import HOLDOUT, TRAIN, SplitRule, content_key, normalise_text

WORDS = ["scratch", "dent", "Rust", "ÖL", "straße", "ﬁlter", "Ｌ２", "①", "near", "the", "rim", "4711"]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2003"]


def _report(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))


def _variant(text: str, rng: random.Random) -> str:
    """The same report as another operator might type or paste it: case, spacing, Unicode form."""
    cased = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    spaced = "".join(rng.choice(SPACES) if c == " " else c for c in cased)
    padded = rng.choice(SPACES) * rng.randint(0, 2) + spaced + rng.choice(SPACES) * rng.randint(0, 2)
    return unicodedata.normalize(rng.choice(["NFC", "NFD", "NFKC", "NFKD"]), padded)


def test_identical_reports_in_any_case_spacing_or_unicode_form_always_get_one_split() -> None:
    rng = random.Random(15)
    rules = [SplitRule(site, fraction) for site in ("site-a", "press-1") for fraction in (0.3, 0.5)]
    splits_seen = set()
    for _ in range(2000):
        text = _report(rng)
        variants = [text, *(_variant(text, rng) for _ in range(4))]
        keys = {content_key("text", v.encode("utf-8")) for v in variants}
        assert len(keys) == 1, variants
        for rule in rules:
            splits = {rule.split_for("text", v.encode("utf-8")) for v in variants}
            assert len(splits) == 1, (rule, variants)
            splits_seen |= splits
    assert splits_seen == {TRAIN, HOLDOUT}  # both sides are used: the rule is not trivially constant


def test_normalising_is_idempotent_and_keeps_what_differs() -> None:
    rng = random.Random(7)
    for _ in range(500):
        text = _variant(_report(rng), rng)
        once = normalise_text(text)
        assert normalise_text(once) == once
        assert once == once.strip() and "  " not in once
    assert normalise_text("  Ｒust\u00a0on\tTHE  ﬁlter ") == "rust on the filter"
    assert normalise_text("STRASSE") == normalise_text("straße")
    assert content_key("text", b"dent on the rim") != content_key("text", b"dent on the rims")


def test_an_image_is_keyed_by_its_stored_bytes() -> None:
    import hashlib

    payload = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert content_key("image", payload) == hashlib.sha256(payload).hexdigest()
    assert content_key("image", payload) != content_key("image", payload + b"\x00")
    # images are not normalised as text: bytes that happen to differ only in case stay apart
    assert content_key("image", b"ABC") != content_key("image", b"abc")


def test_the_share_held_out_follows_the_fraction_and_each_site_splits_its_own_way() -> None:
    keys = [content_key("text", f"report number {i}".encode()) for i in range(4000)]
    site_a, site_b = SplitRule("site-a", 0.3), SplitRule("site-b", 0.3)
    held_a = [site_a.split_of(k) == HOLDOUT for k in keys]
    held_b = [site_b.split_of(k) == HOLDOUT for k in keys]
    assert sum(held_a) / len(keys) == pytest.approx(0.3, abs=0.03)
    assert sum(held_b) / len(keys) == pytest.approx(0.3, abs=0.03)
    agree = sum(a == b for a, b in zip(held_a, held_b, strict=True)) / len(keys)
    assert agree < 0.7  # independent splits agree on about 0.3² + 0.7² = 58% of contents
    assert all(0.0 <= site_a.position(k) < 1.0 for k in keys[:100])
