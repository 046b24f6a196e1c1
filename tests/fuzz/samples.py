"""Valid inputs the fuzz targets start from: a signed bundle, pictures in several formats.

Each is built once per process, through Genba's own writers, under the harness's scratch folder.
"""

from __future__ import annotations

import functools
import io
import random
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba_fuzzing import scratch_root
from hypothesis import strategies as st

from genba import bundle, keys

SEED = 19
LABELS = ["ok", "scratch", "dent"]


@functools.cache
def signing_key() -> Any:
    return keys.generate_signing_key()


def trusted() -> list[Any]:
    return [signing_key().public_key()]


def _graphs(backbone: str, precision: str) -> dict[str, Any]:
    return {
        "backbone": {"file": backbone, "outputs": ["embedding"], "precision": precision},
        "head": {"file": "head.onnx", "inputs": ["embedding"], "outputs": ["logits"], "precision": "fp32"},
    }


def manifest_fields() -> dict[str, Any]:
    """A manifest shaped like an exported classifier's: two variants, lineage, statistics."""
    precision = {"backbone": "int8", "variant": "int8-per-channel", "details": {"per_channel": True}}
    return {
        "model": {"name": "fuzz-model", "version": 3, "created_at": "2026-12-06T00:00:00+00:00"},
        "task": "text-classification",
        "labels": LABELS,
        "input": {
            "kind": "text",
            "max_length": 128,
            "pad_id": 0,
            "tokenizer": "preprocess/tokenizer.json",
            "graph_inputs": ["input_ids", "attention_mask"],
        },
        "graphs": _graphs("backbone.onnx", "int8"),
        "precision": precision,
        "variants": {
            "cpu": {"graphs": _graphs("backbone.onnx", "int8"), "precision": precision, "provider": "cpu"},
            "cuda": {"graphs": _graphs("backbone-cuda.onnx", "fp16"), "provider": "cuda", "validation": {}},
        },
        "opset": 18,
        "runtime": {"genba": "0.1.0", "onnxruntime-gpu": "1.31.1"},
        "validation": {"max_abs_diff": 0.0002, "accuracy": 0.8},
        "reference_stats": {"count": 64, "scores": {"mean": [0.1, 0.2, 0.7]}},
        "lineage": {
            "parent": {"name": "fuzz-model", "version": 2, "manifest_sha256": "ab" * 32},
            "federated_run": "run-1",
            "round": 3,
            "rollback": False,
            "source": {"library": "transformers"},
        },
    }


def _payload() -> dict[str, bytes]:
    noise = random.Random(SEED)
    return {
        "backbone.onnx": noise.randbytes(1500),
        "backbone-cuda.onnx": noise.randbytes(900),
        "head.onnx": noise.randbytes(200),
        "preprocess/tokenizer.json": b'{"version": "1.0", "model": {"type": "WordLevel"}}',
    }


@functools.cache
def valid_bundle() -> Path:
    """A signed bundle directory that verifies against :func:`trusted`."""
    with bundle.BundleWriter(scratch_root() / "sample-bundle") as writer:
        for name, data in _payload().items():
            (writer.root / name).parent.mkdir(parents=True, exist_ok=True)
            (writer.root / name).write_bytes(data)
        path = writer.commit(bundle.draft_manifest(manifest_fields()), signing_key())
    bundle.verify_directory(path, trusted())
    return path


@functools.cache
def bundle_files() -> dict[str, bytes]:
    """The valid bundle's files, by relative path, manifest and signature included."""
    root = valid_bundle()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sign(manifest_bytes: bytes) -> bytes:
    return keys.sign(signing_key(), manifest_bytes)


# ---------------------------------------------------------------------------- pictures

#: (format, mode) pairs Pillow writes: the decoders a site meets, in the modes they carry.
PICTURES = (
    ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "I;16"), ("PNG", "1"),
    ("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"), ("GIF", "P"), ("BMP", "RGB"), ("BMP", "1"),
    ("TIFF", "RGB"), ("TIFF", "I;16"), ("TIFF", "I;16B"), ("TIFF", "F"), ("TIFF", "LAB"), ("TIFF", "YCbCr"),
    ("TIFF", "CMYK"), ("TIFF", "LA"), ("TIFF", "PA"), ("WEBP", "RGB"), ("ICO", "RGBA"), ("PPM", "RGB"),
    ("TGA", "RGBA"), ("PCX", "RGB"), ("SGI", "RGB"), ("QOI", "RGB"), ("DDS", "RGBA"), ("JPEG2000", "RGB"),
    ("IM", "RGB"), ("MSP", "1"), ("SPIDER", "F"), ("XBM", "1"), ("ICNS", "RGBA"),
)  # fmt: skip


