#!/usr/bin/env bash
# The SuperLink's front (IT's server only) is nginx from the operating system's packages: it
# terminates mutual TLS and lets sites reach only the Fleet API. Installs Debian's nginx-light
# when it is missing and this user may (root, apt); else says how. The site PCs do not need it.
set -u
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing nginx-light (the SuperLink's mutual-TLS front)" >&2
  if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1 \
     || { apt-get update >/dev/null 2>&1 \
          && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "error: nginx is missing; 'genba server start' needs it (install Debian's nginx-light as root)" >&2
exit 1
