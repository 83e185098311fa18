#!/usr/bin/env bash
# Headless Chromium for the nearest-page test (Debian's `chromium`). Installs it when missing and
# we are root (CI and the dev machines are); otherwise says what to run.
set -euo pipefail
for b in "${ROBOMIRROR_CHROMIUM:-}" chromium chromium-browser; do
  if [ -n "$b" ] && command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium (headless page test) ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "error: chromium not found; install it (sudo apt-get install chromium) or set ROBOMIRROR_CHROMIUM" >&2
exit 1
