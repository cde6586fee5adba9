"""What decoding a stored reference summary costs: ``np.load`` of its members against ``ReferenceSummary.from_bytes``.

    nice -n 10 .venv/bin/python benchmarks/summary_decode.py [--rows 10000 --features 20 --repeat 100]

The summary of a seeded standard-normal table (``summarize_table``, the daemon's defaults) is
decoded ``--repeat`` times each way; prints the CPU milliseconds per decode as one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from monitor.config import build_config  # noqa: E402
from monitor.divergence import ReferenceSummary  # noqa: E402
from monitor.domain.reference import summarize_table  # noqa: E402


def main() -> None:
    """Time the decodes and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = pa.table({f"f{i:02d}": rng.standard_normal(args.rows) for i in range(args.features)})
    monitor = build_config({"monitors": [{"name": "m", "source": {"type": "files", "options": {"path": "."}},
                                          "features": {"numeric": table.column_names}, "window": {"rows": args.rows},
                                          "reference": {"first_rows": args.rows}}]}, "bench", environ={}).monitors[0]
    data = summarize_table(table, monitor.features, monitor.reference.bins, monitor.reference.max_rows, origin="bench",
                           multivariate_sample=monitor.reference.multivariate_sample).summary

    def load_members() -> None:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            {name: archive[name] for name in archive.files}

    out: dict[str, object] = {"rows": args.rows, "features": args.features, "summary_bytes": len(data)}
    for name, decode in (("np_load_members_ms", load_members),
                         ("from_bytes_ms", lambda: ReferenceSummary.from_bytes(data)),
                         ("from_bytes_without_multivariate_ms", lambda: ReferenceSummary.from_bytes(data, False))):
        decode()
        started = time.process_time()
        for _ in range(args.repeat):
            decode()
        out[name] = round((time.process_time() - started) / args.repeat * 1000, 2)
    out["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
