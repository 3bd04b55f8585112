"""The metrics shell: Prometheus metrics of the halls and of the engine itself.

Two sources, one registry (``EngineMetrics.registry``):

- Counters and histograms are fed from what each committed batch did (``committed``),
  after the transaction that records it, so a metric never counts what the store then
  forgets. The batch's commands are read once, aggregated, and the counters are moved once
  per label set per batch, not once per message.
- Gauges are read from the core's current state at scrape time (``HallStateCollector``),
  so they cannot drift from it and cost nothing between scrapes.

Labels are bounded by the site configuration: site, service, window, device (configured
devices only), device kind, outcome, reason, alert kind, severity and state, rating score.
Never a ticket number or a person's id. Every metric is listed in ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..core import vocabulary
from ..core.commands import AlertChanged, RatingRecorded, TicketChanged, TicketTransition
from ..core.events import Outcome
from ..core.figures import vacancy_seconds
from ..core.model import Staffing, TicketStatus

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..records import Processed

PREFIX = "hallwatch"
WORDS = vocabulary.as_json()

# Histogram buckets, in base units.
WAIT_BUCKETS = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800)
SERVICE_BUCKETS = (30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600)
COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

ALERT_STATES = ("firing", "acknowledged")

_WAITING = TicketStatus.WAITING
T = TicketTransition

# Keys of the per-batch aggregate: which counter a (key, *labels) tuple moves.
_ISSUED, _CALLED_K, _SERVED, _NO_SHOW_K, _TRANSFERRED, _EXPIRED_K, _RATED, _ALERTED = range(8)
_REJECTED, _REFUSED, _DUPLICATE = range(8, 11)


def _version() -> str:
    try:
        return metadata.version("hallwatch")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _value(x) -> str:
    return str(getattr(x, "value", x))


def hall_alerts(hall) -> Iterable:
    """The hall's open alerts, wherever the core keeps them (none if it keeps none)."""
    alerts = getattr(hall, "alerts", None)
    if alerts is None:
        alerts = getattr(getattr(hall, "supervisor", None), "alerts", None) or {}
    return alerts.values() if isinstance(alerts, dict) else alerts


def hall_devices(hall) -> list[tuple[str, str, bool]]:
    """(device id, kind, online) for every configured device of the hall."""
    live = getattr(getattr(hall, "supervisor", None), "devices", None)
    if live is not None:
        return [(d.id, d.kind, d.online is True) for d in live.values()]
    return [(d.id, _value(d.kind), False) for d in hall.site.devices]


def site_open(hall, now: float) -> bool:
    """Within the site's working hours on a working day."""
    working = getattr(getattr(hall, "supervisor", None), "working", None)
    if callable(working):
        return bool(working(now))
    local = datetime.fromtimestamp(now, hall.site.tz)
    if local.weekday() >= 5:
        return False
    moment = local.time()
    return any(start <= moment < end for start, end in hall.site.hours.spans())


