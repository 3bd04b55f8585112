"""docs/asyncapi.yaml as a checker: which channel a topic is, and whether a payload is one of
that channel's messages. Used by tests/test_asyncapi.py on every message of a hall session."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import Counter
from pathlib import Path

import jsonschema
import paho.mqtt.client as paho
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
OFFICIAL_SCHEMA = Path(__file__).resolve().parent / "data" / "asyncapi-3.0.0-without-id.json"
URI = "urn:hallwatch:asyncapi"
ID = "[a-z0-9][a-z0-9_-]{0,63}"


def load() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def closed(schemas: dict) -> dict:
    """The schemas with every object that lists its properties closed to others: the document
    lets clients ignore fields it does not name, but nothing we send may carry one."""
    schemas = copy.deepcopy(schemas)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schemas)
    return schemas


class Contract:
    def __init__(self, doc: dict | None = None, *, strict: bool = True):
        self.doc = doc or load()
        components = self.doc["components"]
        resource = dict(self.doc)
        if strict:
            resource["components"] = {**components, "schemas": closed(components["schemas"])}
        self.registry = Registry().with_resource(URI, Resource.from_contents(resource, default_specification=DRAFT7))
        self.channels: list[tuple[str, re.Pattern, dict[str, str]]] = []
        for channel_id, channel in self.doc["channels"].items():
            pattern = re.escape(channel["address"]).replace(r"\{", "{").replace(r"\}", "}")
            pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{ID})", pattern)
            self.channels.append((channel_id, re.compile(f"^{pattern}$"), self.channel_messages(channel_id)))

    def channel_messages(self, channel_id: str) -> dict[str, str]:
        """message name -> its payload schema's reference, for one channel."""
        found = {}
        for name, ref in self.doc["channels"][channel_id]["messages"].items():
            message = self.doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            found[name] = message["payload"]["$ref"]
        return found

    def validator(self, ref: str) -> jsonschema.Draft7Validator:
        return jsonschema.Draft7Validator({"$ref": URI + ref}, registry=self.registry)

    def channel_of(self, topic: str) -> tuple[str, dict[str, str]] | None:
        for channel_id, pattern, _ in self.channels:
            match = pattern.match(topic)
            if match:
                return channel_id, match.groupdict()
        return None

    def check(self, topic: str, payload: bytes) -> tuple[str | None, str | None, str | None]:
        """(channel, message name, None) for a documented message; (channel or None, None,
        what is wrong) otherwise."""
        found = self.channel_of(topic)
        if found is None:
            return None, None, f"no channel for topic {topic}"
        channel_id = found[0]
        try:
            body = json.loads(payload)
        except ValueError as err:
            return channel_id, None, f"not JSON: {err}"
        errors = {}
        for name, ref in self.channel_messages(channel_id).items():
            problems = [e.message for e in self.validator(ref).iter_errors(body)]
            if not problems:
                return channel_id, name, None
            errors[name] = problems[:2]
        return channel_id, None, f"matches no message of {channel_id}: {errors}"

    def operation_messages(self, operation_id: str) -> set[str]:
        return {m["$ref"].rsplit("/", 1)[1] for m in self.doc["operations"][operation_id]["messages"]}


class Recorder:
    """Subscribes to everything under the topic root and keeps every message with its
    retain flag (a retained message is seen once more by a newcomer: not a new message)."""

    def __init__(self, port: int, root: str = "hallwatch"):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="asyncapi-recorder")
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe(f"{root}/#", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the recorder's subscription was not acknowledged")

    def _on_message(self, _client, _userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def tally(contract: Contract, messages) -> tuple[Counter, list[tuple[str, bytes, str]]]:
    """Messages validated per channel, and every message that is not documented (with why)."""
    counts: Counter = Counter()
    bad = []
    for topic, payload, *_ in messages:
        channel, _name, problem = contract.check(topic, payload)
        if problem is None:
            counts[channel] += 1
        else:
            bad.append((topic, payload, problem))
    return counts, bad
