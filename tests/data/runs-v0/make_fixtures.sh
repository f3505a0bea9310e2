#!/usr/bin/env bash
# Writes the run folders of tests/data/runs-v0 with the vaekit checked out in this repository.
# It was run ONCE, at the commit named in README.txt, before the internals were redesigned.
# Do not rerun it on a later commit: the point of these folders is that an older vaekit wrote them.
# Usage (from the repository root): bash tests/data/runs-v0/make_fixtures.sh VAEKIT_COMMAND
set -euo pipefail
VAEKIT=${1:-vaekit}
cd "$(dirname "$0")"
COMMON=(--dataset digits --epochs 2 --latent-dim 4 --hidden 32 --batch-size 64 --lr 3e-3 --seed 0 --device cpu)
train() {  # train MODEL [model options...]
    local model=$1; shift
    $VAEKIT train --model "$model" "${COMMON[@]}" "$@" --out "$model"
    $VAEKIT evaluate "$model" --iw-samples 20 --seed 0 --no-regularity --device cpu
}
train vae
train ae
train beta-vae
train iwae --iw-k 3
train hvae
train vamp --pseudo-inputs 10
train vq-vae --codebook-size 16 --code-dim 2
train cvae
train factor-vae
train beta-tcvae
train dip-vae
train capacity-vae
