"""How the core declares its records (events, commands, values): frozen, slotted,
keyword-only dataclasses. One decorator, declared as a dataclass transform (PEP 681) so
that type checkers see each record's fields as they see a plain dataclass's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def record(cls: type[T]) -> type[T]:
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)
