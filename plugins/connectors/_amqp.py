"""One AMQP 0-9-1 connection run by pika's SelectConnection in a thread of its own (for ``rabbitmq``).

pika's connections are not thread-safe: everything that touches the connection runs in its I/O
thread. The engine's threads hand work to it with ``add_callback_threadsafe`` and wait for the
answer (``call``). Between ticks the I/O thread keeps answering heartbeats and receives
deliveries into the connector's buffer, so a long schedule interval does not cost the connection.

A consumer is never stopped by rejecting what it holds. pika's blocking adapter nacks every
message not yet handed to the application when a consumer is cancelled or its channel closed; a
stream queue answers a nack by closing the whole connection (540 NOT_IMPLEMENTED). Here a
consumer that must stop (a stream read again from another offset) goes with its channel:
``Channel.close`` sends basic.cancel and channel.close, which a stream takes as "stop reading" and
a classic queue as "give back what was not acknowledged".
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from functools import partial
from typing import Any, Callable

log = logging.getLogger(__name__)

#: ``on_message(generation, method, properties, body)``, called in the I/O thread.
OnMessage = Callable[[int, Any, Any, bytes], None]


class LinkError(Exception):
    """The connection or the consuming channel failed; ``missing`` when the queue does not exist."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def describe(error: BaseException | None) -> str:
    """A pika error as one line: the innermost cause's type and message (pika's reasons name no credentials)."""
    if error is None:
        return "closed"
    seen: set[int] = set()
    while id(error) not in seen:  # pika wraps the cause: AMQPConnectionError(WorkflowFailed([SocketConnectError(...)]))
        seen.add(id(error))
        inner = (getattr(error, "exceptions", None) or [getattr(error, "exception", None)])[-1]
        if inner is None and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            break
        error = inner
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AmqpLink:
    """A connection and one consuming channel; ``generation`` numbers the consuming channels opened so far."""

    def __init__(self, parameters: Any, timeout: float, name: str, on_change: Callable[[], None]) -> None:
        self.parameters = parameters
        self.timeout = timeout
        self.name = name
        self.on_change = on_change  # called (in the I/O thread) when the connection or the channel goes
        #: Why the connection is gone (None while it is open).
        self.problem: str | None = None
        #: Why the current consuming channel is gone (None while it consumes).
        self.channel_problem: str | None = None
        #: The broker cancelled the current consumer (the queue was deleted, a stream moved, ...).
        self.cancelled = False
        self.generation = 0
        self._connection: Any = None
        self._channel: Any = None
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._waiting: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """Whether the connection is open and its I/O thread runs."""
        return self.problem is None and self._thread is not None and self._thread.is_alive()

    # ---- the engine's threads ---------------------------------------------------------------

    def open(self) -> None:
        """Connect (and log in) within ``timeout``; LinkError says why not."""
        from pika.adapters.select_connection import SelectConnection

        self._connection = SelectConnection(self.parameters, on_open_callback=self._opened_ok,
                                            on_open_error_callback=self._open_failed,
                                            on_close_callback=self._closed)
        self._thread = threading.Thread(target=self._run, name=f"driftd-amqp-{self.name}", daemon=True)
        self._thread.start()
        if not self._opened.wait(self.timeout):
            self.problem = f"no answer from the broker within {self.timeout:g} s"
        if self.problem is not None:
            problem = self.problem
            self.close()
            raise LinkError(problem)

    def call(self, start: Callable[[Callable[..., None], Callable[[LinkError], None]], None]) -> Any:
        """Run ``start(done, fail)`` in the I/O thread and wait until it calls ``done(result)`` or ``fail(error)``.

        LinkError when it fails, raises, or the connection or channel goes first.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def done(result: Any = None) -> None:
            if not future.done():
                future.set_result(result)

        def fail(error: LinkError) -> None:
            if not future.done():
                future.set_exception(error)

        def run() -> None:
            if future.done():
                return
            try:
                start(done, fail)
            except Exception as error:  # noqa: BLE001 - pika refuses (a closed channel): the caller's error
                fail(error if isinstance(error, LinkError) else LinkError(describe(error)))

        with self._lock:
            self._waiting.add(future)
        try:
            if not self.alive:
                raise LinkError(self.problem or "not connected")
            self._connection.ioloop.add_callback_threadsafe(run)
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            raise LinkError(f"no answer from the broker within {self.timeout:g} s") from None
        finally:
            with self._lock:
                self._waiting.discard(future)

    def consume(self, queue: str, prefetch: int, arguments: dict[str, Any], on_message: OnMessage) -> int:
        """Consume ``queue`` on a new channel (the previous one is closed, so its consumer stops); its generation.

        The queue must exist (a passive declare): LinkError with ``missing`` when it does not.
        """
        def start(done: Callable[..., None], _fail: Callable[[LinkError], None]) -> None:
            old, self._channel = self._channel, None
            if old is not None and old.is_open:
                old.close()
            self.generation += 1
            generation = self.generation
            self.cancelled, self.channel_problem = False, None

            def opened(channel: Any) -> None:
                self._channel = channel
                channel.add_on_close_callback(partial(self._channel_closed, generation))
                channel.add_on_cancel_callback(partial(self._consumer_cancelled, generation))

                def consuming(_frame: Any) -> None:
                    done(generation)

                def qos_set(_frame: Any) -> None:
                    channel.basic_consume(queue, lambda _ch, method, properties, body: on_message(
                        generation, method, properties, body), arguments=arguments, callback=consuming)

                channel.queue_declare(queue, passive=True,
                                      callback=lambda _frame: channel.basic_qos(prefetch_count=prefetch,
                                                                                callback=qos_set))

            self._connection.channel(on_open_callback=opened)

        return int(self.call(start))

    def is_stream(self, queue: str) -> bool:
        """Whether ``queue`` is a stream: only a stream takes a consumer with ``x-stream-offset``.

        Tried on a channel of its own, at offset "next" (nothing is delivered); a classic or quorum
        queue refuses the argument by closing that channel (406), which is the answer. LinkError
        (``missing``) when there is no such queue.
        """
        def start(done: Callable[..., None], fail: Callable[[LinkError], None]) -> None:
            def closed(_channel: Any, reason: BaseException) -> None:
                code = getattr(reason, "reply_code", 0)
                text = getattr(reason, "reply_text", "") or describe(reason)
                if code == 406 and "x-stream-offset" in text:
                    done(False)
                else:  # after the answer (our own close) this changes nothing
                    fail(LinkError(f"the broker closed the channel: {code} {text}",
                                   missing=code == 404 and "no queue" in text))

            def opened(channel: Any) -> None:
                channel.add_on_close_callback(closed)

                def consuming(_frame: Any) -> None:
                    done(True)
                    channel.close()

                channel.basic_qos(prefetch_count=1, callback=lambda _frame: channel.basic_consume(
                    queue, lambda *_args: None, arguments={"x-stream-offset": "next"}, callback=consuming))

            self._connection.channel(on_open_callback=opened)

        return bool(self.call(start))

    def stream_tail(self, queue: str, quiet: float) -> int | None:
        """The highest offset in the stream's last chunk (None when the stream is empty).

        Read on a channel of its own at offset "last": the broker sends that chunk whole, so the
        offsets are collected until none came for ``quiet`` seconds; the channel is then closed.
        """
        def start(done: Callable[..., None], fail: Callable[[LinkError], None]) -> None:
            highest: list[int] = []
            timer: list[Any] = [None]
            loop = self._connection.ioloop

            def finish(channel: Any) -> None:
                done(max(highest) if highest else None)
                if channel.is_open:
                    channel.close()

            def rearm(channel: Any) -> None:
                if timer[0] is not None:
                    loop.remove_timeout(timer[0])
                timer[0] = loop.call_later(quiet, partial(finish, channel))

            def delivered(channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
                offset = (properties.headers or {}).get("x-stream-offset")
                if offset is not None:
                    highest.append(int(offset))
                rearm(channel)

            def closed(_channel: Any, reason: BaseException) -> None:
                if timer[0] is not None:
                    loop.remove_timeout(timer[0])
                fail(LinkError(f"the broker closed the channel: {describe(reason)}"))  # after done(): no effect

            def opened(channel: Any) -> None:
                channel.add_on_close_callback(closed)
                channel.basic_qos(prefetch_count=1, callback=lambda _frame: channel.basic_consume(
                    queue, delivered, arguments={"x-stream-offset": "last"},
                    callback=lambda _frame: rearm(channel)))

            self._connection.channel(on_open_callback=opened)

        result = self.call(start)
        return None if result is None else int(result)

    def ack(self, generation: int, delivery_tag: int) -> None:
        """Acknowledge every delivery of channel ``generation`` up to ``delivery_tag``; LinkError if that channel is gone."""
        def start(done: Callable[..., None], _fail: Callable[[LinkError], None]) -> None:
            self.ack_in_loop(generation, delivery_tag, multiple=True)
            done()

        self.call(start)

    def ack_in_loop(self, generation: int, delivery_tag: int, multiple: bool = False) -> None:
        """``ack`` from the I/O thread itself (a delivery callback)."""
        channel = self._channel
        if generation != self.generation or channel is None or not channel.is_open:
            raise LinkError("the channel the messages came on is closed; the broker delivers them again")
        channel.basic_ack(delivery_tag, multiple=multiple)

    def close(self) -> None:
        """Close the connection (the broker gives back what was not acknowledged) and stop the I/O thread."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive():
            try:
                self._connection.ioloop.add_callback_threadsafe(self._close_in_loop)
            except Exception:  # noqa: BLE001 - the loop is already gone
                log.debug("%s: the I/O loop is gone", self.name, exc_info=True)
            thread.join(self.timeout)
        if not thread.is_alive():
            try:
                self._connection.ioloop.close()
            except Exception:  # noqa: BLE001
                log.debug("%s: closing the I/O loop failed", self.name, exc_info=True)
        self._thread = None
        self.problem = self.problem or "closed"

    # ---- the I/O thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._connection.ioloop.start()
        except Exception as error:  # noqa: BLE001 - the thread must not die silently
            self.problem = self.problem or describe(error)
            log.debug("%s: the I/O loop stopped", self.name, exc_info=True)
        finally:
            self._fail_waiting(LinkError(self.problem or "the connection is closed"))
            self.on_change()

    def _opened_ok(self, _connection: Any) -> None:
        self._opened.set()

    def _open_failed(self, connection: Any, error: BaseException) -> None:
        self.problem = f"cannot connect: {describe(error)}"
        self._opened.set()
        connection.ioloop.stop()

    def _closed(self, connection: Any, reason: BaseException) -> None:
        self.problem = self.problem or f"the connection was lost: {describe(reason)}"
        self._opened.set()
        self._fail_waiting(LinkError(self.problem))
        connection.ioloop.stop()

    def _close_in_loop(self) -> None:
        self.problem = self.problem or "closed"
        connection = self._connection
        if connection.is_open:
            connection.close()  # the ioloop stops in _closed
        elif not connection.is_closing:
            connection.ioloop.stop()

    def _channel_closed(self, generation: int, _channel: Any, reason: BaseException) -> None:
        if generation != self.generation:
            return  # a channel we closed ourselves to consume on a new one
        code = getattr(reason, "reply_code", 0)
        text = getattr(reason, "reply_text", "") or describe(reason)
        self.channel_problem = f"the broker closed the channel: {code} {text}".rstrip()
        self._fail_waiting(LinkError(self.channel_problem, missing=code == 404 and "no queue" in text))
        self.on_change()

    def _consumer_cancelled(self, generation: int, _frame: Any) -> None:
        if generation == self.generation:
            self.cancelled = True
            self.on_change()

    def _fail_waiting(self, error: LinkError) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for future in waiting:
            if not future.done():
                future.set_exception(error)
