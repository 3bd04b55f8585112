"""The county service's MQTT shell: a persistent session on the county broker that reads what
every hall's engine publishes, however the county is deployed (one engine, shards, or
townships bridged up under ``townships/{township}/``), feeds the model, and acknowledges each
message once the batch that holds it has been committed to the county store.

A county operator's acknowledgement goes to the engine that owns the alert
(``control/acknowledge``, under the acknowledgement's own id, kept in the county store until
answered, and sent again on every reconnection until it is: the engine answers a resend the
same); the acknowledged transition comes back as any other.

It does not rely on its broker session alone (a broker killed before its autosave comes back
without it): a gap in a hall's alert numbers, a hall heard of for the first time and every
(re)connection make it ask the hall's engine to replay what it missed (``control/replay``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import msgspec

from .. import wire
from ..calendar import official_calendar
from ..core.errors import ErrorCode
from ..core.vocabulary import STORE_REPLACED
from ..deploy.brokerconf import BRIDGE_ROOT
from ..shells import mqtt as mqtt_shell
from ..shells.clock import Clock
from ..shells.storefile import StoreRefused
from .model import FIRST, KEEP_RESOLVED_S, NEW, RETIRED, Acknowledgement, County, Hall
from .store import Changes, CountyStore

if TYPE_CHECKING:
    from ..config import Site

log = logging.getLogger("hallwatch.county")

DEFAULT_CLIENT_ID = "hallwatch-county"
BACKOFF_MAX_S = 2.0
HOUSEKEEPING_S = 5.0  # how often unanswered replays are asked again and old alerts forgotten

# What the county reads of each hall, below ``{root}/{site}/``.
STATE_TOPICS = ("alerts", "queue/state", "window/+/state", "device/+/state", "control/+/reply", "figures/day")
_decoders: dict[str, msgspec.json.Decoder] = {
    "alert": msgspec.json.Decoder(wire.WireAlert),
    "window": msgspec.json.Decoder(wire.WireWindowState),
    "queue": msgspec.json.Decoder(wire.WireQueueState),
    "device": msgspec.json.Decoder(wire.WireDeviceState),
    "replay": msgspec.json.Decoder(wire.WireAlertReplay),
    "acknowledge": msgspec.json.Decoder(wire.WireControlAnswer),
    "figures": msgspec.json.Decoder(wire.WireDayFigures),  # (retained, or an answer to a request)
}
FIGURES_RETRY_S = 30.0  # a hall is asked for missing days at most this often (a link coming up: at once)
KEEP_FIGURES_DAYS = 62  # days of figures kept in memory (the store keeps them all)
ACK_WAIT_S = 10.0  # how long the console's request waits for the engine's answer
KEEP_ACKNOWLEDGEMENTS_S = 2 * 86400.0  # answered acknowledgements kept in memory


class StoreFailed(RuntimeError):
    pass


class BrokerUnreachable(RuntimeError):
    pass


def subscriptions(root: str) -> list[str]:
    """Every hall's topics, published directly on the county broker or bridged up by a township."""
    direct = [f"{root}/+/{t}" for t in STATE_TOPICS]
    return direct + [f"{BRIDGE_ROOT}/+/{t}" for t in direct] + [f"{BRIDGE_ROOT}/+/bridge/state"]


def classify(topic: str, root: str) -> tuple[str, str, str, str] | None:
    """(prefix, site, kind, key) of a topic the county reads, or None."""
    prefix = ""
    if topic.startswith(BRIDGE_ROOT + "/"):
        township, _, rest = topic[len(BRIDGE_ROOT) + 1 :].partition("/")
        prefix, topic = f"{BRIDGE_ROOT}/{township}/", rest
        if topic == "bridge/state":
            return prefix, "", "link", township
    if not topic.startswith(root + "/"):
        return None
    site, _, rest = topic[len(root) + 1 :].partition("/")
    parts = rest.split("/")
    if rest == "alerts":
        return prefix, site, "alert", ""
    if rest == "queue/state":
        return prefix, site, "queue", ""
    if rest == "figures/day":
        return prefix, site, "figures", ""
    if len(parts) == 3 and parts[0] in ("window", "device") and parts[2] == "state":
        return prefix, site, parts[0], parts[1]
    if len(parts) == 3 and parts[0] == "control" and parts[2] == "reply":
        return prefix, site, parts[1], ""
    return None


