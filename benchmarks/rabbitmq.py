"""How fast the ``rabbitmq`` connector reads: a stream by offset, a classic queue acknowledged per batch.

    .venv/bin/python benchmarks/rabbitmq.py [--messages 100000] [--max-rows 10000] [--url amqp://...]

Publishes ``--messages`` JSON rows (``id, a, b, c``, as the tests write them) to a new stream and a
new classic queue on the broker, then reads each to the end as the engine does (``fetch``, then
``commit`` of the batch's cursor) and reports rows per second and the time of one batch. The queues
are deleted afterwards. Figures go to ``benchmarks/results/rabbitmq.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.connectors.rabbitmq import RabbitMqConnector  # noqa: E402
from tests.helpers import sample_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "rabbitmq.json"


def publish(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, messages: int) -> None:
    bodies = [json.dumps(row).encode() for row in sample_table(messages, seed=1).to_pylist()]
    for body in bodies:
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))


def read(url: str, queue: str, stream: bool, messages: int, max_rows: int) -> dict[str, float]:
    connector = RabbitMqConnector({"url": url, "queue": queue, "stream": stream, "prefetch": min(65_535, 2 * max_rows)})
    cursor, rows, batches = None, 0, []
    started = time.perf_counter()
    try:
        while rows < messages:
            tick = time.perf_counter()
            batch = connector.fetch(cursor, max_rows)
            connector.commit(batch.cursor)
            if batch.num_rows == 0:
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"{queue}: only {rows} of {messages} messages arrived")
                continue
            batches.append(time.perf_counter() - tick)
            rows += batch.num_rows
            cursor = batch.cursor
    finally:
        connector.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds),
            "batch_median_seconds": round(statistics.median(batches), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--url", default=os.environ.get("DRIFTD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"))
    args = parser.parse_args()
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    token = uuid.uuid4().hex[:8]
    queues = {"stream": f"driftd-bench-s-{token}", "classic": f"driftd-bench-q-{token}"}
    results: dict[str, object] = {"messages": args.messages, "max_rows": args.max_rows,
                                  "python": platform.python_version(), "load_average": os.getloadavg()[0]}
    try:
        for kind, queue in queues.items():
            channel.queue_declare(queue, durable=True,
                                  arguments={"x-queue-type": "stream"} if kind == "stream" else {})
            publish(channel, queue, args.messages)
        connection.process_data_events(1)
        for kind, queue in queues.items():
            results[kind] = read(args.url, queue, kind == "stream", args.messages, args.max_rows)
            print(kind, results[kind], flush=True)
    finally:
        for queue in queues.values():
            channel.queue_delete(queue)
        connection.close()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
