"""Records reference.json in each fixture folder: what the vaekit that wrote the folder computes from it.

Run ONCE, at the commit named in README.txt, right after make_fixtures.sh. Do not rerun it on a later
commit: tests/test_old_runs.py checks today's vaekit against these numbers.

    PYTHONPATH=src python tests/data/runs-v0/record_reference.py

Per folder it stores the inputs (the first 4 test digits of `digits`, with their labels), the model's
outputs on them, and the metrics line of a third epoch written by `vaekit train --resume RUN --epochs 3`
on a scratch copy. The evaluation reference is the eval.json that `vaekit evaluate` wrote
(`--iw-samples 20 --seed 0 --no-regularity`), kept in the folder.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import vaekit

HERE = Path(__file__).resolve().parent
N_INPUTS = 4


def outputs(model, x, y):
    condition = {"y": y} if getattr(model, "conditional", False) else {}
    with torch.no_grad():
        posterior = model.encode(x, **condition)
        mean = posterior.mode()
        result = {"posterior_mean": mean.tolist(), "decoded": model.decode(mean, **condition).tolist()}
        if model.variational:
            result["posterior_std"] = posterior.std.tolist()
        if not model.standard_prior and getattr(model, "codebook", None) is not None:
            # VQ-VAE: the chain prior's most likely codes (temperature -> 0 makes the draw the argmax,
            # whatever the random stream), decoded: it depends on the fitted prior buffers only.
            modes = [model.sample_prior(N_INPUTS, generator=torch.Generator().manual_seed(s), temperature=1e-3)
                     for s in (0, 1)]
            assert torch.equal(modes[0], modes[1]), "the prior's mode is not unique"
            result["prior_mode_decoded"] = model.decode(modes[0]).tolist()
    return result


def main() -> None:
    data = vaekit.load_dataset("digits")
    x = torch.as_tensor(data.test.x[:N_INPUTS])
    y = torch.as_tensor(data.test.y[:N_INPUTS]).long()
    for folder in sorted(p for p in HERE.iterdir() if (p / "run.json").is_file()):
        model = vaekit.load(folder)
        reference = {"inputs": x.tolist(), "labels": y.tolist(), "model": model.config.model}
        reference.update(outputs(model, x, y))
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / folder.name
            shutil.copytree(folder, copy)
            subprocess.run([sys.executable, "-m", "vaekit", "train", "--resume", str(copy), "--epochs", "3"],
                           check=True, capture_output=True)
            lines = (copy / "metrics.jsonl").read_text().splitlines()
            assert len(lines) == 3
            reference["resumed_epoch_3"] = json.loads(lines[2])
        (folder / "reference.json").write_text(json.dumps(reference) + "\n")
        print(folder.name, "recorded")


if __name__ == "__main__":
    main()
