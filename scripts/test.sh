#!/usr/bin/env bash
# Install vaekit with its test dependencies and run the whole test suite (slow tests included).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
