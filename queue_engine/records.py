"""What flows through the engine, between its shells: a handled inbound message
(``Processed``), its row in the event log (``EventRecord``), a refusal (``Rejection``), a
message to publish (``Outbound``), and what the store commits in one transaction
(``Batch``). Plain records, no behaviour beyond naming their parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .core.commands import Command, Reply

if TYPE_CHECKING:
    from asyncio import Future


@dataclass(frozen=True, slots=True)
class Rejection:
    site: str | None
    device: str | None
    topic: str
    code: str
    reason: str
    payload: bytes
    at: float


class EventRecord(NamedTuple):
    """One row of the event log: what was received, when, and how it was answered."""

    site: str
    device: str
    event_id: str
    type: str
    received_at: float
    payload: str
    error: str | None  # the refusal's code, if the hall refused it
    reply: str | None
    digest: str  # of the event's content, so that a reused id is told from a resend


class Outbound(NamedTuple):
    """A message to publish once the batch that decided it has committed. ``kind`` says what
    it is (reply, call, window, queue, alert, rejection), so no shell re-parses the topic.
    (A named tuple: one per reply, thousands a second, and it costs less than a dataclass.)"""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    site: str | None = None
    kind: str = ""

    @property
    def durable(self) -> bool:
        """Kept in the store's outbox until the broker has it: an alert transition or a call
        must reach its subscribers across a lost connection or an engine restart. Replies
        are answered again when the device resends; states are retained and republished."""
        return self.kind in ("alert", "call")


@dataclass(slots=True)
class Processed:
    """One inbound message (or timer run, or event from another shell), handled."""

    at: float
    site: str | None = None
    commands: list[Command] = field(default_factory=list)
    event: EventRecord | None = None
    reply: Outbound | None = None  # published after commit
    rejection: Rejection | None = None
    duplicate: bool = False
    # Set by the MQTT shell: what to acknowledge after commit, and on which connection.
    mid: int = 0
    qos: int = 0
    generation: int = 0
    # For events from other shells (web, operators): resolved with the reply after commit.
    waiter: Future[Processed] | None = None
    result: Reply | None = None

    @property
    def needs_commit(self) -> bool:
        return bool(self.commands or self.event or self.rejection)


@dataclass(slots=True)
class Batch:
    """What the store commits in one transaction, and what is published once it has: the
    handled items, the messages rendered from them (the states taken when the batch was
    closed, so they show exactly what the batch commits), and the outbox's bookkeeping."""

    items: list[Processed]
    messages: list[Outbound] = field(default_factory=list)
    outbox: list[tuple[int, Outbound]] = field(default_factory=list)  # durable messages, numbered
    delivered: list[int] = field(default_factory=list)  # outbox numbers the broker has acknowledged
    # Retention: (site, delete events received before, delete rejections before), a chunk of
    # each per batch; ``pruned`` is set by the writer to the rows it deleted.
    prune: list[tuple[str, float, float]] = field(default_factory=list)
    pruned: int = 0
