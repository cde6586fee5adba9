"""What a ``/metrics`` scrape costs with many monitors: formatting everything, against the cached drift gauges.

    nice -n 10 .venv/bin/python benchmarks/metrics_scrape.py [--monitors 1000 --features 20 --scrapes 5]

Builds the daemon's ``Metrics`` with ``--monitors`` monitors, each with a latest window of
``--features`` features scored by KS and PSI and one observation in each per-monitor histogram
(what a running daemon exports), then times ``--scrapes`` scrapes two ways: ``generate_latest`` of
the whole registry (every series formatted at each scrape, as before issue 15) and
``Metrics.exposition()`` with ``--changed`` monitors ticking between scrapes (a new window, a
counter and the four histograms a tick updates). A monitor's series and drift gauges are formatted
once per change: the daemon formats them at the end of the monitor's tick (``Metrics.settle``), so
its scrape only copies them (``exposition_p50_s``); ``unsettled_p50_s`` is the scrape that formats
the changed monitors itself (a change outside a tick). 1,000 monitors ticking once a minute and a
scrape every 15 s change about 250 between scrapes. Prints the p50 of each and the exposition's size.

``--busy-threads N`` runs N threads of pure-Python work during the scrapes, as a daemon's ticks
compete with its scrape for the interpreter lock (``busy_p50_s``: the cached scrape under them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest  # noqa: E402

from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot  # noqa: E402


def snapshot(features: list[str], stamp: float) -> MonitorSnapshot:
    """A monitor's latest window: every feature scored by KS and PSI."""
    return MonitorSnapshot(
        state_code=0, drift_share=0.05, last_window_timestamp=stamp, reference_version=1, source_up=True,
        scores=[FeatureScore(f, m, 0.0123, 0.42 if m == "ks" else None, False) for f in features for m in ("ks", "psi")],
        feature_drifted={f: False for f in features}, features=features)


def tick(metrics: Metrics, name: str, window: MonitorSnapshot, settle: bool) -> None:
    """What a tick of the daemon changes in a monitor's metrics."""
    metrics.scheduler_lag.labels(name).observe(0.01)
    metrics.poll_seconds.labels(name).observe(0.02)
    metrics.evaluation_seconds.labels(name).observe(0.03)
    metrics.windows.labels(name).inc()
    metrics.rows.labels(name).inc(10_000)
    metrics.publish(name, window)
    metrics.tick_seconds.labels(name).observe(0.06)
    if settle:
        metrics.settle(name)


def main() -> None:
    """Time both ways and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--changed", type=int, default=250, help="monitors whose window changes between scrapes")
    parser.add_argument("--busy-threads", type=int, default=8, help="threads of Python work during the last scrapes")
    args = parser.parse_args()
    metrics = Metrics()
    features = [f"f{i:02d}" for i in range(args.features)]
    names = [f"m{i:04d}" for i in range(args.monitors)]
    for name in names:
        metrics.add_monitor(name)
        metrics.publish(name, snapshot(features, 1.7e9))
        for histogram in (metrics.evaluation_seconds, metrics.poll_seconds, metrics.tick_seconds,
                          metrics.scheduler_lag):
            histogram.labels(name).observe(0.05)
        metrics.windows.labels(name).inc()
    everything, cached, unsettled = [], [], []
    size = 0
    for scrape in range(args.scrapes):
        started = time.perf_counter()
        size = len(generate_latest(metrics.registry))
        everything.append(time.perf_counter() - started)
    started = time.perf_counter()
    metrics.exposition()  # the first one formats every monitor's drift gauges
    first = time.perf_counter() - started
    for scrape in range(2 * args.scrapes):
        for index in range(args.changed):
            name = names[(scrape * args.changed + index) % len(names)]
            tick(metrics, name, snapshot(features, 1.7e9 + 60 * (scrape + 1)), settle=scrape % 2 == 0)
        started = time.perf_counter()
        text = metrics.exposition()
        (cached if scrape % 2 == 0 else unsettled).append(time.perf_counter() - started)
    assert text == generate_latest(metrics.registry)
    busy = []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            sum(i * i for i in range(2000))  # holds the interpreter lock until it is switched out

    threads = [threading.Thread(target=work, daemon=True) for _ in range(args.busy_threads)]
    for thread in threads:
        thread.start()
    for scrape in range(args.scrapes):
        for index in range(args.changed):
            name = names[(scrape * args.changed + index) % len(names)]
            tick(metrics, name, snapshot(features, 1.7e9 + 6000 + 60 * scrape), settle=True)
        started = time.perf_counter()
        metrics.exposition()
        busy.append(time.perf_counter() - started)
    stop.set()
    print(json.dumps({"monitors": args.monitors, "features": args.features, "exposition_mib": round(size / 2**20, 2),
                      "every_series_p50_s": round(statistics.median(everything), 3),
                      "changed_between_scrapes": args.changed,
                      "exposition_p50_s": round(statistics.median(cached), 3),
                      "unsettled_p50_s": round(statistics.median(unsettled), 3),
                      "first_exposition_s": round(first, 3), "busy_threads": args.busy_threads,
                      "busy_p50_s": round(statistics.median(busy), 3) if busy else None,
                      "load": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
