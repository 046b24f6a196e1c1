#!/usr/bin/env bash
# Japanese text in the operator app needs a CJK font; without one Qt draws boxes.
# Installs Debian's fonts-noto-cjk when it is missing and this user may (root, apt); else says how.
set -u
if fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing fonts-noto-cjk (Japanese text in the operator app)" >&2
  if apt-get install -y --no-install-recommends fonts-noto-cjk >/dev/null 2>&1 \
     || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends fonts-noto-cjk >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "warning: no CJK font; Japanese renders as boxes (install Debian's fonts-noto-cjk as root)" >&2
exit 0
