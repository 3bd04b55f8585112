"""The engine process: the core, the store's writer, the MQTT session and the timer, wired
together. Each piece is thin; this module only decides the order of things:

    receive -> Ingest.process (validate, authorise, dedupe, core) -> batch
            -> Outputs.render (states as the batch leaves them) -> StoreWriter (commit,
               with the durable messages in the outbox)
            -> publish, then acknowledge the QoS 1 messages

It also tells the core what the engine itself could not hear: its broker link going down and
coming back, and gaps in its own event loop (a stopped process, a paused VM), before any
message or timer after such a gap is handled.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import random
import sqlite3
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt

from .calendar import official_calendar
from .control import Control
from .core import events as ev
from .core.commands import Notice
from .core.engine import Engine
from .ingest import DEDUPE_RETENTION_S, Ingest
from .outputs import Outputs
from .records import Batch, Outbound, Processed
from .shells import mqtt as mqtt_shell
from .shells.clock import Clock
from .shells.outbox import Outbox
from .shells.store import PRUNE_CHUNK, StoreWriter, load_snapshot
from .shells.storefile import StoreRefused, explain_failure
from .wire import Topics

if TYPE_CHECKING:
    from .config import Site
    from .shells.metrics import EngineMetrics

log = logging.getLogger("hallwatch.engine")

# The event loop is checked for gaps every WATCHDOG_S; a gap longer than STALL_S (real
# seconds) is reported to the core as a stall.
WATCHDOG_S = 0.5
STALL_S = 1.5
# The engine's reconnection backoff: short (it is one client, and the halls wait for it) and
# jittered; BACKOFF_MAX_S keeps it back within a few seconds of the broker.
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0
MAX_BATCH = 5000
GC_YOUNG_THRESHOLD = 20_000
# A batch is closed when the writer is free, or once this many items wait: the broker sends
# the engine at most max_inflight_messages (1,000) unacknowledged messages, and they are
# acknowledged after their commit, so batches must stay well below that to keep it sending.
BATCH_CLOSE_AT = 250
RETENTION_EVERY_S = 3600.0  # real seconds between two prunings of the event log
ENGINE = "engine"  # the ``device`` of the events the engine raises about itself


def tune_gc() -> None:
    """Python's cyclic garbage collector, set for a process that allocates a few dozen short-
    lived objects per message, thousands of messages a second, beside a large state that lives
    as long as the process: the state loaded at start-up is frozen out of the collections, and
    the youngest generation is collected every 20,000 allocations instead of 700. Measured
    with bench/ingest.py's load: 17 % less CPU per message (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


class StoreFailed(RuntimeError):
    pass


class BrokerUnreachable(RuntimeError):
    pass


