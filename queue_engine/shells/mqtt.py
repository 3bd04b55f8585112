"""The MQTT shell: connection settings, the broker session, publishing and acknowledging.

Everything that touches aiomqtt's underlying paho client is in the small functions below:
aiomqtt acknowledges a QoS 1 message as soon as it is queued, before the engine has stored
it, so the engine switches paho to manual acknowledgement and acknowledges after commit
(upstream discussion: aiomqtt issue #345).
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho

# Nagle's algorithm delays small request/reply packets by tens of milliseconds; the
# broker's config sets set_tcp_nodelay for its side, this sets ours.
TCP_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class BrokerUrlError(ValueError):
    pass


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str, *, ca_file: str | None = None) -> BrokerSettings:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://...`` (TLS, default port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise BrokerUrlError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r}: no host")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise BrokerUrlError(f"broker URL {url!r}: bad port") from None
    return BrokerSettings(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        ca_file=ca_file,
    )


def new_client(
    settings: BrokerSettings,
    *,
    identifier: str,
    clean_session: bool = True,
    will: aiomqtt.Will | None = None,
    keepalive: int = 30,
    username: str | None = None,
    password: str | None = None,
    max_inflight_messages: int | None = None,
) -> aiomqtt.Client:
    """An MQTT 3.1.1 client for the broker ``settings`` name, as every hallwatch process
    connects: TLS when the URL asks for it, Nagle's algorithm off (it holds small
    request/reply packets back by tens of ms), a 10 s timeout. ``username`` and ``password``
    replace the URL's (a device logs in as itself)."""
    return aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=identifier,
        username=username if username is not None else settings.username,
        password=password if password is not None else settings.password,
        clean_session=clean_session,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=keepalive,
        will=will,
        tls_context=ssl.create_default_context(cafile=settings.ca_file) if settings.tls else None,
        socket_options=TCP_NODELAY,
        max_inflight_messages=max_inflight_messages,
        timeout=10,
    )


def make_client(settings: BrokerSettings, *, identifier: str, clean_session: bool) -> aiomqtt.Client:
    """The engine's client."""
    # No cap on our QoS 1 publications in flight: with a cap, paho holds replies back in its
    # own queue while the acknowledgements behind them go out at once, so a crash could lose
    # a reply whose request the broker already considers handled. Uncapped, each reply
    # precedes its acknowledgement on the wire.
    client = new_client(settings, identifier=identifier, clean_session=clean_session, max_inflight_messages=0)
    _streamline(client)
    return client


def _streamline(client: aiomqtt.Client) -> None:
    """Per-packet work the engine does not need, at thousands of packets a second: paho's
    debug log of every packet (formatted or not, each costs calls), and aiomqtt's
    publish-confirmation callback, which serves only ``await client.publish()`` (the
    engine publishes with publish_nowait) and raises and catches a KeyError per PUBACK."""
    if not logging.getLogger("hallwatch.mqtt").isEnabledFor(logging.DEBUG):
        client._client.disable_logger()  # noqa: SLF001
    client._client.on_publish = None  # noqa: SLF001


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Set before connecting, so that messages the broker redelivers the moment the
    persistent session resumes are not acknowledged behind our back either."""
    client._client.manual_ack_set(True)  # noqa: SLF001 (aiomqtt offers no public switch)


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    if qos > 0:
        client._client.ack(mid, qos)  # noqa: SLF001


def on_message(client: aiomqtt.Client, handler) -> None:
    """Deliver each message to ``handler(topic, payload, mid, qos, dup)`` straight from
    paho's read callback (which aiomqtt runs on the event loop's thread). aiomqtt's own
    message iterator costs a task and several loop iterations per message, which at
    thousands of messages a second is most of the engine's time. ``dup``: the broker is
    sending it again (it was sent once and not acknowledged)."""

    def deliver(_client, _userdata, message: paho.MQTTMessage) -> None:
        handler(message.topic, message.payload, message.mid, message.qos, bool(message.dup))

    client._client.on_message = deliver  # noqa: SLF001


def on_connected(client: aiomqtt.Client, handler) -> None:
    """Call ``handler(session_present)`` when the broker accepts the connection, from paho's
    CONNACK callback: before the messages of a resumed session, which paho reads right
    after it in the same callback (aiomqtt's ``__aenter__`` returns only later). aiomqtt
    does not expose CONNACK's session-present flag; its own handler is called after ours."""
    # aiomqtt's, which completes __aenter__: aiomqtt sets it in its constructor, with paho's
    # version 2 callback API (paho types the property as any version's callback, or None).
    own = cast("paho.CallbackOnConnect_v2", client._client.on_connect)  # noqa: SLF001

    def connected(paho_client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code == paho.CONNACK_ACCEPTED:
            handler(bool(flags.session_present))
        own(paho_client, userdata, flags, reason_code, properties)

    client._client.on_connect = connected  # noqa: SLF001


async def until_disconnected(client: aiomqtt.Client) -> None:
    """Wait for the connection to end; raises aiomqtt.MqttError like the iterator does.
    Messages no longer reach aiomqtt's queue (see on_message), so this only waits."""
    async for _ in client.messages:
        pass


def publish_nowait(
    client: aiomqtt.Client, topic: str, payload: bytes, qos: int, retain: bool
) -> paho.MQTTMessageInfo | None:
    """Queue a publication without waiting for the broker's PUBACK (aiomqtt's ``publish``
    awaits it, which would serialise every reply behind a network round trip). Returns
    paho's message info (``is_published()`` once the broker has acknowledged it), or None
    if the connection did not take it."""
    info = client._client.publish(topic, payload, qos=qos, retain=retain)  # noqa: SLF001
    return info if info.rc == paho.MQTT_ERR_SUCCESS else None
