"""Where the benchmark scripts (``python -m vaekit.bench.NAME``, run from a checkout of the repository)
write their raw figures: benchmarks/results/ beside BENCHMARKS.md, or where $VAEKIT_BENCH_RESULTS says.
Torch-free, so a load-test client can import it."""
from __future__ import annotations

import os
from pathlib import Path

RESULTS = Path(os.environ.get("VAEKIT_BENCH_RESULTS", "benchmarks/results"))