class CountyService:
    def __init__(
        self,
        sites: Iterable[Site],
        *,
        broker: mqtt_shell.BrokerSettings,
        db_path: str | Path,
        root: str = "hallwatch",
        client_id: str = DEFAULT_CLIENT_ID,
        clock: Clock | None = None,
        connect_timeout: float = 30.0,
    ):
        self.county = County(sites, official_calendar())
        self.broker = broker
        self.db_path = Path(db_path)
        self.root = root
        self.client_id = client_id
        self.clock = clock or Clock()
        self.connect_timeout = connect_timeout
        # Called with [(kind, body)] once a batch is committed: the console's live updates.
        self.observers: list[Callable[[list[tuple[str, dict]]], None]] = []
        self.connected = False
        self.received = 0
        self.duplicates = 0
        self.refused = 0
        self.stale = 0  # messages from a hall's engine store the county has moved on from
        self.store: CountyStore | None = None
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._changes = Changes()
        self._pushes: list[tuple[str, dict]] = []
        self._acks: list[tuple[int, int, int]] = []  # (mid, qos, generation) to acknowledge after commit
        self._writing = False
        self._parts: dict[tuple[str, str], dict[int, list[dict]]] = {}  # replay answers being gathered
        self.acknowledgements: dict[str, Acknowledgement] = {}
        self._answers: dict[str, list[asyncio.Future[Acknowledgement]]] = {}
        self._answered_now: list[Acknowledgement] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="county-store")
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None
        self.ready = asyncio.Event()

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            self.store = CountyStore(self.db_path)
            self.store.load(
                self.county,
                resolved_since=self.clock.now() - KEEP_RESOLVED_S,
                figures_since=date.fromtimestamp(self.clock.now() - KEEP_FIGURES_DAYS * 86400).isoformat(),
            )
            since = self.clock.now() - KEEP_ACKNOWLEDGEMENTS_S
            self.acknowledgements = {a.id: a for a in self.store.acknowledgements(since=since)}
        except StoreRefused as exc:
            raise StoreFailed(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreFailed(f"county store {self.db_path} cannot be opened: {exc}") from None
        log.info(
            "hallwatch county starting: %d hall(s) known, broker %s, store %s",
            len(self.county.halls),
            self.broker.describe(),
            self.db_path,
        )
        tasks = [asyncio.create_task(self._session()), asyncio.create_task(self._housekeeping())]
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            while self._writing:
                await asyncio.sleep(0.01)
            self.store.close()
            self._executor.shutdown()
            log.info("hallwatch county stopped")
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping.set()

    def _fail(self, exc: BaseException) -> None:
        log.critical("%s", exc)
        self._failure = exc
        self._stopping.set()

    async def _session(self) -> None:
        first_attempt = time.monotonic()
        ever_connected = False
        attempt = 0
        while True:
            client = mqtt_shell.new_client(self.broker, identifier=self.client_id, clean_session=False)
            mqtt_shell.enable_manual_ack(client)
            self._generation += 1
            generation = self._generation
            self._client = client
            mqtt_shell.on_message(
                client, lambda topic, payload, mid, qos, dup, g=generation: self._receive(topic, payload, mid, qos, g)
            )
            mqtt_shell.on_connected(client, self._link_up)
            try:
                async with client:
                    ever_connected, attempt = True, 0
                    log.info("connected to %s as %s", self.broker.describe(), self.client_id)
                    await client.subscribe([(f, 1) for f in subscriptions(self.root)])
                    for hall in self.county.halls.values():  # what the session may not have kept
                        if hall.heard:
                            self._ask_replay(hall)
                            self._ask_figures(hall)
                    for acknowledgement in self.acknowledgements.values():  # not answered yet: again
                        if acknowledgement.state == "sent":
                            self._send_acknowledgement(acknowledgement)
                    if not self.ready.is_set():
                        log.info(
                            "ready: subscribed to every hall under %s/ and %s/+/%s/", self.root, BRIDGE_ROOT, self.root
                        )
                    self.ready.set()
                    await mqtt_shell.until_disconnected(client)
            except aiomqtt.MqttCodeError as exc:
                self.connected, self._client = False, None
                if not ever_connected and exc.rc in (4, 5, 134, 135):
                    self._fail(BrokerUnreachable(f"broker {self.broker.describe()} refused the county service: {exc}"))
                    return
                log.warning("broker %s: %s; retrying", self.broker.describe(), exc)
            except aiomqtt.MqttError as exc:
                self.connected, self._client = False, None
                if not ever_connected and time.monotonic() - first_attempt > self.connect_timeout:
                    self._fail(BrokerUnreachable(f"cannot reach broker {self.broker.describe()}: {exc}"))
                    return
                log.warning("broker %s unreachable: %s; retrying", self.broker.describe(), exc)
            attempt += 1
            await asyncio.sleep(min(BACKOFF_MAX_S, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))

    def _link_up(self, session_present: bool) -> None:
        self.connected = True
        if not session_present:
            log.info(
                "the broker holds no session for %s: asking every hall's engine for what was missed", self.client_id
            )

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            now = time.monotonic()
            for hall in self.county.halls.values():
                if self.county.needs_replay(hall, now):
                    self._ask_replay(hall)
            self.county.forget_old(self.clock.now())
            before = self.clock.now() - KEEP_ACKNOWLEDGEMENTS_S
            for ack_id, record in list(self.acknowledgements.items()):
                if record.state != "sent" and record.asked_at < before:
                    del self.acknowledgements[ack_id]

    # -- receiving -----------------------------------------------------------------------
    def _receive(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        self.received += 1
        self._acks.append((mid, qos, generation))
        try:
            self._apply(topic, payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as exc:
            self.refused += 1
            log.warning("county: %s: message refused: %s", topic, exc)
        self._flush_soon()

    def _apply(self, topic: str, payload: bytes) -> None:
        where = classify(topic, self.root)
        if where is None:
            raise ValueError("not a topic the county service reads")
        prefix, site, kind, key = where
        if kind == "link":
            up = payload.strip() == b"1"
            came_back = up and self.county.links.get(key) is False
            self.county.links[key] = up
            self._pushes.append(("link", {"township": key, "up": up}))
            if came_back:  # the days it missed, if the retained figures did not bring them all
                for hall in self.county.halls.values():
                    if hall.prefix == prefix:
                        self._ask_figures(hall, force=True)
            return
        if kind not in _decoders:
            raise ValueError(f"no such reply: {kind}")
        body: dict = msgspec.to_builtins(_decoders[kind].decode(payload))
        first = site not in self.county.halls or not self.county.halls[site].heard
        hall = self.county.hall(site, prefix)
        if first:
            self._changes.halls[site] = hall
        changes = self._changes
        if kind in ("alert", "replay", "figures") and not self._source(hall, body.get("store_id")):
            return
        if kind == "alert":
            applied = self.county.alert(hall, body)
            if not applied.new:
                self.duplicates += 1
                return
            changes.halls[site] = hall
            changes.transitions.append((site, body["seq"], body["id"], body["state"], self.clock.now()))
            if applied.latest:
                changes.alerts.append((site, body))
                self._pushes.append(("alert", self.county.named(hall, body)))
            if self.county.needs_replay(hall, time.monotonic()):
                self._ask_replay(hall)
        elif kind == "replay":
            self._gather_replay(hall, body)
        elif kind == "acknowledge":
            self._answered(hall, body)
        elif kind == "figures":
            if body["site"] != site:
                raise ValueError(f"figures of {body['site']} on the topic of {site}")
            gap = hall.figures_gap(body["day"])
            if self.county.figures(hall, body):
                changes.figures.append(
                    (site, body["day"], body["final"], msgspec.json.encode(body).decode(), self.clock.now())
                )
                self._pushes.append(("figures", {"site": site, "day": body["day"]}))
            if gap is not None:
                self._ask_figures(hall, after=gap)
        elif kind == "window":
            self.county.window(hall, body)
            changes.windows.append((site, key, msgspec.json.encode(body).decode()))
            self._pushes.append(("window", {"site": site, **body}))
        elif kind == "queue":
            self.county.queue(hall, body)
            changes.queues.append((site, msgspec.json.encode(body).decode()))
            self._pushes.append(("queue", {"site": site, **body}))
        elif kind == "device":
            self.county.device(hall, body)
            changes.devices.append((site, key, msgspec.json.encode(body).decode()))
            self._pushes.append(("device", {"site": site, **body}))
        if first and self.county.needs_replay(hall, time.monotonic()):
            self._ask_replay(hall)
        if first:
            self._ask_figures(hall)

    def _source(self, hall: Hall, store_id: str | None) -> bool:
        """Note the engine store a message comes from (model.County.source); False: it comes
        from one the county has moved on from, and is dropped."""
        now = self.clock.now()
        source = self.county.source(hall, store_id, now)
        if source.kind == RETIRED:
            self.stale += 1
            log.warning(
                "county: %s: a message from the engine store %s, which was replaced: dropped", hall.site, store_id
            )
            return False
        if source.kind == FIRST:
            self._changes.halls[hall.site] = hall  # (its store kept)
        if source.kind != NEW:
            return True
        self._changes.halls[hall.site] = hall
        log.warning(
            "county: %s's engine started on a new store (%s, was %s): its alert numbers start again; "
            "the %d alert(s) of the previous store are retired, no longer live",
            hall.site,
            store_id,
            source.previous,
            source.retired_alerts,
        )
        changes, previous = self._changes, source.previous or ""
        changes.retired_alerts += [
            (site, previous, a["id"], msgspec.json.encode(a).decode(), now)
            for site, a in changes.alerts
            if site == hall.site
        ]
        changes.retired_transitions += [(t[0], previous, *t[1:]) for t in changes.transitions if t[0] == hall.site]
        changes.alerts = [(site, a) for site, a in changes.alerts if site != hall.site]
        changes.transitions = [t for t in changes.transitions if t[0] != hall.site]
        changes.retire.append((hall.site, now))
        for record in self.acknowledgements.values():  # not to be applied to another alert of that id
            if record.site == hall.site and record.state == "sent":
                record.answered(False, ErrorCode.UNKNOWN_ALERT.value, STORE_REPLACED, now)
                changes.acknowledgements.append(record)
                self._pushes.append(("acknowledgement", asdict(record)))
                self._answered_now.append(record)
        self._ask_replay(hall)
        return True

    def _gather_replay(self, hall: Hall, answer: dict) -> None:
        parts = self._parts.setdefault((hall.site, answer["re"]), {})
        parts[answer["part"]] = answer["alerts"]
        if len(parts) < answer["parts"]:
            return
        del self._parts[(hall.site, answer["re"])]
        alerts = [a for n in sorted(parts) for a in parts[n]]
        changed = self.county.replay(hall, answer["after"], answer["to"], alerts)
        self._changes.halls[hall.site] = hall
        self._changes.alerts += [(hall.site, a) for a in changed]
        self._pushes += [("alert", self.county.named(hall, a)) for a in changed]
        log.info(
            "county: %s replayed %d alert(s) up to #%d (%d changed what was had)",
            hall.site,
            len(alerts),
            answer["to"],
            len(changed),
        )

    # -- acknowledging at the source ---------------------------------------------------------
    async def acknowledge(
        self, site: str, alert: str, *, by: str, note: str, ack_id: str | None = None, wait: float = ACK_WAIT_S
    ) -> Acknowledgement:
        """Ask the engine that owns ``site`` to acknowledge ``alert`` for ``by``; the record,
        once answered or after ``wait`` seconds (then still ``sent``: it is sent again on every
        reconnection until answered). ``ack_id`` names it: the same id again is a resend."""
        hall = self.county.halls.get(site)
        if hall is None or not hall.heard:
            raise KeyError(site)
        record = self.acknowledgements.get(ack_id or "")
        if record is None or (record.site, record.alert) != (site, alert):
            record = Acknowledgement(
                ack_id or f"county-ack-{uuid.uuid4().hex[:16]}", site, alert, by.strip(), note.strip(), self.clock.now()
            )
            assert self.store is not None
            # Kept before it is sent: a county service killed meanwhile sends it again.
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.store.write, Changes(acknowledgements=[record])
            )
            self.acknowledgements[record.id] = record
        waiter: asyncio.Future[Acknowledgement] = asyncio.get_running_loop().create_future()
        self._answers.setdefault(record.id, []).append(waiter)
        self._send_acknowledgement(record)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), wait)
        except TimeoutError:
            return record
        finally:
            waiters = self._answers.get(record.id, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def _send_acknowledgement(self, record: Acknowledgement) -> None:
        client = self._client
        hall = self.county.halls.get(record.site)
        if client is None or not self.connected or hall is None:
            return  # sent on (re)connection
        request = msgspec.to_builtins(
            wire.WireAcknowledgeRequest(
                v=wire.PROTOCOL_VERSION,
                id=record.id,
                alert=record.alert,
                by=record.by,
                note=record.note,
                store_id=hall.store_id,
            )
        )
        topic = hall.prefix + wire.Topics(self.root).control(record.site, "acknowledge")
        mqtt_shell.publish_nowait(client, topic, wire.encode(request), 1, False)

    def _answered(self, hall: Hall, answer: dict) -> None:
        record = self.acknowledgements.get(answer["re"])
        if record is None or record.site != hall.site:
            log.warning("county: %s answered acknowledgement %s, not sent from here", hall.site, answer["re"])
            return
        record.answered(answer["ok"], answer["error"], answer["message"], self.clock.now())
        self._changes.acknowledgements.append(record)
        self._pushes.append(("acknowledgement", asdict(record)))
        self._answered_now.append(record)  # (told the console's request once committed)

    def _ask_figures(self, hall: Hall, *, after: str | None = None, force: bool = False) -> None:
        """Ask the hall's engine for its figures of the days after ``after`` (default: the
        latest day had; none had: its last week)."""
        client = self._client
        if client is None or not self.connected:
            return
        if not force and after is None and time.monotonic() - hall.figures_asked_at < FIGURES_RETRY_S:
            return
        hall.figures_asked_at = time.monotonic()
        after = after or max(hall.figures, default=None)
        request = msgspec.to_builtins(
            wire.WireFiguresRequest(v=wire.PROTOCOL_VERSION, id=f"figures-{uuid.uuid4().hex[:16]}", after=after)
        )
        topic = hall.prefix + wire.Topics(self.root).control(hall.site, "figures")
        mqtt_shell.publish_nowait(client, topic, wire.encode(request), 1, False)

    def _ask_replay(self, hall: Hall) -> None:
        client = self._client
        if client is None or not self.connected:
            return
        hall.replay_asked_at = time.monotonic()
        after = hall.seq.covered or 0
        request = {"v": wire.PROTOCOL_VERSION, "id": f"replay-{uuid.uuid4().hex[:16]}", "after": after}
        topic = hall.prefix + wire.Topics(self.root).control(hall.site, "replay")
        mqtt_shell.publish_nowait(client, topic, wire.encode(request), 1, False)

    # -- committing ------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))

    async def _flush(self) -> None:
        """Commit what arrived, then acknowledge it and show it; again while more arrives."""
        loop = asyncio.get_running_loop()
        try:
            while self._acks or self._changes:
                changes, self._changes = self._changes, Changes()
                acks, self._acks = self._acks, []
                pushes, self._pushes = self._pushes, []
                answered, self._answered_now = self._answered_now, []
                if changes:
                    assert self.store is not None
                    await loop.run_in_executor(self._executor, self.store.write, changes)
                for record in answered:
                    for waiter in self._answers.pop(record.id, []):
                        if not waiter.done():
                            waiter.set_result(record)
                client = self._client
                if client is not None:
                    for mid, qos, generation in acks:
                        if generation == self._generation:
                            mqtt_shell.ack(client, mid, qos)
                for observer in self.observers:
                    observer(pushes)
        except (sqlite3.Error, OSError) as exc:
            self._fail(StoreFailed(f"county store {self.db_path}: a commit failed: {exc}"))
        finally:
            self._writing = False

    @property
    def healthy(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to the broker"
        return True, "ok"
