#!/usr/bin/env bash
# The main job: install vaekit, train the default VAE on Fashion-MNIST, evaluate it, write its report.
# Extra arguments go to `vaekit train` (e.g. --epochs 20 --arch conv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
run="${VAEKIT_RUN:-runs/fashion-mnist-vae}"
.venv/bin/vaekit train --dataset fashion-mnist --model vae --out "$run" --overwrite "$@"
.venv/bin/vaekit evaluate "$run"
.venv/bin/vaekit report "$run"
echo
echo "run folder: $root/$run  (config.json, metrics.jsonl, checkpoints/, eval.json, report.html)"
