"""``vaekit serve``: the latent explorer in the browser (see :mod:`vaekit.serve`).

FastAPI, uvicorn and torch are imported inside the handler only, so ``vaekit --help`` stays fast.
"""
from __future__ import annotations

import sys


def register(commands) -> None:
    p = commands.add_parser("serve", help="explore runs' latent spaces in the browser",
                            description="Serve the latent explorer for a run, or for every run in a folder, "
                                        "and print its address. Stop it with Ctrl+C.")
    p.add_argument("runs", metavar="RUN_OR_FOLDER", help="a run folder (from vaekit train --out) or a folder of runs")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes the "
                        "explorer, which has no authentication, to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-points", type=int, default=5000, help="test images on the map (a seeded subset; default 5000)")
    p.add_argument("--data-dir", help="folder holding the datasets' files")
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto (default cpu: small decoders answer "
                                                   "fastest there)")
    p.set_defaults(handler=_serve)


def _serve(args) -> int:
    from vaekit.errors import ConfigError
    from vaekit.serve import Server

    if args.max_points < 1:
        raise ConfigError(f"--max-points must be at least 1, not {args.max_points}")
    server = Server(args.runs, host=args.host, port=args.port, data_dir=args.data_dir, device=args.device,
                    map_points=args.max_points)
    if not server.loopback:
        print(f"vaekit: warning: listening on {args.host}: anyone who can reach this machine can use the explorer "
              "(it has no authentication)", file=sys.stderr)
    runs = list(server.registry.entries)
    shown = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
    print(f"vaekit explorer: {server.url}   ({len(runs)} run{'s' * (len(runs) != 1)}: {shown}; Ctrl+C stops it)",
          flush=True)
    server.run()
    return 0
