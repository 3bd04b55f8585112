"""How the core declares its records (events, commands, values): frozen, slotted,
keyword-only dataclasses. One decorator, declared as a dataclass transform (PEP 681) so
that type checkers see each record's fields as they see a plain dataclass's.

A frozen dataclass's generated ``__init__`` looks up and calls ``object.__setattr__`` for
every field, and ``dataclasses.replace`` walks ``fields()`` and builds keyword arguments
each time: for the 36 fields of a ticket that is 7 µs to make one and 21 µs to change one,
on the path of every ticket issued and called. ``record`` gives each record an
``__init__`` that sets every field through its slot's own setter (same fields, defaults and
keyword-only signature; about half the time), and ``evolve`` copies a record through the
same setters. A record with a default factory or a ``__post_init__`` keeps dataclass's own
``__init__`` and ``replace``."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_COPIERS: dict[type, Any] = {}


@dataclass_transform(frozen_default=True, kw_only_default=True)
def record(cls: type[T]) -> type[T]:
    cls = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    own = fields(cls)  # type: ignore[arg-type]
    if not own or hasattr(cls, "__post_init__") or any(f.default_factory is not MISSING or not f.init for f in own):
        return cls
    names = [f.name for f in own]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for f in own:
        slot = getattr(cls, f.name)  # (a member descriptor, also for a field a base record declares)
        namespace[f"_set_{f.name}"] = slot.__set__
        namespace[f"_get_{f.name}"] = slot.__get__
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
    params = ", ".join(n if f.default is MISSING else f"{n}=_default_{n}" for n, f in zip(names, own))
    init_body = "".join(f"\n    _set_{n}(self, {n})" for n in names) or "\n    pass"
    copy_body = "".join(
        f"\n    _set_{n}(new, changes.pop({n!r}) if {n!r} in changes else _get_{n}(old))" for n in names
    )
    source = (
        f"def __init__(self, *, {params}):{init_body}\n"
        f"def _copy(old, changes):\n    new = _new(_cls){copy_body}\n"
        "    if changes:\n"
        "        raise TypeError(f'{_cls.__name__} has no field {next(iter(changes))!r}')\n"
        "    return new\n"
    )
    exec(source, namespace)  # as dataclasses itself makes __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    _COPIERS[cls] = namespace["_copy"]
    return cls


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the record ``obj`` with ``changes`` (``dataclasses.replace``, faster)."""
    copy = _COPIERS.get(type(obj))
    if copy is None:
        return replace(obj, **changes)  # type: ignore[type-var]
    return copy(obj, changes)  # type: ignore[no-any-return]
