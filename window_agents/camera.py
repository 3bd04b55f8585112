"""电子监察 camera bridge: a Frigate NVR's MQTT output -> hallwatch camera events.

Frigate (docs.frigate.video/integrations/mqtt) publishes, under its ``topic_prefix``
(default ``frigate``):

- ``frigate/available``: ``online`` / ``offline`` (the NVR itself; its Last Will);
- ``frigate/<zone>/<object>``: the number of objects of that kind in a zone, e.g.
  ``frigate/w03/person`` = ``1``; published when the count changes;
- ``frigate/<camera>/status/detect``: health of the camera's detect stream (Frigate 0.16+):
  ``online``, ``offline`` (the stream is down and being restarted) or ``disabled``;
- ``frigate/<camera>/detect/state``: whether object detection is switched ``ON`` or ``OFF``.

Each hallwatch camera device is one Frigate camera watching one window's seat through a
zone (by default the zone is named after the window). The bridge keeps one device session
per camera and maps:

| Frigate | hallwatch camera device |
|---|---|
| person count of the zone | ``presence`` {window, present: count > 0, count} on each change and heartbeat |
| ``available`` offline | status offline, reason ``lost`` (the NVR is gone: ``device_offline``) |
| ``status/detect`` disabled | status offline, reason ``shutdown`` (switched off: ``device_shutdown``) |
| ``status/detect`` offline, or ``detect/state`` OFF | ``tamper`` ``video_lost``; ``"video":"lost"``; no presence |
| back to online / ON | ``tamper`` ``restored``, then the current presence |

Until Frigate has published a zone's count the bridge sends no presence for that window
(it does not know), and a Frigate that has not said whether it is available is taken to be.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from queue_engine.config import Site
from queue_engine.shells.mqtt import BrokerSettings, new_client

from .device import Device, DeviceError, backoff_delays, wait_event

log = logging.getLogger("hallwatch.camera")

FRIGATE_NAME = r"^[A-Za-z0-9_-]{1,64}$"  # Frigate's camera and zone names; no MQTT wildcards
FrigateName = Annotated[str, Field(pattern=FRIGATE_NAME)]


# -- the mapping -----------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraEntry(_Strict):
    camera: FrigateName | None = None  # Frigate's camera name; default: the device id
    zone: FrigateName | None = None  # the Frigate zone over the window's seat; default: the window id


class BridgeMap(_Strict):
    """The bridge's mapping file (TOML)::

    prefix = "frigate"          # Frigate's mqtt.topic_prefix
    object = "person"           # the object counted as staff at the seat
    [cameras.cam-w01]           # hallwatch camera device id
    camera = "hall_east"        # Frigate camera name
    zone = "w01_seat"           # Frigate zone over window w01's seat
    """

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]{1,64}$")] = "frigate"
    object: FrigateName = "person"
    cameras: dict[str, CameraEntry] = {}


class MappingError(ValueError):
    pass


def load_map(path: str | Path) -> BridgeMap:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return BridgeMap.model_validate(data)
    except OSError as exc:
        raise MappingError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MappingError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class CameraLink:
    device: str  # hallwatch camera device id
    window: str | None  # None: the camera watches a place (a lobby), not a window's seat
    camera: str  # Frigate camera name
    zone: str | None  # Frigate zone name (None: no window, and none given)


def resolve_links(
    site: Site,
    bridge_map: BridgeMap,
    devices: list[str] | None = None,
    frigate_camera: str | None = None,
    zone: str | None = None,
) -> list[CameraLink]:
    """Which cameras this bridge serves: ``devices`` if given, else those in the map, else
    every camera of the site."""
    ids = devices or list(bridge_map.cameras) or [d.id for d in site.devices if d.kind.value == "camera"]
    if not ids:
        raise MappingError(f"site {site.id} has no camera devices")
    if (frigate_camera or zone) and len(ids) != 1:
        raise MappingError("--frigate-camera and --zone apply to one camera: name it with --device")
    for name in (frigate_camera, zone):
        if name is not None and not re.match(FRIGATE_NAME, name):
            raise MappingError(f"{name!r} is not a Frigate camera or zone name ([A-Za-z0-9_-])")
    links = []
    for device_id in ids:
        device = site.device(device_id)
        if device is None:
            raise MappingError(f"site {site.id} has no device {device_id!r}")
        if device.kind.value != "camera":
            raise MappingError(f"device {device_id!r} is a {device.kind.value}, not a camera")
        entry = bridge_map.cameras.get(device_id, CameraEntry())
        links.append(
            CameraLink(
                device=device_id,
                window=device.window,
                camera=frigate_camera or entry.camera or device_id,
                zone=zone or entry.zone or device.window,
            )
        )
    return links


# -- one camera ------------------------------------------------------------------------------
@dataclass
class CameraState:
    """What Frigate has said about one camera; None: not said yet."""

    available: bool | None = None  # Frigate as a whole
    detect_status: str | None = None  # online, offline, disabled
    detect_enabled: bool | None = None
    count: int | None = None

    def declared(self) -> tuple[bool, str | None]:
        if self.available is False:
            return False, "lost"
        if self.detect_status == "disabled":
            return False, "shutdown"
        return True, None

    def video_ok(self) -> bool:
        return self.detect_status != "offline" and self.detect_enabled is not False


@dataclass
class CameraBridge:
    link: CameraLink
    device: Device
    state: CameraState = field(default_factory=CameraState)
    reported_video: bool | None = None  # what the engine was last told (None: nothing yet)
    reported_presence: tuple[bool, int] | None = None
    updates: asyncio.Queue = field(default_factory=asyncio.Queue)
    presence_sent: int = 0

    def __post_init__(self) -> None:
        self.device.set_heartbeat_fields(video="ok")
        self.device.on_heartbeat(self._repeat_presence)

    async def work(self) -> None:
        """Apply Frigate's updates in order, telling the engine what changed."""
        while True:
            name, value = await self.updates.get()
            setattr(self.state, name, value)
            await self.sync()

    async def sync(self) -> None:
        online, reason = self.state.declared()
        if (online, reason) != (self.device.declared_online, self.device.declared_reason):
            await self.device.declare(online, reason)
            self.reported_video = None
            self.reported_presence = None
        if not online:
            return
        video = self.state.video_ok()
        self.device.set_heartbeat_fields(video="ok" if video else "lost")
        if video != self.reported_video:
            try:
                await self.device.send("tamper", kind="restored" if video else "video_lost")
                self.reported_video = video
            except DeviceError as err:
                log.warning("%s: tamper not sent (%s); will retry", self.link.device, err)
                return
            if not video:
                self.reported_presence = None
        if video and self.state.count is not None:
            presence = (self.state.count > 0, self.state.count)
            if presence != self.reported_presence:
                await self._presence(presence)

    async def _presence(self, presence: tuple[bool, int]) -> None:
        try:
            await self.device.send("presence", window=self.link.window, present=presence[0], count=presence[1])
            self.reported_presence = presence
            self.presence_sent += 1
        except DeviceError as err:
            log.warning("%s: presence not sent (%s)", self.link.device, err)

    async def _repeat_presence(self) -> None:
        """After each heartbeat: presence at least once per heartbeat interval."""
        if self.device.declared_online and self.state.video_ok() and self.state.count is not None:
            await self._presence((self.state.count > 0, self.state.count))
        elif self.device.declared_online and self.reported_video is None:
            await self.sync()  # a tamper that could not be sent before


