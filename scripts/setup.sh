#!/usr/bin/env bash
# Create .venv and install vaekit with the exact versions in constraints.txt. Safe to run again.
# Sourced or run by scripts/main.sh and scripts/test.sh; needs Python >= 3.10 as `python3`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first and exactly pinned: a looser request would let pip pick a newer CUDA build.
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0"
# The test extras, tables, and the optional extras whose tests run with the real libraries (tracking, export).
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,tables,tracking,export]"

# Fashion-MNIST from Debian's package where apt is usable, so the main job needs no internet.
# Elsewhere vaekit downloads it on first use (with checksums) into ~/.cache/vaekit.
if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ]; then
    { $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; } \
      || echo "setup: could not install dataset-fashion-mnist with apt; vaekit will download Fashion-MNIST instead" >&2
  fi
fi

# The browser tests drive Debian's chromium through Playwright (never a browser Playwright
# downloads). Without it they are skipped with a reason; CI machines are root and get it here.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ]; then
    { $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; } \
      || echo "setup: could not install chromium with apt; the browser tests will be skipped" >&2
  fi
fi