@functools.cache
def picture(kind: str, mode: str, width: int = 12, height: int = 9) -> bytes:
    """A small seeded picture saved as ``kind`` in ``mode``: noise, so every decoder works."""
    from PIL import Image

    noise = random.Random(f"{kind}{mode}{width}{height}")
    rgb = Image.frombytes("RGB", (width, height), noise.randbytes(width * height * 3))
    image = rgb.convert(mode) if mode not in {"I;16", "I;16B", "F"} else rgb.convert("L").convert(mode)
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


# ---------------------------------------------------------------------------- archives

#: Stands for the sandbox's absolute path in a member name, filled in when the archive is written.
SANDBOX = "<sandbox>"
#: Member names an attacker would try: escapes, absolute paths, odd spellings, clashes.
HOSTILE_NAMES = (
    "../escaped", "a/../../escaped", f"{SANDBOX}/escaped", "\\escaped", "C:escaped", "..\\escaped",
    "", ".", "./", "a/", "a//b", "a/./b", "./manifest.json", "manifest.json/inner", "head.onnx/x",
    "a\nb", "preprocess", "preprocess/tokenizer.json/x", "é/ü.onnx", "x" * 300,
)  # fmt: skip
KINDS = ("file", "dir", "symlink", "hardlink", "fifo", "chardev")


@dataclass(frozen=True)
class Member:
    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""
    pax: tuple[tuple[str, str], ...] = ()  # PAX records written into a tar member's header


#: PAX records a tar reader applies over the plain header: sizes, names, sparse maps.
PAX_RECORDS = (
    ("size", "-1"), ("size", "99999999999999"), ("size", "abc"), ("size", "0"), ("path", "../escaped"),
    ("path", f"{SANDBOX}/escaped"), ("path", "a\x00b"), ("linkpath", "/etc/passwd"), ("mtime", "nan"),
    ("uid", "-5"), ("GNU.sparse.map", "0,10,99999,5"), ("GNU.sparse.size", "100"), ("GNU.sparse.major", "1"),
    ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", "1000000"), ("GNU.sparse.name", "../escaped"),
    ("hdrcharset", "BINARY"), ("comment", "x" * 1000),
)  # fmt: skip


def bundle_members() -> list[Member]:
    return [Member(name, "file", data) for name, data in bundle_files().items()]


def _named(text: str, sandbox: Path) -> str:
    return text.replace(SANDBOX, str(sandbox))


@st.composite
def member_edits(draw: st.DrawFn, members: list[Member], max_edits: int = 3) -> list[Member]:
    """``members`` with a few renamed to hostile names, retyped, duplicated, dropped or added."""
    result = list(members)
    for _ in range(draw(st.integers(0, max_edits))):
        edit = draw(st.sampled_from(("rename", "retype", "duplicate", "drop", "add", "pax")))
        hostile = draw(st.sampled_from(HOSTILE_NAMES) | st.text(min_size=1, max_size=12))
        if edit == "add" or not result:
            link = draw(st.sampled_from(("/etc/passwd", "../escaped", "head.onnx", f"{SANDBOX}/escaped")))
            result.append(Member(hostile, draw(st.sampled_from(KINDS)), draw(st.binary(max_size=64)), link))
            continue
        index = draw(st.integers(0, len(result) - 1))
        chosen = result[index]
        if edit == "rename":
            result[index] = Member(hostile, chosen.kind, chosen.data, chosen.link)
        elif edit == "retype":
            result[index] = Member(chosen.name, draw(st.sampled_from(KINDS)), chosen.data, "/etc/passwd")
        elif edit == "duplicate":
            result.insert(draw(st.integers(0, len(result))), chosen)
        elif edit == "pax":
            records = tuple(draw(st.lists(st.sampled_from(PAX_RECORDS), min_size=1, max_size=3)))
            result[index] = Member(chosen.name, chosen.kind, chosen.data, chosen.link, records)
        else:
            del result[index]
    return result


