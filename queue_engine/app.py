"""The engine process: the core, the store's writer, the MQTT session and the timer, wired
together. Each piece is thin; this module only decides the order of things:

    receive -> Ingest.process (validate, authorise, dedupe, core) -> StoreWriter (commit)
            -> Outputs.render -> publish, then acknowledge the QoS 1 message
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import aiomqtt

from .calendar import official_calendar
from .core.commands import Notice
from .core.engine import Engine
from .ingest import DEDUPE_RETENTION_S, Ingest, Outbound, Outputs, Processed
from .shells import mqtt as mqtt_shell
from .shells.clock import Clock
from .shells.store import StoreWriter, load_snapshot
from .shells.storefile import StoreRefused, explain_failure
from .wire import Topics

if TYPE_CHECKING:
    from .config import Site

log = logging.getLogger("hallwatch.engine")


class StoreFailed(RuntimeError):
    pass


class BrokerUnreachable(RuntimeError):
    pass


class EngineApp:
    def __init__(self, sites: Iterable[Site], *, broker: mqtt_shell.BrokerSettings, db_path: str | Path,
                 clock: Clock | None = None, root: str = "hallwatch", client_id: str = "hallwatch-engine",
                 synchronous: str = "FULL", connect_timeout: float = 30.0):
        self.sites = list(sites)
        self.broker = broker
        self.db_path = str(db_path)
        self.clock = clock or Clock()
        self.topics = Topics(root)
        self.client_id = client_id
        self.connect_timeout = connect_timeout
        self.engine = Engine(self.sites, official_calendar())
        self.ingest = Ingest(self.engine, self.sites, self.topics)
        self.outputs = Outputs(self.engine, self.sites, self.topics)
        self.writer = StoreWriter(self.db_path, on_commit=self._commit_from_thread,
                                  on_failure=self._failure_from_thread, synchronous=synchronous,
                                  observe=self._observe_commit)
        self.metrics = None  # shells.metrics.EngineMetrics, set when the engine serves /metrics
        # Called as observer(batch, messages) once a batch's outputs are published (web pushes).
        self.observers: list = []
        self.connected = False
        self.reconnects = 0
        self.processed = 0
        self.rejected = 0
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._pending_out: deque[Outbound] = deque(maxlen=200_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._armed = math.inf
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None
        self.ready = asyncio.Event()  # set once subscribed the first time

    # -- start-up ----------------------------------------------------------------------
    def restore(self) -> None:
        now = self.clock.now()
        days = {datetime.fromtimestamp(now, site.tz).date().isoformat() for site in self.sites}
        snapshot = load_snapshot(self.db_path, since=now - DEDUPE_RETENTION_S, days=days)
        # What the day roll changed while the engine was down (expired tickets, released
        # windows) is stored like any other change.
        self._submit(Processed(at=now, commands=self.engine.restore(
            now=now, tickets=snapshot.tickets, windows=snapshot.windows, alerts=snapshot.open_alerts,
            alert_seqs=snapshot.alert_seqs, devices=snapshot.devices, totals=snapshot.totals)))
        for site, device, event_id, at, reply in snapshot.recent_events:
            self.ingest.dedupe.remember((site, device, event_id), at, reply)
        waiting = sum(1 for t in snapshot.tickets if t.status == "waiting")
        log.info("restored %d tickets (%d waiting), %d windows, %d open alerts, %d recent event ids from %s",
                 len(snapshot.tickets), waiting, len(snapshot.windows), len(snapshot.open_alerts),
                 len(snapshot.recent_events), self.db_path)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        log.info("hallwatch engine starting: sites %s, broker %s, store %s%s",
                 ",".join(s.id for s in self.sites), self.broker.describe(), self.db_path,
                 f", clock from {datetime.fromtimestamp(self.clock.now(), timezone.utc).isoformat()} x{self.clock.speed:g}"
                 if self.clock.simulated else "")
        try:  # before the broker: a store that cannot be used stops the engine here
            self.writer.start()
            self.restore()
        except StoreRefused as exc:
            raise StoreFailed(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreFailed(f"store {self.db_path} cannot be opened: {explain_failure(self.db_path, exc)}") from None
        tasks = [asyncio.create_task(self._session(), name="mqtt"),
                 asyncio.create_task(self._timer(), name="timer")]
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.writer.writable():  # the day's time totals up to the stop
                self._submit(Processed(at=self.clock.now(),
                                       commands=self.engine.flush_accounting(self.clock.now())))
            await self._loop.run_in_executor(None, self.writer.close)
            await asyncio.sleep(0)  # let the last commit's callbacks run
            log.info("hallwatch engine stopped")
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping.set()

    # -- the MQTT session -------------------------------------------------------------------
    async def _session(self) -> None:
        backoff = 0.5
        first_attempt = self._loop.time()
        ever_connected = False
        while True:
            client = mqtt_shell.make_client(self.broker, identifier=self.client_id, clean_session=False)
            mqtt_shell.enable_manual_ack(client)
            # Messages the broker redelivers as soon as the session resumes arrive before
            # subscribe() returns: route them to this connection from the start.
            self._generation += 1
            self._client = client
            generation = self._generation
            mqtt_shell.on_message(client, lambda topic, payload, mid, qos: self._receive(
                topic, payload, mid, qos, generation))
            try:
                async with client:
                    self.connected = True
                    if ever_connected:
                        self.reconnects += 1
                        log.info("reconnected to %s", self.broker.describe())
                    else:
                        log.info("connected to %s as %s", self.broker.describe(), self.client_id)
                    ever_connected = True
                    backoff = 0.5
                    await client.subscribe([(f, 1) for s in self.sites for f in self.topics.subscriptions(s.id)])
                    self._publish_current_state()
                    self._flush_pending()
                    if not self.ready.is_set():
                        log.info("ready: subscribed to %d site(s) under %s/", len(self.sites), self.topics.root)
                    self.ready.set()
                    await mqtt_shell.until_disconnected(client)
            except aiomqtt.MqttCodeError as exc:
                self._disconnected()
                if not ever_connected and exc.rc in (4, 5, 134, 135):  # bad credentials / not authorised
                    self._fail(BrokerUnreachable(f"broker {self.broker.describe()} refused the engine: {exc}"))
                    return
                log.warning("broker %s: %s; retrying in %.1f s", self.broker.describe(), exc, backoff)
            except aiomqtt.MqttError as exc:
                self._disconnected()
                if not ever_connected and self._loop.time() - first_attempt > self.connect_timeout:
                    self._fail(BrokerUnreachable(f"cannot reach broker {self.broker.describe()}: {exc}"))
                    return
                log.warning("broker %s unreachable: %s; retrying in %.1f s", self.broker.describe(), exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    def _disconnected(self) -> None:
        if self.connected:
            log.warning("disconnected from %s", self.broker.describe())
        self.connected = False
        self._client = None

    def _receive(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        """One inbound message, on the event loop's thread, straight from paho's reader."""
        item = self.ingest.process(topic, payload, self.clock.now())
        item.mid, item.qos, item.generation = mid, qos, generation
        if item.rejection is not None:
            self.rejected += 1
        else:
            self.processed += 1
        self._submit(item)
        if self.engine.next_deadline() < self._armed:
            self._wake.set()

    async def submit_event(self, event) -> Processed:
        """Apply an event from another shell (web, operator) and return once it has been
        committed (and what it shows published): ``result`` holds the core's reply."""
        item = self.ingest.process_event(event, self.clock.now())
        item.waiter = self._loop.create_future()
        self.writer.submit(item)
        if self.engine.next_deadline() < self._armed:
            self._wake.set()
        await item.waiter
        return item

    def _submit(self, item: Processed) -> None:
        if item.needs_commit or item.reply is not None or item.qos > 0:
            self.writer.submit(item)

    # -- after commit ----------------------------------------------------------------------
    def _commit_from_thread(self, batch: list[Processed]) -> None:
        self._loop.call_soon_threadsafe(self._committed, batch)

    def _committed(self, batch: list[Processed]) -> None:
        if self.metrics is not None:
            self.metrics.committed(batch)
        for item in batch:
            for command in item.commands:
                if isinstance(command, Notice):
                    log.log(logging.WARNING if command.level == "warning" else logging.INFO, "%s: %s",
                            command.site, command.text)
        messages = self.outputs.render(batch, self.clock.now())
        for message in messages:
            self._publish(message)
        for observer in self.observers:
            observer(batch, messages)
        for item in batch:
            if item.waiter is not None and not item.waiter.done():
                item.waiter.set_result(item)
        client = self._client
        if client is None:
            return  # the broker redelivers what was not acknowledged; dedupe answers it
        for item in batch:
            if item.qos > 0 and item.generation == self._generation:
                mqtt_shell.ack(client, item.mid, item.qos)

    def _publish(self, message: Outbound) -> None:
        client = self._client
        if client is None or not self.connected or not mqtt_shell.publish_nowait(client, message.topic, message.payload,
                                                             message.qos, message.retain):
            self._pending_out.append(message)

    def _flush_pending(self) -> None:
        pending, self._pending_out = self._pending_out, deque(maxlen=self._pending_out.maxlen)
        for message in pending:
            self._publish(message)

    def _publish_current_state(self) -> None:
        now = self.clock.now()
        for site in self.sites:
            hall = self.engine.hall(site.id)
            for window in hall.windows.values():
                self._publish(self.outputs.window_state(site.id, window))
            self._publish(self.outputs.queue_state(site.id, now))

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
            now = self.clock.now()
            if now >= self.engine.next_deadline():
                self._submit(self.ingest.tick(now))

    # -- failures --------------------------------------------------------------------------
    def _failure_from_thread(self, exc: BaseException) -> None:
        failure = StoreFailed(f"store {self.db_path}: a commit failed: {explain_failure(self.db_path, exc)}. The "
                              "engine stopped, as its state in memory is ahead of the store; once the cause is "
                              "fixed, start it again: it resumes from the last commit, and the broker delivers "
                              "again what was not stored")
        self._loop.call_soon_threadsafe(self._fail, failure)

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