class EngineApp:
    def __init__(
        self,
        sites: Iterable[Site],
        *,
        broker: mqtt_shell.BrokerSettings,
        db_path: str | Path,
        clock: Clock | None = None,
        root: str = "hallwatch",
        client_id: str = "hallwatch-engine",
        synchronous: str = "FULL",
        connect_timeout: float = 30.0,
        ticket_secret: bytes | None = None,
    ):
        """``ticket_secret``: the key of the tickets' tokens (tickettoken.py), read by the command."""
        self.sites = list(sites)
        self.broker = broker
        self.db_path = str(db_path)
        self.clock = clock or Clock()
        self.topics = Topics(root)
        self.client_id = client_id
        self.connect_timeout = connect_timeout
        self.engine = Engine(self.sites, official_calendar())
        self.ingest = Ingest(self.engine, self.sites, self.topics, ticket_secret=ticket_secret)
        self.outputs = Outputs(self.engine, self.sites, self.topics)
        self.writer = StoreWriter(
            self.db_path,
            on_commit=self._commit_from_thread,
            on_failure=self._failure_from_thread,
            synchronous=synchronous,
            observe=self._observe_commit,
        )
        self.control = Control(
            self.engine,
            self.sites,
            self.topics,
            self.db_path,
            publish=self._publish,
            publish_retained=self._publish_retained,
            submit=self.submit_event,
            now=self.clock.now,
        )
        self.metrics: EngineMetrics | None = None  # set when the engine serves /metrics
        # Called as observer(batch, messages) once a batch's outputs are published (web pushes).
        self.observers: list = []
        self.connected = False
        self.reconnects = 0
        self.processed = 0
        self.rejected = 0
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._outbox = Outbox()
        self._retained: dict[str, Outbound] = {}  # the latest committed state on each retained topic
        self._pending_out: deque[Outbound] = deque(maxlen=200_000)  # replies, rejections while disconnected
        self._pending: list[Processed] = []  # handled, waiting for the writer
        self._in_flight = 0  # batches handed to the writer, not yet committed
        self._flush_soon = False
        self._expect_session = False  # the broker should still hold the engine's persistent session
        self._prune: list[tuple[str, float, float]] = []  # retention still to do (Batch.prune)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._alive_at = 0.0  # loop time the event loop was last seen running
        self._alive_clock = 0.0  # the engine's clock at that moment
        self._wake = asyncio.Event()
        self._armed = math.inf
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None
        self.ready = asyncio.Event()  # set once subscribed the first time

    @property
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop run() set: what uses it runs from run() (its tasks, the callbacks of the
        writer it started), or from submit_event, which the web calls only once _loop is set."""
        assert self._loop is not None, "the engine is not running"
        return self._loop

    # -- start-up ----------------------------------------------------------------------
    def restore(self) -> None:
        now = self.clock.now()
        days = {datetime.fromtimestamp(now, site.tz).date().isoformat() for site in self.sites}
        matters_days = max(site.cases.same_matter_days for site in self.sites)
        snapshot = load_snapshot(
            self.db_path, since=now - DEDUPE_RETENTION_S, days=days, matters_since=now - matters_days * 86400.0
        )
        # What the day roll changed while the engine was down (expired tickets, released
        # windows) is stored like any other change.
        self._submit(
            Processed(
                at=now,
                commands=self.engine.restore(
                    now=now,
                    tickets=snapshot.tickets,
                    windows=snapshot.windows,
                    alerts=snapshot.open_alerts,
                    alert_seqs=snapshot.alert_seqs,
                    transition_seqs=snapshot.transition_seqs,
                    devices=snapshot.devices,
                    totals=snapshot.totals,
                    cases=snapshot.cases,
                    notices=snapshot.notices,
                ),
            )
        )
        for site_id, device, event_id, at, digest, reply in snapshot.recent_events:
            self.ingest.dedupe.remember((site_id, device, event_id), at, digest, reply)
        self._outbox.restore(snapshot.outbox)
        self.outputs.store_id = self.control.store_id = snapshot.store_id
        self._expect_session = snapshot.has_history
        for site in self.sites:  # the restored (committed) states, published once connected
            hall = self.engine.hall(site.id)
            for window in hall.windows.values():
                self._keep_retained(self.outputs.window_state(site.id, window, now))
            self._keep_retained(self.outputs.queue_state(site.id, now))
            for live in hall.supervisor.devices.values():
                if live.online is not None and (state := self.outputs.device_state(site.id, live.id)):
                    self._keep_retained(state)
        # Not connected yet: until it is, the engine hears nothing, and the core must know.
        self._tell_sites(lambda site: ev.EngineLink(site=site, device=ENGINE, id="", up=False))
        waiting = sum(1 for t in snapshot.tickets if t.status == "waiting")
        log.info(
            "restored %d tickets (%d waiting), %d windows, %d open alerts, %d open cases, %d recent event ids, "
            "%d unacknowledged publications from %s",
            len(snapshot.tickets),
            waiting,
            len(snapshot.windows),
            len(snapshot.open_alerts),
            sum(1 for c in snapshot.cases if c.open),
            len(snapshot.recent_events),
            len(snapshot.outbox),
            self.db_path,
        )

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        log.info(
            "hallwatch engine starting: sites %s, broker %s, store %s%s",
            ",".join(s.id for s in self.sites),
            self.broker.describe(),
            self.db_path,
            f", clock from {datetime.fromtimestamp(self.clock.now(), UTC).isoformat()} x{self.clock.speed:g}"
            if self.clock.simulated
            else "",
        )
        try:  # before the broker: a store that cannot be used stops the engine here
            self.writer.start()
            self.restore()
        except StoreRefused as exc:
            raise StoreFailed(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreFailed(f"store {self.db_path} cannot be opened: {explain_failure(self.db_path, exc)}") from None
        tune_gc()
        # (from here on a gap in the loop is a stall; start-up is not)
        self._alive_at, self._alive_clock = self._loop.time(), self.clock.now()
        tasks = [
            asyncio.create_task(self._session(), name="mqtt"),
            asyncio.create_task(self._timer(), name="timer"),
            asyncio.create_task(self._watchdog(), name="watchdog"),
            asyncio.create_task(self._retention(), name="retention"),
            asyncio.create_task(self.control.run_figures(), name="figures"),
        ]
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.control.close()
            if self.writer.writable():  # the day's time totals up to the stop
                self._submit(Processed(at=self.clock.now(), commands=self.engine.flush_accounting(self.clock.now())))
                await self._drain()
            await self._loop.run_in_executor(None, self.writer.close)
            await asyncio.sleep(0)  # let the last commit's callbacks run
            log.info("hallwatch engine stopped")
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping.set()

    async def _drain(self, timeout: float = 10.0) -> None:
        """Wait until everything handled has been committed, and the outbox's rows the
        broker has acknowledged are deleted (a clean stop)."""
        deadline = self._running_loop.time() + timeout
        self._outbox.sweep()
        while (
            (self._pending or self._in_flight or self._outbox.has_delivered)
            and self.writer.writable()
            and self._running_loop.time() < deadline
        ):
            self._flush(housekeeping=self._outbox.has_delivered)
            await asyncio.sleep(0.01)

    # -- the MQTT session -------------------------------------------------------------------
    async def _session(self) -> None:
        attempt = 0
        first_attempt = self._running_loop.time()
        ever_connected = False
        while True:
            client = mqtt_shell.make_client(self.broker, identifier=self.client_id, clean_session=False)
            mqtt_shell.enable_manual_ack(client)
            # Messages the broker redelivers as soon as the session resumes arrive before
            # subscribe() returns: route them to this connection from the start, after the
            # core has heard that the link is back (on_connect runs before them).
            self._generation += 1
            self._client = client
            generation = self._generation
            mqtt_shell.on_message(
                client,
                lambda topic, payload, mid, qos, dup, g=generation: self._receive(topic, payload, mid, qos, dup, g),
            )
            mqtt_shell.on_connected(client, self._link_up)
            try:
                async with client:
                    if ever_connected:
                        self.reconnects += 1
                        log.info("reconnected to %s", self.broker.describe())
                    else:
                        log.info("connected to %s as %s", self.broker.describe(), self.client_id)
                    ever_connected = True
                    attempt = 0
                    await client.subscribe([(f, 1) for s in self.sites for f in self.topics.subscriptions(s.id)])
                    self._republish()
                    if not self.ready.is_set():
                        log.info("ready: subscribed to %d site(s) under %s/", len(self.sites), self.topics.root)
                    self.ready.set()
                    await mqtt_shell.until_disconnected(client)
            except aiomqtt.MqttCodeError as exc:
                self._disconnected()
                if not ever_connected and exc.rc in (4, 5, 134, 135):  # bad credentials / not authorised
                    self._fail(BrokerUnreachable(f"broker {self.broker.describe()} refused the engine: {exc}"))
                    return
                log.warning("broker %s: %s; retrying", self.broker.describe(), exc)
            except aiomqtt.MqttError as exc:
                self._disconnected()
                if not ever_connected and self._running_loop.time() - first_attempt > self.connect_timeout:
                    self._fail(BrokerUnreachable(f"cannot reach broker {self.broker.describe()}: {exc}"))
                    return
                log.warning("broker %s unreachable: %s; retrying", self.broker.describe(), exc)
            attempt += 1
            await asyncio.sleep(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))

    def _link_up(self, session_present: bool) -> None:
        """The broker accepted the connection (from paho's CONNACK callback, before any
        message of the resumed session is read)."""
        self._enter()
        self.connected = True
        lost = self._expect_session and not session_present
        if lost:
            log.warning(
                "the broker has no session for %s: what devices sent while the engine was away is lost", self.client_id
            )
        self._expect_session = True
        self._tell_sites(lambda site: ev.EngineLink(site=site, device=ENGINE, id="", up=True, session_lost=lost))

    def _disconnected(self) -> None:
        if self.connected:
            log.warning("disconnected from %s", self.broker.describe())
            self._enter()
            self._tell_sites(lambda site: ev.EngineLink(site=site, device=ENGINE, id="", up=False))
        self.connected = False
        self._client = None

    def _tell_sites(self, event_for) -> None:
        now = self.clock.now()
        for site in self.sites:
            self._submit(self.ingest.notify(event_for(site.id), now))

    def _receive(self, topic: str, payload: bytes, mid: int, qos: int, dup: bool, generation: int) -> None:
        """One inbound message, on the event loop's thread, straight from paho's reader."""
        self._enter()
        request = self.control.matches(topic)
        if request is not None:  # the county service's: answered, then acknowledged
            self.control.receive(*request, payload, lambda: self._ack(mid, qos, generation))
            return
        item = self.ingest.process(topic, payload, self.clock.now(), redelivered=dup)
        item.mid, item.qos, item.generation = mid, qos, generation
        if item.rejection is not None:
            self.rejected += 1
        else:
            self.processed += 1
        self._submit(item)
        if self.engine.next_deadline() < self._armed:
            self._wake.set()

    def _ack(self, mid: int, qos: int, generation: int) -> None:
        client = self._client
        if client is not None and generation == self._generation:  # else the broker delivers it again
            mqtt_shell.ack(client, mid, qos)

    async def submit_event(self, event, *, reply_topic: str | None = None, resend: bool = False) -> Processed:
        """Apply an event from another shell (web, operator, the county's requests) and return
        once it has been committed (and what it shows published): ``result`` holds the core's
        reply (Ingest.process_event: ``reply_topic``, ``resend``)."""
        self._enter()
        item = self.ingest.process_event(event, self.clock.now(), reply_topic=reply_topic, resend=resend)
        item.waiter = self._running_loop.create_future()
        self._submit(item)
        if self.engine.next_deadline() < self._armed:
            self._wake.set()
        await item.waiter
        return item

    # -- the engine's own hearing ---------------------------------------------------------
    def _enter(self) -> None:
        """Called on every way into the core: a gap in the event loop (the process stopped,
        the machine paused) is reported before anything that waited through it is handled,
        so that timers due in the gap are judged knowing the engine was deaf."""
        now_loop = self._running_loop.time()
        if now_loop - self._alive_at > STALL_S:
            since, gap = self._alive_clock, now_loop - self._alive_at
            self._alive_at, self._alive_clock = now_loop, self.clock.now()
            log.warning(
                "the engine's event loop did not run for %.1f s: devices' silence in that time is not "
                "counted against them",
                gap,
            )
            self._tell_sites(lambda site: ev.EngineStalled(site=site, device=ENGINE, id="", since=since))

    async def _watchdog(self) -> None:
        while True:
            self._enter()
            self._alive_at, self._alive_clock = self._running_loop.time(), self.clock.now()
            self._outbox.sweep()
            if (self._outbox.has_delivered or self._prune) and not self._pending and not self._in_flight:
                self._flush(housekeeping=True)  # delete what the broker has acknowledged, or has expired
            await asyncio.sleep(WATCHDOG_S)

    async def _retention(self) -> None:
        """Prune the event log and the rejections beyond each site's retention, hourly, a
        chunk per batch (docs/deployment.md, "The store")."""
        while True:
            now = self.clock.now()
            self._prune = [
                (s.id, now - s.retention.events_days * 86400.0, now - s.retention.rejections_days * 86400.0)
                for s in self.sites
            ]
            await asyncio.sleep(RETENTION_EVERY_S)

    # -- batches ---------------------------------------------------------------------------
    def _submit(self, item: Processed) -> None:
        if not (item.needs_commit or item.reply is not None or item.qos > 0 or item.waiter is not None):
            return
        self._pending.append(item)
        if len(self._pending) >= BATCH_CLOSE_AT:
            self._flush(force=True)
        elif not self._in_flight and not self._flush_soon:
            self._flush_soon = True  # at the end of this round of the loop, with what else it reads
            self._running_loop.call_soon(self._flush)

    def _flush(self, *, housekeeping: bool = False, force: bool = False) -> None:
        """Close a batch of what has been handled and hand it to the writer: when the writer
        is free (else the items keep gathering, to be committed together), or ``force``d
        (enough are waiting). The states are rendered now, when the core's state is exactly
        what this batch leaves behind."""
        self._flush_soon = False
        if (self._in_flight and not force) or not (self._pending or housekeeping) or not self.writer.writable():
            return
        items, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        messages = self.outputs.render(items)
        numbered = self._outbox.number(m for m in messages if m.durable)
        self._in_flight += 1
        batch = Batch(items, messages, numbered, self._outbox.take_delivered(), prune=self._prune)
        self.writer.submit(batch)
        # The states go after: the writer commits meanwhile (they are not part of the
        # transaction), and nothing has reached the core since the batch closed.
        messages += self.outputs.render_states(items, self.clock.now())

    def _commit_from_thread(self, batch: Batch) -> None:
        self._running_loop.call_soon_threadsafe(self._committed, batch)

    def _committed(self, batch: Batch) -> None:
        self._in_flight -= 1
        if batch.prune and batch.pruned < PRUNE_CHUNK and self._prune is batch.prune:
            self._prune = []  # nothing more to delete (else the next batch takes the next chunk)
        self._outbox.committed(batch.outbox)
        if self._pending and not self._in_flight:  # the writer works on it while this one is published
            self._flush()
        if self.metrics is not None:
            self.metrics.committed(batch.items)
        for item in batch.items:
            for command in item.commands:
                if isinstance(command, Notice):
                    log.log(
                        logging.WARNING if command.level == "warning" else logging.INFO,
                        "%s: %s",
                        command.site,
                        command.text,
                    )
        for message in batch.messages:
            if message.durable:
                continue  # published by the outbox, below, in the same order
            if message.retain:
                self._keep_retained(message)
            self._publish(message)
        if self._client is not None and self.connected:
            self._outbox.publish(self._generation, self._send)
        for observer in self.observers:
            observer(batch.items, batch.messages)
        for item in batch.items:
            if item.waiter is not None and not item.waiter.done():
                item.waiter.set_result(item)
        client = self._client
        if client is not None:  # else the broker redelivers what was not acknowledged; dedupe answers it
            for item in batch.items:
                if item.qos > 0 and item.generation == self._generation:
                    mqtt_shell.ack(client, item.mid, item.qos)
        self._outbox.sweep()

    # -- publishing ------------------------------------------------------------------------
    def _send(self, message: Outbound):
        """Hand a message to the current connection; its paho info, or None if not sent."""
        client = self._client
        if client is None or not self.connected:
            return None
        return mqtt_shell.publish_nowait(client, message.topic, message.payload, message.qos, message.retain)

    def _publish(self, message: Outbound) -> None:
        if self._send(message) is None and not message.retain:
            self._pending_out.append(message)  # (a retained state is republished from _retained)

    def _publish_retained(self, message: Outbound) -> None:
        self._keep_retained(message)
        self._send(message)

    def _keep_retained(self, message: Outbound) -> None:
        self._retained[message.topic] = message

    def _republish(self) -> None:
        """On every (re)connection: what the broker has not acknowledged, the latest states,
        and what could not be sent meanwhile."""
        self._outbox.publish(self._generation, self._send)
        for message in self._retained.values():
            self._send(message)
        pending, self._pending_out = self._pending_out, deque(maxlen=self._pending_out.maxlen)
        for message in pending:
            self._publish(message)

    # -- timers ----------------------------------------------------------------------------
    async def _timer(self) -> None:
        """Wake at the core's next deadline: nothing polls, and nothing is late."""
        while True:
            self._armed = self.engine.next_deadline()
            self._wake.clear()
            timeout = None if math.isinf(self._armed) else self.clock.real_seconds_until(self._armed)
            # Not asyncio.wait_for: on Python 3.11 it swallows the task's cancellation when the
            # event is set in the same loop iteration (a message arriving as the engine stops),
            # and the stop then waits for this loop forever.
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([woken], timeout=timeout)
            finally:
                woken.cancel()
            self._enter()
            now = self.clock.now()
            if now >= self.engine.next_deadline():
                self._submit(self.ingest.tick(now))

    # -- failures --------------------------------------------------------------------------
    def _failure_from_thread(self, exc: BaseException) -> None:
        failure = StoreFailed(
            f"store {self.db_path}: a commit failed: {explain_failure(self.db_path, exc)}. The "
            "engine stopped, as its state in memory is ahead of the store; once the cause is "
            "fixed, start it again: it resumes from the last commit, and the broker delivers "
            "again what was not stored"
        )
        self._running_loop.call_soon_threadsafe(self._fail, failure)

    def _fail(self, exc: BaseException) -> None:
        log.critical("%s", exc)
        self._failure = exc
        self._stopping.set()

    def _observe_commit(self, size: int, seconds: float) -> None:
        """Called from the store's writer thread after each commit."""
        if self.metrics is not None:
            self.metrics.observe_commit(size, seconds)

    @property
    def healthy(self) -> tuple[bool, str]:
        if not self.writer.writable():
            return False, "store not writable"
        if not self.connected:
            return False, "not connected to the broker"
        return True, "ok"
