"""Inputs shared by the benchmarks."""

from __future__ import annotations


def long_texts(texts: list[str], count: int) -> list[str]:
    """Join reports until each input is well past 128 tokens, so truncation makes it exactly 128."""
    joined, index = [], 0
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < 200:
            parts.append(texts[index % len(texts)])
            index += 1
        joined.append(" ".join(parts))
    return joined
