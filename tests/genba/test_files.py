"""Files replaced in one step: whole or not at all, never a temporary file left behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from genba.files import replace_atomically, write_json_atomically


def test_a_json_file_is_replaced_whole_with_the_given_permissions(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    path.write_text('{"old": true}', encoding="utf-8")
    write_json_atomically(path, {"sites": {"site-a": {"state": "active"}}}, mode=0o600)
    assert json.loads(path.read_text(encoding="utf-8")) == {"sites": {"site-a": {"state": "active"}}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["sites.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "crl.pem"
    path.write_bytes(b"the old list")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        replace_atomically(path, b"the new list")
    assert path.read_bytes() == b"the old list"
    assert os.listdir(tmp_path) == ["crl.pem"]


def test_a_document_json_cannot_write_replaces_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nodes.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(TypeError):
        write_json_atomically(path, {"when": object()})
    assert path.read_text(encoding="utf-8") == "{}" and os.listdir(tmp_path) == ["nodes.json"]