def write_tar(members: list[Member], out: Path, sandbox: Path) -> None:
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chardev": tarfile.CHRTYPE}  # fmt: skip
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(_named(member.name, sandbox))
            info.type = types[member.kind]
            info.linkname = _named(member.link, sandbox)
            data = member.data if member.kind == "file" else b""
            info.size = len(data)
            info.pax_headers = {key: _named(value, sandbox) for key, value in member.pax}
            tar.addfile(info, io.BytesIO(data) if data else None)


def write_zip(members: list[Member], out: Path, sandbox: Path) -> None:
    modes = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "hardlink": stat.S_IFREG,
             "fifo": stat.S_IFIFO, "chardev": stat.S_IFCHR}  # fmt: skip
    with zipfile.ZipFile(out, "w") as zf:
        for member in members:
            name = _named(member.name, sandbox)
            if member.kind == "dir" and not name.endswith("/"):
                name += "/"
            info = zipfile.ZipInfo(name or "_")
            info.external_attr = (modes[member.kind] | 0o644) << 16
            data = _named(member.link, sandbox).encode() if member.kind == "symlink" else member.data
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names are what is being tried
                zf.writestr(info, data)


def mutate_seeded(data: bytes, seed: int) -> bytes:
    """A few byte edits chosen by ``seed``: for data only known once written (a whole archive)."""
    noise = random.Random(seed)
    edited = bytearray(data)
    for _ in range(noise.randint(1, 4)):
        at = noise.randrange(len(edited) + 1)
        edit = noise.choice(("flip", "truncate", "overwrite", "delete"))
        if edit == "flip" and at < len(edited):
            edited[at] ^= 1 << noise.randrange(8)
        elif edit == "truncate":
            del edited[at:]
        elif edit == "overwrite":
            edited[at : at + 4] = noise.randbytes(4)
        else:
            del edited[at : at + noise.randint(1, 512)]
    return bytes(edited)


# ---------------------------------------------------------------------------- PNG chunks

