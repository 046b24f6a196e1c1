"""JSONL input files (``--eval``, ``--calibration``, ``--input``).

One object per line: ``{"text": ..., "label": ...}`` or ``{"image": "path", "label": ...}``,
with an optional ``"group"`` tag. Image paths are relative to the file's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genba.errors import InputFileError, shown


@dataclass(frozen=True)
class Example:
    """One input: text or an image path, with an optional label and group tag."""

    text: str | None = None
    image: Path | None = None
    label: str | None = None
    group: str | None = None
    where: str = field(default="", compare=False)  # "input file F, line N": names it in errors

    @property
    def payload(self) -> str | Path:
        if self.text is not None:
            return self.text
        assert self.image is not None
        return self.image


def read_jsonl(path: Path, role: str = "input", require_labels: bool = False) -> list[Example]:
    """Read and validate a whole file; the first bad line fails it with its line number.

    An image line must name a file that exists, so a missing picture fails the file before
    anything is answered, not halfway through it.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise InputFileError(f"{role} file {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{role} file {path} cannot be read: {exc}") from exc
    examples = [
        _example(line, path, number, role, require_labels)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not examples:
        raise InputFileError(f"{role} file {path} holds no examples (expected JSON lines)")
    return examples


def _example(line: str, path: Path, number: int, role: str, require_labels: bool) -> Example:
    where = f"{role} file {shown(path)}, line {number}"
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{where}: not valid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise InputFileError(f"{where}: not valid JSON (nested too deeply)") from exc
    if not isinstance(record, dict):
        raise InputFileError(f"{where}: expected a JSON object with 'text' or 'image'")
    text, image = record.get("text"), record.get("image")
    if (text is None) == (image is None):
        raise InputFileError(f"{where}: needs exactly one of 'text' or 'image'")
    label, group = record.get("label"), record.get("group")
    if require_labels and label is None:
        raise InputFileError(f"{where}: has no 'label' (evaluation data must be labelled)")
    for name, value in (("text", text), ("image", image), ("label", label), ("group", group)):
        if value is not None and not isinstance(value, str):
            raise InputFileError(f"{where}: '{name}' must be a string")
    image_path = (path.parent / image) if image is not None else None
    if image_path is not None and not _is_file(image_path):
        raise InputFileError(
            f"{where}: image {shown(image_path)} not found (image paths are relative to the file)"
        )
    return Example(text=text, image=image_path, label=label, group=group, where=where)


def _is_file(path: Path) -> bool:
    """Whether ``path`` names a file; a name too long for the file system names none."""
    try:
        return path.is_file()
    except OSError:  # ENAMETOOLONG and the like: nothing can exist there
        return False
