"""``vaekit bench``: vaekit against a hand-written PyTorch loop, on this machine (see vaekit.bench)."""
from __future__ import annotations

import sys
from pathlib import Path


def register(commands) -> None:
    p = commands.add_parser(
        "bench", help="time vaekit against a hand-written PyTorch loop on this machine",
        description="Training images/s, importance-weighted evaluation speed, peak memory and the share of the "
                    "measured fp32 matmul rate, for vaekit and a plain pytorch/examples-style loop of the same "
                    "networks (MLP 784-512-16 and the default conv VAE), interleaved, medians reported; and the "
                    "K = 1000 NLL of the test set against its FLOP lower bound. Needs Fashion-MNIST (or --dataset "
                    "with 28x28 grey images).")
    p.add_argument("--only", default="mlp,conv", metavar="MODELS", help="comma-separated: mlp, conv (default both)")
    p.add_argument("--parts", default="train,eval,memory,nll", metavar="PARTS",
                   help="comma-separated: train, eval, memory, nll (default all)")
    p.add_argument("--steps", type=int, default=100, help="training steps per timed repeat (default 100)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats of each side (default 5)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size of both loops (default 128)")
    p.add_argument("--eval-images", type=int, default=200, help="test images per timed IW evaluation (default 200)")
    p.add_argument("--iw-samples", type=int, default=1000, help="importance samples K (default 1000)")
    p.add_argument("--nll-images", type=int, default=10_000, help="test images for the full NLL timing (default 10000: all)")
    p.add_argument("--threads", type=int, help="torch threads for both sides (default: torch's choice)")
    p.add_argument("--dataset", default="fashion-mnist", help="28x28 grey images (default fashion-mnist)")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda / auto")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(handler=_bench)


def _bench(args) -> int:
    import json

    from vaekit.bench import format_table, run_bench

    result = run_bench(archs=_list(args.only), parts=_list(args.parts), steps=args.steps, repeats=args.repeats,
                       batch_size=args.batch_size, eval_images=args.eval_images, k=args.iw_samples,
                       nll_images=args.nll_images, dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                       threads=args.threads, progress=lambda message: print(message, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