# -- Frigate's side --------------------------------------------------------------------------
class FrigateRouter:
    """Frigate topics -> (bridge, state field, value)."""

    def __init__(self, bridges: list[CameraBridge], prefix: str, object_name: str):
        self.prefix = prefix
        self.bridges = bridges
        self.available_topic = f"{prefix}/available"
        self.routes: dict[str, list[tuple[CameraBridge, str]]] = {}
        for bridge in bridges:
            link = bridge.link
            if link.window is not None:  # (a camera that watches no window has no seat to report)
                self._add(f"{prefix}/{link.zone}/{object_name}", bridge, "count")
            self._add(f"{prefix}/{link.camera}/status/detect", bridge, "detect_status")
            self._add(f"{prefix}/{link.camera}/detect/state", bridge, "detect_enabled")

    def _add(self, topic: str, bridge: CameraBridge, name: str) -> None:
        self.routes.setdefault(topic, []).append((bridge, name))

    def subscriptions(self) -> list[str]:
        return [self.available_topic, *self.routes]

    def route(self, topic: str, payload: bytes) -> None:
        text = payload.decode("utf-8", errors="replace").strip()
        if topic == self.available_topic:
            value = {"online": True, "offline": False}.get(text.lower())
            if value is None:
                log.warning("frigate: unexpected %s payload %r", topic, text[:40])
                return
            for bridge in self.bridges:
                bridge.updates.put_nowait(("available", value))
            return
        for bridge, name in self.routes.get(topic, ()):
            value = _parse(name, text)
            if value is None:
                log.warning("frigate: unexpected %s payload %r", topic, text[:40])
                continue
            bridge.updates.put_nowait((name, value))

    def connection_lost(self) -> None:
        """Without its broker the bridge cannot see Frigate: as good as unavailable."""
        for bridge in self.bridges:
            bridge.updates.put_nowait(("available", False))

    def connected(self) -> None:
        """Until Frigate's retained ``available`` says otherwise, it is taken to be up."""
        for bridge in self.bridges:
            bridge.updates.put_nowait(("available", None))


