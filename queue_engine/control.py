"""The county service's requests to the engine that owns a site (``{root}/{site}/control/...``),
answered on the request's reply topic (docs/protocol.md, "The county service").

- ``replay``: the county service missed alert transitions (a gap in a site's ``seq``, a
  session its broker lost, a first start): the current version of every alert changed since
  the number it names, read from the store, in parts small enough for the broker.
- ``acknowledge``: a county operator acknowledges an alert; applied by the core as the
  manager console's acknowledgement is (the same event, the same refusals), as
  ``county:{name}``, recorded in the event log, and answered on the reply topic in the
  device reply format once committed. The request's id is the event's: the same request sent
  again (a resend after a cut link, a restart of the county service) is answered the same
  and changes nothing.
- ``figures``: the site's figures of the finished days after the one it names
  (dayfigures.py), one message per day on the reply topic: what the county missed while its
  link was down. Each day's figures are also published, retained, on ``figures/day`` once the
  day is over at the site (FINAL_DELAY_S after its midnight, when its time totals are stored).

Requests arrive like device messages, on the engine's persistent session; each is
acknowledged to the broker once it has been answered (or refused), so that one the engine
dies on is delivered again. Nothing here changes the core's state without going through it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import wire
from .core import events as ev
from .core.commands import Reply
from .core.errors import ErrorCode
from .core.vocabulary import STORE_REPLACED
from .dayfigures import day_figures
from .records import Outbound, Processed
from .reports.compute import ReportError
from .shells.schema import alert_from_row, read_store_id
from .shells.storefile import StoreRefused, open_read_only

if TYPE_CHECKING:
    from .config import Site
    from .core.engine import Engine

log = logging.getLogger("hallwatch.control")

COUNTY_OPERATOR = "county"  # the role of a county operator in an acknowledgement's ``by``
FINAL_DELAY_S = 60.0  # a day's figures are final this long (clock time) after the site's midnight
FIGURES_CHECK_S = 1.0  # how often (real time) the sites' days are checked
FIGURES_DEFAULT_DAYS = 7
FIGURES_MAX_DAYS = 62

REPLAY_PART = 10  # alerts per answer: a part stays far below the broker's 16 KiB payload limit
REPLAY_RESOLVED_DAYS = 7  # resolved alerts older than this are not replayed (their numbers still count)


def replay_parts(
    db_path: str | Path, engine: Engine, site: Site, request: wire.WireReplayRequest, now: float
) -> list[dict]:
    """The answer to a replay request, from the store (what is committed: a transition decided
    but not yet committed is published by the outbox after its commit anyway)."""
    hall = engine.hall(site.id)
    conn = open_read_only(db_path, ["alerts"])
    try:
        conn.row_factory = sqlite3.Row
        store_id = read_store_id(conn)
        to = conn.execute("select coalesce(max(seq), 0) from alerts where site = ?", [site.id]).fetchone()[0]
        rows = conn.execute(
            "select * from alerts where site = ? and seq > ? and (state != 'resolved' or until >= ?) order by seq",
            [site.id, request.after, now - REPLAY_RESOLVED_DAYS * 86400.0],
        ).fetchall()
    finally:
        conn.close()
    alerts = [alert_from_row(dict(r)) for r in rows]
    payloads = [wire.alert_payload(a, site.tz, staff_name=hall.staff_name(a.staff), store_id=store_id) for a in alerts]
    chunks = [payloads[i : i + REPLAY_PART] for i in range(0, len(payloads), REPLAY_PART)] or [[]]
    return [
        {
            "v": wire.PROTOCOL_VERSION,
            "re": request.id,
            "after": request.after,
            "to": max(to, request.after),
            "part": n,
            "parts": len(chunks),
            "alerts": chunk,
            "store_id": store_id,
        }
        for n, chunk in enumerate(chunks, 1)
    ]


class Control:
    """The engine's side of the county's requests. ``publish`` hands a message to the MQTT
    shell (kept while disconnected); ``submit`` applies an event through the core
    (EngineApp.submit_event); ``ack(mid, qos)`` acknowledges the request to the broker."""

    def __init__(
        self,
        engine: Engine,
        sites: Iterable[Site],
        topics: wire.Topics,
        db_path: str,
        *,
        publish: Callable[[Outbound], None],
        publish_retained: Callable[[Outbound], None],
        submit: Callable[..., Awaitable[Processed]],
        now: Callable[[], float],
    ):
        self.engine = engine
        self.sites = {s.id: s for s in sites}
        self.topics = topics
        self.db_path = db_path
        self.publish = publish
        self.publish_retained = publish_retained
        self.submit = submit
        self._figures_of: dict[str, date] = {}  # the day whose figures each site last published
        self.store_id: str | None = None  # the store's identity (set on restore)
        self.now = now
        self._tasks: set[asyncio.Task] = set()

    def matches(self, topic: str) -> tuple[str, str] | None:
        return wire.parse_control_topic(topic, self.topics.root)

    def receive(self, site: str, request: str, payload: bytes, done: Callable[[], None]) -> None:
        """Handle one request; ``done`` is called once it is answered (acknowledge it then)."""
        task = asyncio.ensure_future(self._handle(site, request, payload, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, site_id: str, request: str, payload: bytes, done: Callable[[], None]) -> None:
        try:
            site = self.sites.get(site_id)
            if site is None:
                log.warning("control: request %s for site %s, which this engine does not serve", request, site_id)
            elif request == "replay":
                await self._replay(site, payload)
            elif request == "acknowledge":
                await self._acknowledge(site, payload)
            elif request == "figures":
                await self._figures(site, payload)
            else:
                self._reject(site_id, request, payload, "unknown_type", f"no such request: {request}")
        except wire.WireError as err:
            self._reject(site_id, request, payload, err.code, err.reason)
        except ValueError as err:  # (a date of the right shape that is no date)
            self._reject(site_id, request, payload, "bad_field", str(err))
        except (sqlite3.Error, StoreRefused, ReportError, OSError) as exc:
            # Not acknowledged: the broker delivers the request again (after a reconnection).
            log.error("control: %s for %s failed: %s", request, site_id, exc)
            return
        done()

    async def _replay(self, site: Site, payload: bytes) -> None:
        request = wire.decode_replay_request(payload)
        parts = await asyncio.to_thread(replay_parts, self.db_path, self.engine, site, request, self.now())
        topic = self.topics.control_reply(site.id, "replay")
        for part in parts:
            self.publish(Outbound(topic, wire.encode(part), site=site.id, kind="control"))
        log.info(
            "control: replayed %d alert(s) of %s after #%d up to #%d",
            sum(len(p["alerts"]) for p in parts),
            site.id,
            request.after,
            parts[0]["to"],
        )

    async def _acknowledge(self, site: Site, payload: bytes) -> None:
        request = wire.decode_acknowledge_request(payload)
        by = request.by.strip()
        if request.store_id is not None and self.store_id is not None and request.store_id != self.store_id:
            # An alert of a store this engine no longer has: the same id here is another alert.
            refusal = Reply(
                site=site.id,
                device=COUNTY_OPERATOR,
                re=request.id,
                ok=False,
                error=ErrorCode.UNKNOWN_ALERT,
                message=STORE_REPLACED,
            )
            topic = self.topics.control_reply(site.id, "acknowledge")
            self.publish(Outbound(topic, wire.encode(wire.reply_payload(refusal, site.tz)), site=site.id, kind="reply"))
            log.info(
                "control: acknowledgement %s of %s/%s refused: of store %s",
                request.id,
                site.id,
                request.alert,
                request.store_id,
            )
            return
        event = ev.Acknowledge(  # type: ignore[call-arg]  # (events._event: keyword-only fields)
            site=site.id,
            device=f"{COUNTY_OPERATOR}:{by}" if by else COUNTY_OPERATOR,
            id=request.id,
            alert=request.alert,
            note=request.note.strip(),
        )
        done = await self.submit(event, reply_topic=self.topics.control_reply(site.id, "acknowledge"), resend=True)
        reply = done.result
        if done.duplicate:
            outcome = "answered again (a resend)"
        else:
            outcome = "applied" if reply and reply.ok else f"refused: {reply and reply.error}"
        log.info("control: acknowledgement %s of %s/%s by %s: %s", request.id, site.id, request.alert, by, outcome)

    def _closed_day(self, site: Site) -> date:
        """The site's latest day whose figures are final."""
        return (datetime.fromtimestamp(self.now() - FINAL_DELAY_S, site.tz) - timedelta(days=1)).date()

    async def _figures(self, site: Site, payload: bytes) -> None:
        request = wire.decode_figures_request(payload)
        last = self._closed_day(site)
        first = last - timedelta(days=FIGURES_DEFAULT_DAYS - 1)
        if request.after is not None:
            first = max(
                date.fromisoformat(request.after) + timedelta(days=1), last - timedelta(days=FIGURES_MAX_DAYS - 1)
            )
        topic = self.topics.control_reply(site.id, "figures")
        day, now = first, self.now()
        while day <= last:
            body = await asyncio.to_thread(day_figures, self.db_path, site, day, now, final=True)
            self.publish(Outbound(topic, wire.encode(body), site=site.id, kind="figures"))
            day += timedelta(days=1)
        log.info("control: figures of %s from %s to %s sent", site.id, first, last)

    async def run_figures(self) -> None:
        """Publish each site's figures of the day just over (retained), once per day; the
        latest on start too (the broker may not have kept them)."""
        while True:
            for site in self.sites.values():
                day = self._closed_day(site)
                if self._figures_of.get(site.id) == day:
                    continue
                try:
                    body = await asyncio.to_thread(day_figures, self.db_path, site, day, self.now(), final=True)
                except (sqlite3.Error, StoreRefused, ReportError, OSError) as exc:
                    log.error("figures of %s for %s: %s", site.id, day, exc)
                    continue
                topic = self.topics.figures(site.id)
                self.publish_retained(Outbound(topic, wire.encode(body), retain=True, site=site.id, kind="figures"))
                self._figures_of[site.id] = day
                log.info("figures of %s for %s published", site.id, day)
            await asyncio.sleep(FIGURES_CHECK_S)

    def _reject(self, site: str, request: str, payload: bytes, code: str, reason: str) -> None:
        log.warning("control: %s for %s refused: %s: %s", request, site, code, reason)
        body = wire.rejection_payload(self.topics.control(site, request), code, reason, payload)
        self.publish(Outbound(self.topics.rejected(site), wire.encode(body), site=site, kind="rejection"))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
