"""The device base every agent stands on: one MQTT session per device, speaking protocol v1.

A ``Device`` connects with client id = username = its device id, leaves a Last Will
(offline, lost) on its retained ``status`` topic, announces itself online, sends a
``heartbeat`` every ``heartbeat_s``, reconnects with backoff, and shuts down in order
(``status`` offline, shutdown, then DISCONNECT, so the Will is not sent). Requests carry
an id unique to this device across restarts; a request that gets no reply in time is sent
again with the SAME id, so the engine, which applies a (device, id) once, answers it
without applying it twice.

Everything the device puts on the wire is encoded by the functions right below; agents
never build payloads themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError  # (not exported by the package itself)

from queue_engine.shells.mqtt import BrokerSettings, new_client
from queue_engine.wire import PROTOCOL_VERSION, Topics

log = logging.getLogger("hallwatch.device")

FIRMWARE = "hallwatch-agent/0.1.0"
MAX_KEEPALIVE_S = 30  # the protocol's ceiling
MAX_EVENT_ID = 64


# -- the protocol, device side: every payload a device sends ------------------------------
def _json(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def status_online(kind: str, window: str | None, fw: str) -> bytes:
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "state": "online", "kind": kind}
    if window is not None:
        body["window"] = window
    body["fw"] = fw
    return _json(body)


def status_offline(reason: str) -> bytes:
    """``reason``: ``lost`` (the Last Will) or ``shutdown`` (an orderly power-off)."""
    return _json({"v": PROTOCOL_VERSION, "state": "offline", "reason": reason})


def heartbeat(seq: int, uptime_s: float, **extra: Any) -> bytes:
    return _json({"v": PROTOCOL_VERSION, "seq": seq, "uptime_s": round(uptime_s, 1), **extra})


def event(event_id: str, type_: str, ts: str, **fields: Any) -> bytes:
    body = {"v": PROTOCOL_VERSION, "id": event_id, "ts": ts, "type": type_}
    body.update({k: v for k, v in fields.items() if v is not None})
    return _json(body)


def device_time() -> str:
    """The device's own clock, ISO-8601 with its UTC offset (informational for the engine)."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


# -- errors -------------------------------------------------------------------------------
class DeviceError(Exception):
    pass


class BrokerUnreachable(DeviceError):
    """The first connection did not succeed within the connect timeout."""

    def __init__(self, broker: str, device_id: str, reason: str | None):
        self.broker = broker
        self.device_id = device_id
        self.reason = reason  # the last connection error; None: timed out
        super().__init__(f"cannot reach broker {broker} as {device_id}: {reason or 'timed out'}")


class NoReply(DeviceError):
    """No reply after every attempt (the same event id each time)."""

    def __init__(self, event_id: str, attempts: int):
        self.event_id = event_id
        self.attempts = attempts
        super().__init__(f"no reply to event {event_id} after {attempts} attempts")


# -- settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSettings:
    site: str
    device_id: str
    kind: str  # kiosk, panel, camera, pad, display, selfservice
    broker: BrokerSettings
    window: str | None = None
    heartbeat_s: float = 10.0
    keepalive: int = MAX_KEEPALIVE_S
    root: str = "hallwatch"
    fw: str = FIRMWARE
    password: str | None = None  # the device's broker password (username is the device id)
    reply_timeout: float = 5.0  # per attempt
    attempts: int = 3  # sends of one request (the same id) before giving up
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.keepalive <= MAX_KEEPALIVE_S:
            raise ValueError(f"keepalive must be 1..{MAX_KEEPALIVE_S} s (protocol v1), not {self.keepalive}")
        if self.attempts < 1 or self.reply_timeout <= 0 or self.heartbeat_s <= 0:
            raise ValueError("attempts >= 1, reply_timeout > 0 and heartbeat_s > 0 are required")


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """Exponential backoff with jitter (so that a hall's devices do not reconnect in step
    after the broker restarts): initial, 2x, 4x ... capped at maximum, each +-25 %."""
    delay = initial
    while True:
        yield delay * random.uniform(0.75, 1.25)
        delay = min(delay * 2, maximum)


