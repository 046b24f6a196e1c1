#!/usr/bin/env bash
# Install Genba from an offline kit into its own virtual environment.
#
#   install.sh [--wheelhouse DIR] [--prefix DIR] [--role ROLE] [--python PYTHON] [--sums-sha256 HEX]
#
# --wheelhouse defaults to the folder of this script (or its wheelhouse/ in a USB kit), --role to
# the one role the wheelhouse holds.
#
# 1. Checks the kit first: SHA256SUMS beside this script (a USB kit) and the wheelhouse's own; any
#    file missing, added, linked or changed stops the install before anything is written.
# 2. Creates a virtual environment at PREFIX (default /opt/genba) with a Python 3.11 or 3.12 of
#    this machine, never touching that Python's own packages.
# 3. pip install --no-index --find-links WHEELHOUSE --require-hashes -r requirements-ROLE.txt:
#    no index, no network, every wheel's sha256 pinned; then pip itself is removed from PREFIX.
# A failure at any step removes PREFIX again (the prefix must not exist beforehand), so nothing
# is left half-installed; errors are one line, and the exit status is non-zero.
set -euo pipefail
umask 022

PROG=install.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PREFIX=/opt/genba
ROLE=
WHEELHOUSE=
PYTHON=
SUMS_SHA256=
INCOMPLETE=.genba-install-incomplete
CREATED=
LOG=

# One line on stderr, exit 1; once the prefix was created, it goes again and the line says so.
fail() {
    local message="$PROG: error: $*"
    if [ -n "$CREATED" ]; then
        rm -rf -- "$PREFIX"
        CREATED=
        message+="; nothing installed, $PREFIX removed${LOG:+ (log: $LOG)}"
    fi
    echo "$message" >&2
    exit 1
}

usage() {
    sed -n '4p' "${BASH_SOURCE[0]}" | sed 's/^#   //'
}

