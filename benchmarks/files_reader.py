"""What reading a growing file costs the ``files`` connector: one fetch of a whole CSV, plain and with
quoted values holding line endings, and a file appended to between fetches.

    .venv/bin/python benchmarks/files_reader.py [--mb 50]

Each fetch of a changed file reads it whole, parses its complete records with Arrow and hashes
them (BLAKE2b) for the cursor's fingerprint; a file holding quote characters is also scanned for
where its last complete record ends (a regular expression, possessive, no backtracking).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.connectors.files import FilesConnector  # noqa: E402


def _write(path: Path, megabytes: float, quoted: bool) -> int:
    line = '{i},{a:.6f},{b:.6f},"a note, with\na line break"\n' if quoted else "{i},{a:.6f},{b:.6f},plain\n"
    rows = []
    size, i = 0, 0
    while size < megabytes * 1e6:
        text = line.format(i=i, a=i * 0.001, b=i * 0.5)
        rows.append(text)
        size += len(text)
        i += 1
    path.write_text("id,a,b,note\n" + "".join(rows))
    return i


def _fetch_all(path: Path) -> tuple[float, int]:
    connector = FilesConnector({"path": str(path)})
    started = time.perf_counter()
    batch = connector.fetch(None, 10**9)
    return time.perf_counter() - started, batch.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50.0, help="file size in MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for quoted in (False, True):
            path = Path(folder) / f"{'quoted' if quoted else 'plain'}.csv"
            rows = _write(path, args.mb, quoted)
            times = [_fetch_all(path)[0] for _ in range(args.repeat)]
            best = min(times)
            print(f"{'quoted line breaks' if quoted else 'plain':>18}: {args.mb:.0f} MB, {rows} rows: "
                  f"{best:.2f} s ({args.mb / best:.0f} MB/s, median {statistics.median(times):.2f} s)")
        path = Path(folder) / "growing.csv"
        _write(path, args.mb, False)
        connector = FilesConnector({"path": str(path)})
        cursor = connector.fetch(None, 10**9).cursor
        times = []
        for step in range(args.repeat):
            with open(path, "a") as file:
                file.write("".join(f"{10**8 + step * 1000 + i},0.5,1.5,plain\n" for i in range(1000)))
            started = time.perf_counter()
            batch = connector.fetch(cursor, 10**9)
            times.append(time.perf_counter() - started)
            assert batch.num_rows == 1000
            cursor = batch.cursor
        print(f"{'appended 1000 rows':>18}: re-read of a {args.mb:.0f} MB file per fetch: {min(times):.2f} s")


if __name__ == "__main__":
    main()