MessageHandler = Callable[[str, bytes], None]
HeartbeatHook = Callable[[], Awaitable[None]]


@dataclass
class _State:
    online: bool = True  # what the device declares on its status topic while connected
    reason: str | None = None
    extra_heartbeat: dict[str, Any] = field(default_factory=dict)


class Device:
    """One device's MQTT session. Use ``async with Device(settings) as device:`` or
    ``await device.start()`` ... ``await device.close()``."""

    def __init__(
        self,
        settings: DeviceSettings,
        *,
        subscriptions: Iterable[str] = (),
        on_message: MessageHandler | None = None,
        on_connect: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self.topics = Topics(settings.root)
        t = self.topics
        self.status_topic = t.device(settings.site, settings.device_id, "status")
        self.heartbeat_topic = t.device(settings.site, settings.device_id, "heartbeat")
        self.event_topic = t.device(settings.site, settings.device_id, "event")
        self.reply_topic = t.reply(settings.site, settings.device_id)
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.on_connect = on_connect  # called at each connection, once the status is sent
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (1 + reconnects)
        self.heartbeats_sent = 0
        self._state = _State()
        self._hooks: list[HeartbeatHook] = []
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future] = {}
        # Event ids must not repeat across restarts: the engine remembers (device, id) for
        # days and refuses a reused id (id_reused).
        self._boot = boot_prefix()
        self._seq = itertools.count(1)
        self._started = time.monotonic()
        self._stop = asyncio.Event()
        self._runner: asyncio.Task | None = None
        self.last_error: str | None = None

    # -- life cycle -----------------------------------------------------------------------
    async def start(self, connect_timeout: float = 30.0) -> Device:
        """Connect (retrying with backoff) and return once online; raise BrokerUnreachable
        if the first connection does not succeed within ``connect_timeout`` seconds."""
        self._runner = asyncio.create_task(self._run(), name=f"device-{self.settings.device_id}")
        connected = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait(
            {connected, self._runner}, timeout=connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        connected.cancel()
        if connected not in done:  # timed out, or the broker refused the device's credentials
            await self._abort()
            raise BrokerUnreachable(self.settings.broker.describe(), self.settings.device_id, self.last_error)
        return self

    async def close(self, timeout: float = 5.0) -> None:
        """Orderly shutdown: status offline (reason shutdown, retained), then disconnect."""
        if self._runner is None:
            return
        self._stop.set()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._runner)
        except (TimeoutError, asyncio.CancelledError):
            await self._abort()
        except Exception:  # noqa: BLE001 - the runner logged it; closing must not fail
            pass
        self._runner = None
        for future in self._pending.values():
            if not future.done():
                future.cancel()

    async def _abort(self) -> None:
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        self._runner = None

    async def __aenter__(self) -> Device:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    # -- the connection -------------------------------------------------------------------
    def _make_client(self) -> aiomqtt.Client:
        s = self.settings
        return new_client(
            s.broker,
            identifier=s.device_id,
            username=s.device_id,
            password=s.password,
            # A device keeps no session: what it missed while away is recovered by resending
            # with the same id, and a kiosk switched off for a week leaves nothing queued.
            clean_session=True,
            keepalive=s.keepalive,
            will=aiomqtt.Will(self.status_topic, status_offline("lost"), qos=1, retain=True),
        )

    async def _run(self) -> None:
        delays = backoff_delays(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        while not self._stop.is_set():
            client = self._make_client()
            before = self.connections
            try:
                async with client:
                    await self._session(client)
            except aiomqtt.MqttError as err:
                self.last_error = str(err)
                if not self.connections and _refused(err):
                    log.error("%s: the broker refuses this device: %s", self.settings.device_id, err)
                    return  # wrong id or password: retrying will not help; start() reports it
                if self.connections:
                    log.warning("%s: connection lost (%s); reconnecting", self.settings.device_id, err)
                else:
                    log.info("%s: cannot connect (%s); retrying", self.settings.device_id, err)
            finally:
                self._client = None
                self.connected.clear()
            if self._stop.is_set():
                break
            if self.connections > before:  # it worked for a while: start the backoff again
                delays = backoff_delays(self.settings.backoff_initial_s, self.settings.backoff_max_s)
            await wait_event(self._stop, next(delays))

    async def _session(self, client: aiomqtt.Client) -> None:
        for topic in [self.reply_topic, *self.subscriptions]:
            await client.subscribe(topic, qos=1)
        await client.publish(self.status_topic, self._status_payload(), qos=1, retain=True)
        self._client = client
        self.connections += 1
        if self.on_connect is not None:
            self.on_connect()
        if self.connections > 1:
            log.info("%s: reconnected", self.settings.device_id)
        self.connected.set()
        reader = asyncio.create_task(self._read(client))
        beats = asyncio.create_task(self._heartbeats(client))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connected.clear()
            self._client = None
            for task in (beats, stopper, reader):
                task.cancel()
            await asyncio.gather(beats, stopper, reader, return_exceptions=True)
        if reader in done:  # the connection ended under us
            error = None if reader.cancelled() else reader.exception()
            raise error or aiomqtt.MqttError("the message stream ended")
        # An orderly power-off: say so before disconnecting (a clean DISCONNECT suppresses
        # the Last Will, so this retained message is what the engine and boards keep).
        await client.publish(self.status_topic, status_offline("shutdown"), qos=1, retain=True, timeout=5)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if topic == self.reply_topic:
                self._reply(payload)
            elif self.on_message is not None:
                try:
                    self.on_message(topic, payload)
                except Exception:  # noqa: BLE001 - an agent's display bug must not drop the session
                    log.exception("%s: handling a message on %s failed", self.settings.device_id, topic)

    def _reply(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            event_id = body["re"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable reply %r", self.settings.device_id, payload[:120])
            return
        future = self._pending.get(event_id)
        if future is None or future.done():
            log.debug("%s: reply to %s ignored (answered already or not ours)", self.settings.device_id, event_id)
            return
        future.set_result(body)

    async def _heartbeats(self, client: aiomqtt.Client) -> None:
        try:
            while True:
                await asyncio.sleep(self.settings.heartbeat_s)
                if not self._state.online:
                    continue  # an offline device is silent (a heartbeat would say it is back)
                self.heartbeats_sent += 1  # seq: counts on across reconnects
                await client.publish(
                    self.heartbeat_topic,
                    heartbeat(self.heartbeats_sent, self.uptime_s, **self._state.extra_heartbeat),
                    qos=0,
                )
                for hook in self._hooks:
                    try:
                        await hook()
                    except DeviceError as err:
                        log.warning("%s: after heartbeat: %s", self.settings.device_id, err)
        except aiomqtt.MqttError:
            pass  # the reader notices the lost connection

    def _status_payload(self) -> bytes:
        if self._state.online:
            return status_online(self.settings.kind, self.settings.window, self.settings.fw)
        return status_offline(self._state.reason or "lost")

    # -- what agents use ------------------------------------------------------------------
    def on_heartbeat(self, hook: HeartbeatHook) -> None:
        """Run ``hook`` after every heartbeat (a camera repeats its presence then)."""
        self._hooks.append(hook)

    def set_heartbeat_fields(self, **fields: Any) -> None:
        """Extra heartbeat fields, e.g. a camera's ``video="ok"``."""
        self._state.extra_heartbeat.update(fields)

    @property
    def declared_online(self) -> bool:
        return self._state.online

    @property
    def declared_reason(self) -> str | None:
        return self._state.reason

    async def declare(self, online: bool, reason: str | None = None) -> None:
        """Change what the retained status says while staying connected (a camera bridge
        whose video system is gone is offline although its own process is fine); an offline
        device sends no heartbeats. Survives reconnects."""
        self._state = _State(
            online=online, reason=None if online else (reason or "lost"), extra_heartbeat=self._state.extra_heartbeat
        )
        client = self._client
        if client is not None:
            try:
                await client.publish(
                    self.status_topic, self._status_payload(), qos=1, retain=True, timeout=self.settings.reply_timeout
                )
            except aiomqtt.MqttError as err:
                log.warning("%s: status not sent (%s); it is sent again on reconnect", self.settings.device_id, err)

    def new_event_id(self) -> str:
        return f"{self.settings.device_id[:24]}-{self._boot}-{next(self._seq)}"[-MAX_EVENT_ID:]

    async def send(self, type_: str, **fields: Any) -> str:
        """An event that gets no reply (presence, tamper), QoS 1. Waits up to the reply
        timeout for a connection; returns its id. Raises DeviceError if not sent."""
        event_id = self.new_event_id()
        if not await self._publish_event(event(event_id, type_, device_time(), **fields)):
            raise DeviceError(f"{type_} {event_id} not sent: {self.last_error or 'not connected'}")
        return event_id

    async def request(
        self,
        type_: str,
        *,
        timeout: float | None = None,
        attempts: int | None = None,
        event_id: str | None = None,
        **fields: Any,
    ) -> dict:
        """Send an event and return its reply (``ok`` true or false). Each attempt that gets
        no reply within ``timeout`` sends the same bytes again, same id; raises NoReply after
        ``attempts`` sends. ``event_id``: one from ``new_event_id()``, for a caller that
        records the request before it is answered."""
        timeout = timeout or self.settings.reply_timeout
        attempts = attempts or self.settings.attempts
        event_id = event_id or self.new_event_id()
        payload = event(event_id, type_, device_time(), **fields)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[event_id] = future
        try:
            for attempt in range(1, attempts + 1):
                started = time.monotonic()
                if attempt > 1:
                    log.warning(
                        "%s: no reply to %s %s within %.1f s; sending it again (attempt %d)",
                        self.settings.device_id,
                        type_,
                        event_id,
                        timeout,
                        attempt,
                    )
                await self._publish_event(payload, timeout)
                remaining = max(0.0, timeout - (time.monotonic() - started))
                try:
                    async with asyncio.timeout(remaining):
                        return await asyncio.shield(future)
                except TimeoutError:
                    continue
            raise NoReply(event_id, attempts)
        finally:
            self._pending.pop(event_id, None)

    async def _publish_event(self, payload: bytes, timeout: float | None = None) -> bool:
        timeout = timeout or self.settings.reply_timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not await wait_event(self.connected, remaining):
                return False
            client = self._client
            if client is None:
                await asyncio.sleep(0.05)
                continue
            try:
                await client.publish(self.event_topic, payload, qos=1, timeout=max(0.1, deadline - time.monotonic()))
                return True
            except aiomqtt.MqttError as err:
                self.last_error = str(err)
                await asyncio.sleep(0.05)


# CONNACK codes that say "not you": MQTT 3.1.1's 2, 4, 5 and MQTT 5's 133, 134, 135.
REFUSED_CODES = frozenset({2, 4, 5, 133, 134, 135})


def _refused(err: aiomqtt.MqttError) -> bool:
    if not isinstance(err, MqttConnectError):
        return False
    rc = getattr(err.rc, "value", err.rc)
    return rc in REFUSED_CODES


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` is set within ``timeout`` seconds. (asyncio.timeout, not wait_for:
    Python 3.11's wait_for can swallow a cancellation that arrives as the wait ends, and a
    SIGTERM would then not stop the agent.)"""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


def boot_prefix() -> str:
    """A prefix for the event ids of one run of a device: milliseconds since the epoch in
    base 36, plus randomness, so that ids never repeat across restarts."""
    return f"{_base36(int(time.time() * 1000))}{secrets.token_hex(2)}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def password_from_env(env: dict[str, str] | None = None) -> str | None:
    """The device's broker password, if the installer set one (never read at import)."""
    return (env if env is not None else os.environ).get("HALLWATCH_DEVICE_PASSWORD") or None