parse_arguments() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder}; shift 2 ;;
            --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
            --role) ROLE=${2:?--role needs a role}; shift 2 ;;
            --python) PYTHON=${2:?--python needs an interpreter}; shift 2 ;;
            --sums-sha256) SUMS_SHA256=${2:?--sums-sha256 needs a hex digest}; shift 2 ;;
            -h|--help) usage; exit 0 ;;
            *) fail "unknown argument '$1' (usage: $(usage))" ;;
        esac
    done
    if [ -z "$WHEELHOUSE" ]; then
        if [ -f "$SCRIPT_DIR/wheelhouse.json" ]; then WHEELHOUSE=$SCRIPT_DIR
        elif [ -d "$SCRIPT_DIR/wheelhouse" ]; then WHEELHOUSE=$SCRIPT_DIR/wheelhouse
        else fail "no wheelhouse beside $SCRIPT_DIR; pass --wheelhouse DIR"
        fi
    fi
    [ -d "$WHEELHOUSE" ] || fail "wheelhouse $WHEELHOUSE is not a folder; pass --wheelhouse DIR"
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd -P)
    case "$PREFIX" in /*) ;; *) PREFIX=$PWD/$PREFIX ;; esac
    PREFIX=${PREFIX%/}
}

# verify_sums ROOT: every file under ROOT is listed in ROOT/SHA256SUMS with its sha256, and no
# listed file is missing; links, absolute paths and '..' are refused.
verify_sums() {
    local root=$1 sums=$1/SHA256SUMS line digest path listed present
    [ -f "$sums" ] || fail "$sums is missing; copy the whole kit again from its source"
    listed=$(mktemp) present=$(mktemp)
    while IFS= read -r line || [ -n "$line" ]; do
        digest=${line%%  *} path=${line#*  }
        if ! [[ "$digest" =~ ^[0-9a-f]{64}$ ]] || [ "$path" = "$line" ] || [[ "$path" == /* ]] \
            || [[ "/$path/" == */../* ]]; then
            rm -f "$listed" "$present"; fail "$sums has a malformed line; the kit is damaged"
        fi
        printf '%s\n' "$path" >> "$listed"
    done < "$sums"
    if [ -n "$(cd "$root" && find . -type l -print -quit)" ]; then
        rm -f "$listed" "$present"; fail "$root holds a link; a kit holds plain files only"
    fi
    (cd "$root" && find . -type f ! -path ./SHA256SUMS -printf '%P\n') | LC_ALL=C sort > "$present"
    local unlisted missing
    unlisted=$(LC_ALL=C sort "$listed" | LC_ALL=C comm -13 - "$present" | head -n 1)
    missing=$(LC_ALL=C sort "$listed" | LC_ALL=C comm -23 - "$present" | head -n 1)
    rm -f "$listed" "$present"
    [ -z "$unlisted" ] || fail "$root/$unlisted is not listed in SHA256SUMS; the kit was altered, copy it again"
    [ -z "$missing" ] || fail "$root/$missing is listed in SHA256SUMS but missing; copy the kit again"
    local failed
    failed=$(cd "$root" && sha256sum --check --strict --quiet SHA256SUMS 2>/dev/null | head -n 1 || true)
    if [ -n "$failed" ] || ! (cd "$root" && sha256sum --check --strict --status SHA256SUMS 2>/dev/null); then
        fail "$root/${failed%%: *} does not match SHA256SUMS (tampered or damaged kit); copy the kit again"
    fi
}

verify_kit() {
    local kit_sums=$SCRIPT_DIR/SHA256SUMS
    if [ -n "$SUMS_SHA256" ]; then
        [ -f "$kit_sums" ] || kit_sums=$WHEELHOUSE/SHA256SUMS
        [ "$(sha256sum < "$kit_sums" | cut -d' ' -f1)" = "$SUMS_SHA256" ] \
            || fail "$kit_sums is not the checksum file IT announced (--sums-sha256 differs); do not install this kit"
    fi
    if [ -f "$SCRIPT_DIR/SHA256SUMS" ] && [ "$SCRIPT_DIR" != "$WHEELHOUSE" ]; then
        verify_sums "$SCRIPT_DIR"
    fi
    verify_sums "$WHEELHOUSE"
    local held
    held=$(cd "$WHEELHOUSE" && ls requirements-*.txt 2>/dev/null | sed 's/^requirements-//; s/\.txt$//' | paste -sd' ')
    if [ -z "$ROLE" ]; then
        case "$held" in
            *' '*|'') fail "pass --role: the wheelhouse holds requirements for ${held:-no role}" ;;
            *) ROLE=$held ;;
        esac
    fi
    REQUIREMENTS=$WHEELHOUSE/requirements-${ROLE//,/+}.txt
    if [ ! -f "$REQUIREMENTS" ]; then
        fail "the wheelhouse holds no requirements for role '$ROLE' (it holds: ${held:-none}); build one with make wheelhouse ROLE=$ROLE"
    fi
}

# A Python the wheelhouse was built for (its wheelhouse.json "pythons"): --python, else
# python3.12, python3.11, python3, the first that fits.
choose_python() {
    local candidate fits='import json, sys
wanted = json.load(open(sys.argv[1]))["pythons"]
print(" ".join(wanted))
sys.exit(0 if "%d.%d" % sys.version_info[:2] in wanted else 1)'
    local wanted=
    for candidate in ${PYTHON:-python3.12 python3.11 python3}; do
        command -v "$candidate" > /dev/null 2>&1 || continue
        if wanted=$("$candidate" -I -c "$fits" "$WHEELHOUSE/wheelhouse.json" 2>/dev/null); then
            PYTHON=$(command -v "$candidate")
            return
        fi
    done
    fail "no Python ${wanted:-this wheelhouse was built for} found${PYTHON:+ (--python $PYTHON)}; install one, or pass --python PATH"
}

prepare_prefix() {
    if [ -e "$PREFIX" ] || [ -L "$PREFIX" ]; then
        if [ -f "$PREFIX/$INCOMPLETE" ]; then
            echo "$PROG: removing $PREFIX, left by an interrupted install" >&2
            rm -rf -- "$PREFIX"
        elif [ -d "$PREFIX" ] && [ -z "$(ls -A "$PREFIX")" ]; then
            rmdir -- "$PREFIX"
        else
            fail "$PREFIX already exists; remove it first (an upgrade: docs/INSTALL.md, section Upgrade)"
        fi
    fi
    mkdir -p -- "$(dirname "$PREFIX")"
    CREATED=1
    mkdir -- "$PREFIX"
    : > "$PREFIX/$INCOMPLETE"
}

# An unexpected failure (set -e) or an interrupt: the prefix goes, with one line.
cleanup() {
    local status=$?
    if [ "$status" -ne 0 ] && [ -n "$CREATED" ]; then
        rm -rf -- "$PREFIX"
        echo "$PROG: error: stopped (status $status); nothing installed, $PREFIX removed${LOG:+ (log: $LOG)}" >&2
    elif [ -n "$LOG" ] && [ "$status" -eq 0 ]; then
        rm -f -- "$LOG"
    fi
    exit "$status"
}

# pip (and the venv's ensurepip, which runs pip) sees only the wheelhouse: no configuration file,
# no PIP_* setting, no cache, no index; and the system's PATH only (pip asks rustc for its version,
# and a user's rustup would then write into HOME). No PYTHONPATH or PYTHONHOME either: another
# environment's packages on it would satisfy the requirements there and leave the prefix empty.
isolated() {
    local name
    for name in $(compgen -e); do
        case "$name" in PIP_*) unset "$name" ;; esac
    done
    env -u PYTHONPATH -u PYTHONHOME PATH="$PREFIX/bin:/usr/local/bin:/usr/bin:/bin" PIP_CONFIG_FILE=/dev/null \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1 PYTHONNOUSERSITE=1 "$@"
}

run_pip() {
    isolated "$PREFIX/bin/python" -m pip "$@"
}

# The line of pip's log that says why: the wheel whose hash differs, else pip's first error.
pip_reason() {
    local wheel
    wheel=$(grep -A 1 'DO NOT MATCH THE HASHES' "$LOG" | sed -n '2s/^ *\([^ ]*\) from .*/\1/p')
    if [ -n "$wheel" ]; then
        echo "the wheel of $wheel does not match its --hash in $(basename "$REQUIREMENTS") (tampered or wrong wheel)"
    else
        grep -m 1 '^ERROR' "$LOG" | sed 's/^ERROR: //' || tail -n 1 "$LOG"
    fi
}

