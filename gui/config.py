"""The operator app's settings: which site, which role, which language."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genba.errors import ConfigError

LANGUAGES = ("en", "ja")


@dataclass(frozen=True)
class GuiConfig:
    """``role=None``: the most capable role whose token this user may read (the agent decides what
    that role may do; the app only shows what it offers). ``language=None``: the system locale."""

    data: Path
    role: str | None = None
    language: str | None = None
    timeout_s: float = 10.0
    refresh_s: float = 5.0

    def __post_init__(self) -> None:
        problems = []
        if self.language is not None and self.language not in LANGUAGES:
            problems.append(f"language must be one of {', '.join(LANGUAGES)}, not {self.language!r}")
        if self.timeout_s <= 0 or self.refresh_s <= 0:
            problems.append("timeout_s and refresh_s must be > 0")
        if problems:
            raise ConfigError(problems)
