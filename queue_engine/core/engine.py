"""The core's front door: every site of one engine process, each an independent Hall.

``handle(event, now)`` never raises for a refused event: the refusal becomes a failure
``Reply`` (the shell decides whether the device expects one), and the Hall underneath has
changed nothing. ``tick(now)`` runs what is due; ``next_deadline()`` says when that is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .alerts import Alert
from .calendar import OfficialCalendar
from .cases import Case, InformedNotice
from .commands import Command, Reply
from .errors import ErrorCode, Refused
from .events import ENGINE_EVENTS, Event
from .hall import Hall
from .model import Ticket, WindowState

if TYPE_CHECKING:
    from ..config import Site


class UnknownSite(KeyError):
    pass


class Engine:
    def __init__(self, sites: Iterable[Site], official: OfficialCalendar | None = None):
        self.halls: dict[str, Hall] = {site.id: Hall(site, official) for site in sites}

    def hall(self, site: str) -> Hall:
        try:
            return self.halls[site]
        except KeyError:
            raise UnknownSite(site) from None

    def restore(
        self,
        *,
        now: float,
        tickets: list[Ticket],
        windows: list[WindowState],
        alerts: Sequence[Alert] = (),
        alert_seqs: dict[str, int] | None = None,
        transition_seqs: dict[str, int] | None = None,
        devices: Sequence[tuple[str, str, bool, str | None, float]] = (),
        totals: Sequence[tuple[str, str, str, str, str, float]] = (),
        cases: Sequence[Case] = (),
        notices: Sequence[InformedNotice] = (),
    ) -> list[Command]:
        """``devices`` rows are (site, device, online, reason, changed_at); ``totals`` rows are
        (site, day, subject kind, subject, category, seconds)."""
        commands: list[Command] = []
        for site, hall in self.halls.items():
            commands += hall.restore(
                now=now,
                tickets=[t for t in tickets if t.site == site],
                windows=[w for w in windows if w.site == site],
                alerts=[a for a in alerts if a.site == site],
                alert_seq=(alert_seqs or {}).get(site, 0),
                transition_seq=(transition_seqs or {}).get(site, 0),
                devices=[row[1:] for row in devices if row[0] == site],
                totals=[row[1:] for row in totals if row[0] == site],
                cases=[c for c in cases if c.site == site],
                notices=[n for n in notices if n.site == site],
            )
        return commands

    def handle(self, event: Event, now: float) -> list[Command]:
        hall = self.hall(event.site)
        if isinstance(event, ENGINE_EVENTS):
            # Before the timers: a deadline that fell while the engine was blind must be
            # judged knowing it was blind.
            return hall.handle(event, now) + hall.tick(now)
        commands = hall.tick(now)
        try:
            commands += hall.handle(event, now)
        except Refused as refusal:
            commands += refusal.pending
            commands.append(
                Reply(
                    site=event.site,
                    device=event.device,
                    re=event.id,
                    ok=False,
                    error=refusal.code,
                    message=refusal.message,
                )
            )
        return commands

    def flush_accounting(self, now: float) -> list[Command]:
        """Every site's time totals brought up to ``now`` (before a clean stop)."""
        return [c for hall in self.halls.values() for c in hall.supervisor.flush_accounting(now)]

    def tick(self, now: float) -> list[Command]:
        commands: list[Command] = []
        for hall in self.halls.values():
            if now >= hall.next_deadline():
                commands += hall.tick(now)
        return commands

    def next_deadline(self) -> float:
        return min((hall.next_deadline() for hall in self.halls.values()), default=math.inf)


__all__ = ["Engine", "UnknownSite", "ErrorCode"]
