"""The outbox: durable publications (alert transitions, board calls) from the commit that
decided them until the broker has acknowledged them.

An alert that can start an accountability process must reach the supervision office even if
the engine's connection dies the moment after it was decided. Each durable message is
written to the store's ``outbox`` table in the transaction that decides it, numbered; it is
published after the commit, and again on every new connection (and after a restart) until
the broker's PUBACK has been seen; then its row is deleted in a later transaction. A
subscriber may therefore see a message twice (alerts carry ``seq``, calls ``n``), never
miss one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records import Outbound

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessageInfo


@dataclass(slots=True)
class Entry:
    message: Outbound
    info: MQTTMessageInfo | None = None  # paho's info of the latest publication
    generation: int = -1  # the connection it was last published on


class Outbox:
    def __init__(self) -> None:
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._next = 1
        self._delivered: list[int] = []

    def __len__(self) -> int:
        return len(self._entries)

    def restore(self, rows: Iterable[tuple[int, Outbound]]) -> None:
        """What the store still holds after a restart: published again once connected."""
        for number, message in rows:
            self._entries[number] = Entry(message)
            self._next = max(self._next, number + 1)

    def number(self, messages: Iterable[Outbound]) -> list[tuple[int, Outbound]]:
        """Numbers for the durable messages of a batch about to be committed."""
        numbered = []
        for message in messages:
            numbered.append((self._next, message))
            self._next += 1
        return numbered

    def committed(self, numbered: Iterable[tuple[int, Outbound]]) -> None:
        for number, message in numbered:
            self._entries[number] = Entry(message)

    def publish(self, generation: int, send: Callable[[Outbound], MQTTMessageInfo | None]) -> None:
        """Publish, in order, every entry not yet published on connection ``generation``.
        ``send`` returns paho's message info, or None when the message could not be handed
        to the connection (it is tried again on the next one)."""
        for entry in self._entries.values():
            if entry.generation == generation:
                continue
            info = send(entry.message)
            if info is None:
                return  # the connection is gone: the next one starts from here
            entry.info, entry.generation = info, generation

    def sweep(self) -> None:
        """Move what the broker has acknowledged to the list of rows to delete."""
        for number, entry in list(self._entries.items()):
            if entry.info is not None and entry.info.is_published():
                del self._entries[number]
                self._delivered.append(number)

    def take_delivered(self) -> list[int]:
        delivered, self._delivered = self._delivered, []
        return delivered

    @property
    def has_delivered(self) -> bool:
        return bool(self._delivered)