#: Chunks a decoder parses, APNG's animation chunks among them.
CHUNK_TYPES = (
    b"IHDR", b"PLTE", b"tRNS", b"iCCP", b"zTXt", b"iTXt", b"tEXt", b"acTL", b"fcTL", b"fdAT", b"eXIf",
    b"pHYs", b"gAMA", b"sRGB", b"cHRM", b"IDAT", b"IEND", b"sBIT", b"bKGD", b"cICP",
)  # fmt: skip
FIELDS = (0, 1, 2, 3, 4, 6, 8, 16, 255, 65535, 2**31 - 1, 2**32 - 1)


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at + 8 <= len(png):
        (length,), kind = struct.unpack(">I", png[at : at + 4]), png[at + 4 : at + 8]
        chunks.append((kind, png[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_from(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of ``chunks``, each with its length and checksum right, so a decoder believes it."""
    out = [b"\\x89PNG\\r\\n\\x1a\\n"]
    for kind, data in chunks:
        out += [struct.pack(">I", len(data)), kind, data, struct.pack(">I", zlib.crc32(kind + data))]
    return b"".join(out)


@st.composite
def chunk_data(draw: st.DrawFn, kind: bytes) -> bytes:
    """Data shaped like ``kind``'s fields (sizes, offsets, counts), or random bytes."""
    fields = st.sampled_from(FIELDS)
    if kind == b"IHDR":
        size = st.sampled_from((0, 1, 12, 6000, 15000, 2**31 - 1))
        return struct.pack(
            ">IIBBBBB", draw(size), draw(size), draw(fields) & 255, draw(fields) & 255, 0, 0, draw(fields) & 1
        )
    if kind == b"fcTL":
        return struct.pack(
            ">IIIIIHHBB",
            *(draw(fields) for _ in range(5)),
            *(draw(fields) & 0xFFFF for _ in range(2)),
            draw(fields) & 255,
            draw(fields) & 255,
        )
    if kind == b"acTL":
        return struct.pack(">II", draw(fields), draw(fields))
    if kind in {b"iCCP", b"zTXt"}:
        return b"name\\x00\\x00" + zlib.compress(draw(st.binary(max_size=64)))
    return draw(st.binary(max_size=64))


@st.composite
def mutated_png(draw: st.DrawFn, png: bytes) -> bytes:
    """``png`` with chunks changed, inserted, dropped or repeated, every checksum recomputed."""
    chunks = png_chunks(png)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chunks)))
        kind = draw(st.sampled_from(CHUNK_TYPES))
        edit = draw(st.sampled_from(("insert", "replace", "drop", "repeat")))
        if edit == "insert" or not chunks:
            chunks.insert(at, (kind, draw(chunk_data(kind))))
            continue
        at = min(at, len(chunks) - 1)
        if edit == "replace":
            chunks[at] = (chunks[at][0], draw(chunk_data(chunks[at][0])))
        elif edit == "drop":
            del chunks[at]
        else:
            chunks.insert(at, chunks[at])
    return png_from(chunks)


#: Header fields of a tar member (offset, width) a reader trusts, and values that test it.
TAR_FIELDS = {
    "mode": (100, 8), "uid": (108, 8), "size": (124, 12), "mtime": (136, 12), "type": (156, 1),
    "linkname": (157, 100), "magic": (257, 8), "devmajor": (329, 8), "prefix": (345, 155),
}  # fmt: skip
#: -2**40 in a size field's base-256 form: reading on seeks before the archive's start.
NEGATIVE_SIZE = (2**96 - 2**40).to_bytes(12)
TAR_VALUES = (
    b"", b"7777777", b"77777777777", b"-1", b"\x80" + b"\xff" * 11, b"\xff" * 12, NEGATIVE_SIZE, b"0",
    b"K", b"L", b"S", b"x", b"g", b"1", b"2", b"3", b"4", b"6", b"../escaped", b"ustar  \x00", b"GNUtar ",
)  # fmt: skip


def mutate_tar_headers(data: bytes, seed: int) -> bytes:
    """``data`` (a tar) with a header field of a member or two changed, its checksum made right."""
    noise = random.Random(seed)
    edited = bytearray(data)
    headers = tar_headers(data)
    for at in noise.sample(headers, min(len(headers), noise.randint(1, 2))):
        edited = bytearray(
            with_tar_field(bytes(edited), at, noise.choice(sorted(TAR_FIELDS)), noise.choice(TAR_VALUES))
        )
    return bytes(edited)


def with_tar_field(data: bytes, at: int, field: str, value: bytes) -> bytes:
    """``data`` (a tar) with ``field`` of the header at byte ``at`` set to ``value``, checksum fixed."""
    edited = bytearray(data)
    offset, width = TAR_FIELDS[field]
    edited[at + offset : at + offset + width] = value[:width].ljust(width, b"\x00")
    edited[at + 148 : at + 156] = b" " * 8
    edited[at + 148 : at + 156] = b"%06o\x00 " % sum(edited[at : at + 512])
    return bytes(edited)


def tar_headers(data: bytes) -> list[int]:
    """Where each header block of the tar ``data`` starts (blocks whose checksum is right)."""
    return [at for at in range(0, len(data) - 511, 512) if _is_header(data[at : at + 512])]


def _is_header(block: bytes) -> bool:
    try:
        return int(block[148:156].split(b"\x00")[0].strip() or b"-1", 8) == sum(block[:148]) + 256 + sum(
            block[156:]
        )
    except ValueError:
        return False


#: Fields of a zip's records (signature, then offset and width of each) a reader trusts.
ZIP_FIELDS = {
    b"PK\x01\x02": ((6, 2), (8, 2), (10, 2), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (38, 4), (42, 4)),
    b"PK\x03\x04": ((6, 2), (8, 2), (18, 4), (22, 4), (26, 2), (28, 2)),
    b"PK\x05\x06": ((8, 2), (10, 2), (12, 4), (16, 4), (20, 2)),
}  # fmt: skip
ZIP_VALUES = (0, 1, 8, 9, 12, 14, 99, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate_zip_records(data: bytes, seed: int) -> bytes:
    """``data`` (a zip) with a field or two of its directory, file headers or end record changed."""
    noise = random.Random(seed)
    edited = bytearray(data)
    records = [(at, kind) for kind in ZIP_FIELDS for at in _find_all(data, kind)]
    for at, kind in noise.sample(records, min(len(records), noise.randint(1, 2))):
        offset, width = noise.choice(ZIP_FIELDS[kind])
        value = noise.choice(ZIP_VALUES) & (1 << 8 * width) - 1
        edited[at + offset : at + offset + width] = value.to_bytes(width, "little")
    return bytes(edited)


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def damaged(data: bytes, seed: int, tar: bool) -> bytes:
    """Half the seeds change a header's fields (a tar's checksum made right), the rest the bytes."""
    if seed % 2:
        return mutate_seeded(data, seed)
    return mutate_tar_headers(data, seed) if tar else mutate_zip_records(data, seed)
