from __future__ import annotations

import stat
from pathlib import Path

import pytest

from genba import keys
from genba.errors import KeyFileError, OutputPathError, SignatureError


def test_key_pair_is_written_with_a_private_mode(tmp_path: Path) -> None:
    private, public = keys.write_key_pair(keys.generate_signing_key(), tmp_path / "k.pem")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.name == "k.pem.pub"
    assert keys.key_id(keys.load_public_key(public)) == keys.key_id(
        keys.load_private_key(private).public_key()
    )


def test_existing_key_files_are_never_overwritten(tmp_path: Path) -> None:
    keys.write_key_pair(keys.generate_signing_key(), tmp_path / "k.pem")
    before = (tmp_path / "k.pem").read_bytes()
    with pytest.raises(OutputPathError, match="already exists"):
        keys.write_key_pair(keys.generate_signing_key(), tmp_path / "k.pem")
    assert (tmp_path / "k.pem").read_bytes() == before


def test_public_key_given_as_private_is_a_clear_error(tmp_path: Path) -> None:
    _, public = keys.write_key_pair(keys.generate_signing_key(), tmp_path / "k.pem")
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        keys.load_private_key(public)
    with pytest.raises(KeyFileError, match="not found"):
        keys.load_public_key(tmp_path / "missing.pub")


def test_signature_from_an_untrusted_key_is_invalid() -> None:
    signer, stranger = keys.generate_signing_key(), keys.generate_signing_key()
    signature = signer.sign(b"manifest")
    assert keys.verify_signature(b"manifest", signature, [stranger.public_key(), signer.public_key()], None)
    with pytest.raises(SignatureError, match="invalid"):
        keys.verify_signature(b"manifest", signature, [stranger.public_key()], None)
    with pytest.raises(SignatureError):
        keys.verify_signature(b"manifesT", signature, [signer.public_key()], None)
