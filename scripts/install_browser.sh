#!/usr/bin/env bash
# The report page's test renders it in a real headless Chromium: install Debian's when none is
# on PATH. Elsewhere (macOS, a machine without apt-get or root) install Chromium yourself first.
set -euo pipefail
command -v chromium >/dev/null || command -v chromium-browser >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
    echo "no chromium on PATH and no apt-get to install it: install Chromium, then run the tests again" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
