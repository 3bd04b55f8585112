"""What a batch shows to devices, boards and operators, rendered when the batch is closed:
replies, calls, alert transitions and rejections in order, and the window and queue states
coalesced (one message per window and per site per batch), taken from the core at that
moment, which is exactly the state the batch commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import wire
from .core.commands import AlertChanged, AnnounceCall, DeviceChanged, QueueChanged, WindowChanged
from .core.engine import Engine
from .records import Outbound, Processed

if TYPE_CHECKING:
    from .config import Site


class Outputs:
    """Renders what a committed batch shows to devices, boards and operators. Window and
    queue states are coalesced: one message per window and per site per batch."""

    def __init__(self, engine: Engine, sites: Iterable[Site], topics: wire.Topics):
        self.engine = engine
        self.topics = topics
        self._tz = {s.id: s.tz for s in sites}
        self.store_id: str | None = None  # the store's identity, published with each alert transition (restore)

    def render(self, batch: Iterable[Processed]) -> list[Outbound]:
        """The batch's own messages, in order: rejections, replies, calls, alert transitions."""
        messages: list[Outbound] = []
        for item in batch:
            if item.rejection is not None:
                r = item.rejection
                body = wire.encode(wire.rejection_payload(r.topic, r.code, r.reason, r.payload))
                if r.site is not None:
                    messages.append(Outbound(self.topics.rejected(r.site), body, site=r.site, kind="rejection"))
            if item.reply is not None:
                messages.append(item.reply)
            for command in item.commands:
                if isinstance(command, AnnounceCall):
                    body = wire.encode(wire.call_payload(command, self._tz[command.site]))
                    messages.append(Outbound(self.topics.call(command.site), body, site=command.site, kind="call"))
                elif isinstance(command, AlertChanged):
                    messages.append(self.alert(command.alert))
        return messages

    def render_states(self, batch: Iterable[Processed], now: float) -> list[Outbound]:
        """The window, queue and device states the batch changed, one message per window,
        site and device, taken from the core now: call it before the core handles anything else."""
        windows: dict[tuple[str, str], WindowChanged] = {}
        queues: set[str] = set()
        devices: dict[tuple[str, str], None] = {}
        for item in batch:
            for command in item.commands:
                if isinstance(command, WindowChanged):
                    windows[(command.site, command.window.window)] = command
                elif isinstance(command, QueueChanged):
                    queues.add(command.site)
                elif type(command) is DeviceChanged:
                    devices[(command.site, command.device)] = None
        messages = [self.window_state(site, command.window, now) for (site, _), command in windows.items()]
        messages += [self.queue_state(site, now) for site in sorted(queues)]
        messages += [m for site, device in devices if (m := self.device_state(site, device)) is not None]
        return messages

    def device_state(self, site: str, device_id: str) -> Outbound | None:
        device = self.engine.hall(site).supervisor.devices.get(device_id)
        if device is None:
            return None
        return Outbound(
            self.topics.device_state(site, device_id),
            wire.encode(wire.device_payload(device, self._tz[site])),
            retain=True,
            site=site,
            kind="device",
        )

    def window_state(self, site: str, window, now: float) -> Outbound:
        hall = self.engine.hall(site)
        body = wire.window_payload(
            window,
            self._tz[site],
            name=hall.window_name(window.window),
            staff_name=hall.staff_name(window.staff),
            staffing=hall.staffing(window.window, now),
        )
        return Outbound(
            self.topics.window_state(site, window.window), wire.encode(body), retain=True, site=site, kind="window"
        )

    def alert(self, alert) -> Outbound:
        hall = self.engine.hall(alert.site)
        body = wire.alert_payload(
            alert, self._tz[alert.site], staff_name=hall.staff_name(alert.staff), store_id=self.store_id
        )
        return Outbound(self.topics.alerts(alert.site), wire.encode(body), site=alert.site, kind="alert")

    def queue_state(self, site: str, now: float) -> Outbound:
        view = self.engine.hall(site).queue_view(now)
        return Outbound(
            self.topics.queue_state(site),
            wire.encode(wire.queue_payload(view, now, self._tz[site])),
            retain=True,
            site=site,
            kind="queue",
        )
