#!/usr/bin/env bash
# What the test suite needs from the operating system besides Python: strace, with which
# tests/edge_agent/service/test_agent_durability.py sees the store's flushes to the disk. Installs
# Debian's strace when it is missing and this user may (root, apt); else says how.
set -u
if command -v strace >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing strace (the durability tests watch the store's flushes with it)" >&2
  if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends strace >/dev/null 2>&1 \
     || { apt-get update >/dev/null 2>&1 \
          && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends strace >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "error: strace is missing; the test suite needs it (install Debian's strace as root)" >&2
exit 1