def _parse(name: str, text: str):
    if name == "count":
        try:
            count = int(float(text))
        except ValueError:
            return None
        return count if 0 <= count <= 1000 else None
    if name == "detect_status":
        value = text.lower()
        return value if value in ("online", "offline", "disabled") else None
    if name == "detect_enabled":
        return {"ON": True, "OFF": False}.get(text.upper())
    return None


async def follow_frigate(router: FrigateRouter, broker: BrokerSettings, client_id: str, stop: asyncio.Event) -> None:
    """Subscribe to Frigate's topics on its broker, reconnecting with backoff."""
    delays = backoff_delays(0.5, 30.0)
    was_connected = False
    while not stop.is_set():
        client = new_client(broker, identifier=client_id)
        try:
            async with client:
                for topic in router.subscriptions():
                    await client.subscribe(topic, qos=1)
                log.info("frigate: following %s on %s", router.prefix, broker.describe())
                router.connected()
                was_connected = True
                delays = backoff_delays(0.5, 30.0)
                reader = asyncio.create_task(_read(client, router))
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                reader.cancel()
                await asyncio.gather(reader, stopper, return_exceptions=True)
                if reader in done and not reader.cancelled() and (failure := reader.exception()) is not None:
                    raise failure
        except aiomqtt.MqttError as err:
            log.warning("frigate: broker %s: %s; reconnecting", broker.describe(), err)
            if was_connected:
                router.connection_lost()
                was_connected = False
        if stop.is_set():
            return
        await wait_event(stop, next(delays))


async def _read(client: aiomqtt.Client, router: FrigateRouter) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        router.route(message.topic.value, payload)


async def run(
    bridges: list[CameraBridge], router: FrigateRouter, frigate_broker: BrokerSettings, frigate_client_id: str
) -> int:
    """Run until cancelled (SIGINT/SIGTERM); the caller closes the devices in order."""
    stop = asyncio.Event()
    workers = [asyncio.create_task(b.work(), name=f"bridge-{b.link.device}") for b in bridges]
    follower = asyncio.create_task(follow_frigate(router, frigate_broker, frigate_client_id, stop))
    try:
        await asyncio.gather(follower, *workers)
    finally:
        stop.set()
        for task in (follower, *workers):
            task.cancel()
        await asyncio.gather(follower, *workers, return_exceptions=True)
    return 0