class HallStateCollector(Collector):
    """Gauges read from the core's current state at scrape time. Runs on the event loop's
    thread (the aiohttp handler calls it), so it sees the core between two events."""

    def __init__(self, app: EngineApp):
        self.app = app
        self.version = _version()

    def describe(self):
        return list(self._families().values())

    def _families(self) -> dict[str, GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        p = PREFIX
        return {
            "info": InfoMetricFamily(f"{p}_build", "The engine's version.", labels=["version"]),
            "words": GaugeMetricFamily(
                f"{p}_label_info",
                "The product's vocabulary (always 1): the Chinese label of each value of a table (alert_kind, "
                "staffing, vacancy, outcome, device_kind, ...), for dashboards to join on.",
                labels=["table", "value", "label"],
            ),
            "site_info": GaugeMetricFamily(
                f"{p}_site_info",
                "A site this engine serves (always 1), with its name and kind (county, township, village).",
                labels=["site", "name", "kind"],
            ),
            "site_open": GaugeMetricFamily(
                f"{p}_site_open", "1 within the site's working hours on a working day, else 0.", labels=["site"]
            ),
            "waiting": GaugeMetricFamily(
                f"{p}_tickets_waiting", "Tickets waiting to be called, by service.", labels=["site", "service"]
            ),
            "oldest": GaugeMetricFamily(
                f"{p}_oldest_wait_seconds",
                "How long the longest-waiting ticket of a service has waited (0 when none waits).",
                labels=["site", "service"],
            ),
            "target": GaugeMetricFamily(
                f"{p}_wait_target_seconds",
                "The service's target waiting time (configuration).",
                labels=["site", "service"],
            ),
            "windows": GaugeMetricFamily(
                f"{p}_windows",
                "Windows by staffing state: staffed, unstaffed (open, the camera sees nobody), unverified (open, "
                "no working camera), not_opened (must be staffed, nobody logged in), closed, paused.",
                labels=["site", "state"],
            ),
            "staffed": GaugeMetricFamily(
                f"{p}_window_staffed",
                "1 while the window's staffing state is staffed (open, and its camera sees somebody), else 0.",
                labels=["site", "window"],
            ),
            "vacant": GaugeMetricFamily(
                f"{p}_window_vacant_seconds",
                "空岗 today: working seconds the window was not opened although it must be staffed, open with "
                "nobody at the seat, or open with no working camera, by category.",
                labels=["site", "window", "category"],
            ),
            "online": GaugeMetricFamily(
                f"{p}_devices_online", "Configured devices online, by kind.", labels=["site", "kind"]
            ),
            "up": GaugeMetricFamily(
                f"{p}_device_up",
                "1 while the device is online, 0 when offline or not heard from since the engine started.",
                labels=["site", "device", "kind"],
            ),
            "alerts": GaugeMetricFamily(
                f"{p}_alerts_active",
                "Open (firing or acknowledged) alerts by kind, severity and state.",
                labels=["site", "kind", "severity", "state"],
            ),
            "connected": GaugeMetricFamily(
                f"{p}_mqtt_connected", "1 while the engine is connected to the broker.", labels=[]
            ),
            "reconnects": CounterMetricFamily(
                f"{p}_mqtt_reconnects", "Reconnections to the broker after a lost connection.", labels=[]
            ),
            "writable": GaugeMetricFamily(
                f"{p}_store_writable", "1 while the store's writer accepts commits.", labels=[]
            ),
            "processed": CounterMetricFamily(
                f"{p}_events_processed",
                "Inbound messages accepted (valid and authorised), including heartbeats and redeliveries.",
                labels=[],
            ),
        }

    def collect(self):
        app = self.app
        now = app.clock.now()
        f = self._families()
        f["info"].add_metric([self.version], {})
        for table, labels in WORDS.items():
            for key, label in labels.items():
                f["words"].add_metric([table, key, label], 1)
        for hall in app.engine.halls.values():
            site = hall.id
            f["site_info"].add_metric([site, hall.site.name, _value(hall.site.kind)], 1)
            f["site_open"].add_metric([site], 1 if site_open(hall, now) else 0)

            waiting: dict[str, int] = {s.code: 0 for s in hall.site.services}
            oldest: dict[str, float] = {}
            for ticket in hall.tickets.values():
                if ticket.status is _WAITING:
                    waiting[ticket.service] = waiting.get(ticket.service, 0) + 1
                    if ticket.issued_at < oldest.get(ticket.service, now):
                        oldest[ticket.service] = ticket.issued_at
            for service in hall.site.services:
                code = service.code
                f["waiting"].add_metric([site, code], waiting[code])
                f["oldest"].add_metric([site, code], max(0.0, now - oldest[code]) if code in oldest else 0.0)
                f["target"].add_metric([site, code], service.target_wait_min * 60.0)

            states = {state.value: 0 for state in Staffing}
            for window_id in hall.windows:
                state = hall.staffing(window_id, now)
                states[state.value] += 1
                f["staffed"].add_metric([site, window_id], 1 if state is Staffing.STAFFED else 0)
            for state, count in states.items():
                f["windows"].add_metric([site, state], count)
            totals = hall.supervisor.day_totals(now)
            for window_id in hall.windows:
                for category, seconds in vacancy_seconds(totals.get(("window", window_id), {})).items():
                    f["vacant"].add_metric([site, window_id, category], round(seconds, 3))

            online: dict[str, int] = {}
            for device_id, kind, up in hall_devices(hall):
                online[kind] = online.get(kind, 0) + up
                f["up"].add_metric([site, device_id, kind], 1 if up else 0)
            for kind, count in sorted(online.items()):
                f["online"].add_metric([site, kind], count)

            alerts: dict[tuple[str, str, str], int] = {}
            for alert in hall_alerts(hall):
                state = _value(alert.state)
                if state in ALERT_STATES:
                    key = (_value(alert.kind), _value(alert.severity), state)
                    alerts[key] = alerts.get(key, 0) + 1
            for (kind, severity, state), count in sorted(alerts.items()):
                f["alerts"].add_metric([site, kind, severity, state], count)

        f["connected"].add_metric([], 1 if app.connected else 0)
        f["reconnects"].add_metric([], getattr(app, "reconnects", 0))
        f["writable"].add_metric([], 1 if app.writer.writable() else 0)
        f["processed"].add_metric([], getattr(app, "processed", 0))
        yield from f.values()


class EngineMetrics:
    """The engine's registry. ``committed(batch)`` on the event loop after each commit;
    ``observe_commit(size, seconds)`` from the store's writer thread."""

    def __init__(self, app: EngineApp, registry: CollectorRegistry | None = None):
        # The *_created series double the series count and tell nothing a dashboard uses.
        disable_created_metrics()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        p, r = PREFIX, self.registry
        self.issued = Counter(f"{p}_tickets_issued_total", "Tickets issued.", ["site", "service"], registry=r)
        self.called = Counter(
            f"{p}_tickets_called_total",
            "Tickets called to a window (recalls not counted; a no-show called again counts again).",
            ["site", "service", "window"],
            registry=r,
        )
        self.served = Counter(
            f"{p}_tickets_served_total",
            "Services finished, by outcome.",
            ["site", "service", "window", "outcome"],
            registry=r,
        )
        self.no_show = Counter(
            f"{p}_tickets_no_show_total",
            "Called tickets skipped because nobody came.",
            ["site", "service", "window"],
            registry=r,
        )
        self.transferred = Counter(
            f"{p}_tickets_transferred_total",
            "Tickets handed on by a window to another service or window (service: where it went).",
            ["site", "service", "window"],
            registry=r,
        )
        self.expired = Counter(
            f"{p}_tickets_expired_total",
            "Tickets still waiting or called when the day ended.",
            ["site", "service"],
            registry=r,
        )
        self.ratings = Counter(
            f"{p}_ratings_total", "好差评 ratings by score (5 best, 1 worst).", ["site", "window", "score"], registry=r
        )
        self.alerts_raised = Counter(
            f"{p}_alerts_raised_total",
            "Alerts raised (each alert once, when it fires).",
            ["site", "kind", "severity"],
            registry=r,
        )
        self.rejected = Counter(
            f"{p}_events_rejected_total",
            "Inbound messages rejected, by reason (site empty when the topic names no site of this engine).",
            ["site", "reason"],
            registry=r,
        )
        self.refused = Counter(
            f"{p}_events_refused_total",
            "Valid events the hall refused with an error reply, by reason.",
            ["site", "reason"],
            registry=r,
        )
        self.duplicates = Counter(
            f"{p}_events_duplicate_total",
            "Redelivered events answered again and not applied again.",
            ["site"],
            registry=r,
        )
        self.wait = Histogram(
            f"{p}_wait_seconds",
            "Waiting time from issue to first call.",
            ["site", "service"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.service_time = Histogram(
            f"{p}_service_seconds",
            "Service time from start to finish.",
            ["site", "service"],
            buckets=SERVICE_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            f"{p}_store_commit_seconds",
            "Time to write and commit one batch.",
            buckets=COMMIT_SECONDS_BUCKETS,
            registry=r,
        )
        self.commit_batch = Histogram(
            f"{p}_store_commit_batch_size", "Inbound items per committed batch.", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        r.register(HallStateCollector(app))
        ProcessCollector(namespace=p, registry=r)
        self.app = app
        self._counters = {
            _ISSUED: self.issued,
            _CALLED_K: self.called,
            _SERVED: self.served,
            _NO_SHOW_K: self.no_show,
            _TRANSFERRED: self.transferred,
            _EXPIRED_K: self.expired,
            _RATED: self.ratings,
            _ALERTED: self.alerts_raised,
            _REJECTED: self.rejected,
            _REFUSED: self.refused,
            _DUPLICATE: self.duplicates,
        }
        self._children: dict[tuple, Counter] = {}  # (key, *labels) -> the labelled child
        self.prepare()

    # -- hooks -------------------------------------------------------------------------------
    def observe_commit(self, size: int, seconds: float) -> None:
        self.commit_batch.observe(size)
        self.commit_seconds.observe(seconds)

    def committed(self, batch: Iterable[Processed]) -> None:
        """Count what a committed batch did, from the transitions the core names."""
        counts: dict[tuple, int] = {}
        key: tuple[int, *tuple[str | None, ...]]  # (counter, *its labels)
        waits: list[tuple[str, str, float]] = []
        services: list[tuple[str, str, float]] = []
        for item in batch:
            rejection = item.rejection
            if rejection is not None:
                key = (_REJECTED, rejection.site or "", rejection.code)
                counts[key] = counts.get(key, 0) + 1
            elif item.duplicate:
                key = (_DUPLICATE, item.site)
                counts[key] = counts.get(key, 0) + 1
            elif item.event is not None and item.event.error is not None:
                key = (_REFUSED, item.site, item.event.error)
                counts[key] = counts.get(key, 0) + 1
            for command in item.commands:
                if type(command) is TicketChanged:
                    t = command.ticket
                    transition = command.transition
                    if transition is T.ISSUED:
                        key = (_ISSUED, t.site, t.service)
                    elif transition is T.CALLED:
                        key = (_CALLED_K, t.site, t.service, t.window or "")
                        assert t.called_at is not None  # the core stamps every call
                        if t.first_called_at == t.called_at:
                            waits.append((t.site, t.service, t.called_at - t.issued_at))
                    elif transition is T.FINISHED:
                        key = (_SERVED, t.site, t.service, t.window or "", _value(t.outcome))
                        assert t.finished_at is not None  # the core stamps every finish
                        if t.started_at is not None:
                            services.append((t.site, t.service, t.finished_at - t.started_at))
                    elif transition is T.NO_SHOW:
                        key = (_NO_SHOW_K, t.site, t.service, t.window or "")
                    elif transition is T.TRANSFERRED:
                        key = (_TRANSFERRED, t.site, t.service, t.window or "")
                    elif transition is T.EXPIRED:
                        key = (_EXPIRED_K, t.site, t.service)
                    else:
                        continue  # recalled, started, rated (a rating is counted as RatingRecorded)
                elif type(command) is RatingRecorded:
                    key = (_RATED, command.site, command.window, str(command.score))
                elif type(command) is AlertChanged:
                    a = command.alert
                    if _value(a.state) != "firing" or a.overdue or a.acknowledged_at is not None:
                        continue
                    key = (_ALERTED, a.site, _value(a.kind), a.severity)
                else:
                    continue
                counts[key] = counts.get(key, 0) + 1
        children = self._children
        for key, n in counts.items():
            child = children.get(key)
            if child is None:
                child = children[key] = self._counters[key[0]].labels(*key[1:])
            child.inc(n)
        for site, service, seconds in waits:
            self.wait.labels(site, service).observe(max(0.0, seconds))
        for site, service, seconds in services:
            self.service_time.labels(site, service).observe(max(0.0, seconds))

    def prepare(self) -> None:
        """Create at 0 the labelled series the configuration implies, so that ``increase()``
        counts the first ticket of a service, window or outcome too, and dashboards show 0
        rather than nothing before the day's first ticket."""
        outcomes = [o.value for o in Outcome]
        for hall in self.app.engine.halls.values():
            site = hall.site
            for service in site.services:  # (histograms: from their first observation, 15 series each)
                for family in (self.issued, self.expired):
                    family.labels(site.id, service.code)
            for window in site.windows:
                for score in range(1, 6):
                    self.ratings.labels(site.id, window.id, str(score))
                for code in sorted(site.window_services(window)):
                    self.called.labels(site.id, code, window.id)
                    self.no_show.labels(site.id, code, window.id)
                    for outcome in outcomes:
                        self.served.labels(site.id, code, window.id, outcome)
            self.duplicates.labels(site.id)
