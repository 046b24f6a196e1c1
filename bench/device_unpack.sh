#!/usr/bin/env bash
# Join and unpack what bench/gpu_serving.py needs on the GPU device machine (no network there).
#
# One stream is built here: an `xz` tar of onnxruntime-gpu (ort/), the agent's cp312 wheels
# unzipped (site/) and fp16 MiniLM (models/minilm/), followed by a plain tar of the signed
# two-variant bundle (bundle/, it-sign.pem.pub, head.npz). It is split into five equal parts,
# because a device call carries at most 64 MiB; each call copies its part into PARTS_DIR (outside
# the checkout, so it survives between warm calls), and the last one runs this script, which
#   1. checks every part listed in SHA256SUMS (sha256sum format),
#   2. joins them and cuts the stream at STATIC_BYTES (the xz tar's length),
#   3. unpacks both halves into DEST and writes a marker, so a rerun does nothing.
# It prints the PYTHONPATH to use as its only line on stdout; progress goes to stderr:
#   export PYTHONPATH="$(bash bench/device_unpack.sh /tmp/pk /tmp/gpu):$PWD"
set -euo pipefail

parts_dir=${1:?usage: device_unpack.sh PARTS_DIR DEST}
dest=${2:?usage: device_unpack.sh PARTS_DIR DEST}
marker="$dest/.genba-unpacked"

if [[ ! -f "$marker" ]]; then
    (cd "$parts_dir" && sha256sum --check --quiet SHA256SUMS) >&2
    static_bytes=$(cat "$parts_dir/STATIC_BYTES")
    mkdir -p "$dest"
    cat "$parts_dir"/all.part* > "$parts_dir/all.bin"
    head -c "$static_bytes" "$parts_dir/all.bin" | xz -d -T0 | tar -x -C "$dest"
    tail -c "+$((static_bytes + 1))" "$parts_dir/all.bin" | tar -x -C "$dest"
    rm -f "$parts_dir/all.bin"
    touch "$marker"
    echo "unpacked into $dest" >&2
fi
echo "$dest/ort:$dest/site"