install_genba() {
    isolated "$PYTHON" -m venv "$PREFIX" > /dev/null 2>&1 || fail "$PYTHON could not create a virtual environment at $PREFIX (Debian: apt install python3-venv)"
    LOG=$(mktemp -t genba-install.XXXXXX)
    if ! run_pip install --no-index --find-links "$WHEELHOUSE" --only-binary=:all: --require-hashes \
        --no-cache-dir -r "$REQUIREMENTS" > "$LOG" 2>&1; then
        fail "pip refused the wheelhouse: $(pip_reason)"
    fi
    run_pip check >> "$LOG" 2>&1 || fail "the installed packages do not fit together ($(tail -n 1 "$LOG"))"
    # An upgrade installs a new kit into a fresh prefix (docs/INSTALL.md, Upgrade): the environment
    # keeps no installer of its own, so nothing adds packages to it later, and it is smaller.
    run_pip uninstall --yes pip setuptools >> "$LOG" 2>&1 || fail "could not remove pip from $PREFIX"
    isolated "$PREFIX/bin/genba" --help > /dev/null 2>> "$LOG" || fail "$PREFIX/bin/genba --help failed after the install"
}

main() {
    parse_arguments "$@"
    verify_kit
    choose_python
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    prepare_prefix
    install_genba
    rm -f -- "$PREFIX/$INCOMPLETE"
    local version
    version=$("$PREFIX/bin/python" -c 'import importlib.metadata as m; print(m.version("genba"))')
    echo "installed genba $version (role $ROLE) into $PREFIX; run $PREFIX/bin/genba --help"
}

main "$@"
