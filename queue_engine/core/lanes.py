"""Waiting lanes: tickets kept in order of their place in the queue.

A ticket's place is fixed when it is issued and kept across transfers, so a citizen who is
sent to another counter does not go to the back of its line."""

from __future__ import annotations

from bisect import bisect_left, insort

from .model import Ticket

Entry = tuple[int, str]  # (place, ticket no)


class Lane:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, ticket: Ticket) -> None:
        insort(self._entries, (ticket.place, ticket.no))

    def remove(self, ticket: Ticket) -> None:
        entry = (ticket.place, ticket.no)
        index = bisect_left(self._entries, entry)
        if index < len(self._entries) and self._entries[index] == entry:
            del self._entries[index]

    def head(self) -> Entry | None:
        return self._entries[0] if self._entries else None

    def ahead_of(self, ticket: Ticket) -> int:
        """How many tickets of this lane come before the given one."""
        return bisect_left(self._entries, (ticket.place, ticket.no))

    def numbers(self) -> list[str]:
        return [no for _, no in self._entries]

    def clear(self) -> None:
        self._entries.clear()


def earliest(lanes: list[Lane]) -> Entry | None:
    heads = [h for h in (lane.head() for lane in lanes) if h is not None]
    return min(heads) if heads else None
