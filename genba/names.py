"""Names every part of Genba must agree on: a site provisioned by IT is a site its agent accepts."""

from __future__ import annotations


def is_site_name(name: str) -> bool:
    """ASCII letters, digits, '-' and '_' only (it becomes a folder, a TOML value and a ledger field)."""
    bare = name.replace("-", "").replace("_", "")
    return bool(name) and bare.isascii() and bare.isalnum()
