"""Test-side MQTT clients (paho, threaded): a device that sends events and waits for its
replies, and a listener that records what the engine publishes."""

from __future__ import annotations

import itertools
import json
import threading
import time

import paho.mqtt.client as paho

ROOT = "hallwatch"


def _client(
    client_id: str,
    port: int,
    *,
    clean: bool = True,
    will: tuple[str, bytes] | None = None,
    auth: tuple[str, str] | None = None,
    on_connect=None,
) -> paho.Client:
    """A connected client whose network loop runs in a thread; it reconnects by itself within
    about 2 s of the broker's return. ``on_connect(flags)`` runs at each connection."""
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=paho.MQTTv311
    )
    if auth:
        client.username_pw_set(*auth)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    connected = threading.Event()

    def connected_now(_client, _userdata, flags, *_rest):
        connected.set()
        if on_connect is not None:
            on_connect(flags)

    client.on_connect = connected_now
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"{client_id} could not connect to port {port}")
    return client


class Listener:
    """Subscribes to topic filters and keeps every message, in order of arrival (with the
    ``time.monotonic()`` of its arrival). A persistent listener (``clean=False``) subscribes
    again if the broker comes back without its session."""

    def __init__(
        self,
        port: int,
        *filters: str,
        client_id: str | None = None,
        auth: tuple[str, str] | None = None,
        clean: bool = True,
    ):
        self.messages: list[tuple[str, bytes, bool, float]] = []
        self._cond = threading.Condition()
        self._filters = [(f, 1) for f in filters]
        self._subscribed = False  # (the first subscription is made below, once connected)
        self.client = _client(
            client_id or f"listener-{id(self)}",
            port,
            auth=auth,
            clean=clean,
            on_connect=None if clean else self._resubscribe,
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(self._filters)
        if not subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")
        self._subscribed = True

    def _resubscribe(self, flags) -> None:
        if self._subscribed and not flags.session_present:
            self.client.subscribe(self._filters)

    def _on_message(self, client, userdata, message):
        with self._cond:
            self.messages.append((message.topic, message.payload, message.retain, time.monotonic()))
            self._cond.notify_all()

    def on(self, topic: str) -> list[dict]:
        with self._cond:
            return [json.loads(p) for t, p, _, _ in self.messages if t == topic]

    def wait_for(self, predicate, timeout: float = 10.0):
        """Wait until predicate(messages) returns something truthy, and return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(self.messages)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"condition not met; {len(self.messages)} messages seen: "
                        f"{[(t, p[:120]) for t, p, _, _ in self.messages[-10:]]}"
                    )
                self._cond.wait(remaining)

    def wait_topic(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return self.wait_for(
            lambda msgs: (lambda hits: hits if len(hits) >= count else None)(
                [json.loads(p) for t, p, _, _ in msgs if t == topic]
            ),
            timeout,
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Device:
    """A device of the protocol: publishes events on its own topic, collects its replies."""

    _ids = itertools.count(1)

    def __init__(
        self, port: int, device_id: str, site: str = "demo", *, password: str | None = None, will: bool = False
    ):
        """``will``: set the protocol's Last Will (offline, lost) on the device's status topic."""
        self.site = site
        self.device_id = device_id
        self.replies: dict[str, dict] = {}
        self.reply_log: list[dict] = []
        self._cond = threading.Condition()
        lost = (self.topic("status"), json.dumps({"v": 1, "state": "offline", "reason": "lost"}).encode())
        self.client = _client(
            device_id, port, auth=(device_id, password) if password else None, will=lost if will else None
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(self.topic("reply"), 1)
        if not subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def topic(self, channel: str) -> str:
        return f"{ROOT}/{self.site}/dev/{self.device_id}/{channel}"

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        with self._cond:
            self.reply_log.append(body)
            self.replies.setdefault(body["re"], body)
            self._cond.notify_all()

    def send(self, type_: str, event_id: str | None = None, **fields) -> str:
        event_id = event_id or f"{self.device_id}-{next(self._ids)}-{time.monotonic_ns()}"
        body = {"v": 1, "id": event_id, "ts": "2026-11-25T09:00:00+08:00", "type": type_, **fields}
        self.client.publish(self.topic("event"), json.dumps(body), qos=1).wait_for_publish(10)
        return event_id

    def raw(self, payload: bytes | str, channel: str = "event") -> None:
        self.client.publish(self.topic(channel), payload, qos=1).wait_for_publish(10)

    def wait_reply(self, event_id: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while event_id not in self.replies:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reply to {event_id} for {self.device_id}")
                self._cond.wait(remaining)
            return self.replies[event_id]

    def request(self, type_: str, **fields) -> dict:
        return self.wait_reply(self.send(type_, **fields))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
