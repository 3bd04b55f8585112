"""Which engine serves which site: ``--sites a,b`` and ``--shard i/n``.

The site is the partition key (each hall is independent), so several engine processes split
a county by splitting its list of sites. ``--shard i/n`` uses rendezvous hashing of the site
id: each site goes to the shard with the highest SHA-256 score of ``"{shard}/{site id}"``.

- Deterministic: the same configuration gives every engine the same answer, whatever the
  order of the files or the machine.
- No overlap and nothing left out: each site has exactly one highest score.
- Stable: adding or removing a site never moves another site; going from n to n + 1 engines
  moves only the sites the new engine takes over (about 1/(n + 1) of them), so only their
  SQLite state has to follow them.

Pure functions: no IO.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; shards count from 1."""
    match = SHARD_RE.match(text)
    if not match:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 1/2 (the first of two engines)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard {text!r}: i must be between 1 and n, and n at least 1")
    return index, count


def _score(shard: int, site_id: str) -> bytes:
    return hashlib.sha256(f"{shard}/{site_id}".encode()).digest()


def shard_of(site_id: str, count: int) -> int:
    """The shard (1..count) that serves ``site_id``."""
    return max(range(1, count + 1), key=lambda shard: _score(shard, site_id))


def shard_sites(sites: Sequence[T], index: int, count: int, *, key=lambda site: site.id) -> list[T]:
    """The sites of shard ``index`` of ``count``, in configuration order."""
    return [site for site in sites if shard_of(key(site), count) == index]


def engine_name(base: str, *, shard: tuple[int, int] | None = None, sites: Sequence[str] | None = None) -> str:
    """The name of the engine that serves shard ``(i, n)``, or the sites ``sites``: its MQTT
    client id, and the user name of its broker account (``hallwatch broker-config --shards``,
    ``--engine-sites``). ``{base}-{i}of{n}``; ``{base}-{site}-{site}...`` (sorted), or a
    digest of the list when that would exceed 64 characters; ``base`` for every site."""
    if shard:
        index, count = shard
        return f"{base}-{index}of{count}"
    if sites:
        derived = f"{base}-{'-'.join(sorted(sites))}"
        if len(derived) > 64:
            derived = f"{base}-sites-{hashlib.sha256(','.join(sorted(sites)).encode()).hexdigest()[:12]}"
        return derived
    return base


def shard_plan(site_ids: Iterable[str], count: int) -> dict[int, list[str]]:
    plan: dict[int, list[str]] = {shard: [] for shard in range(1, count + 1)}
    for site_id in sorted(site_ids):
        plan[shard_of(site_id, count)].append(site_id)
    return plan


def parse_site_list(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise ValueError(f"--sites {text!r}: give site ids separated by commas, e.g. chimei,machang")
    return ids


def pick_sites(sites: Sequence[T], ids: Sequence[str], *, key=lambda site: site.id) -> list[T]:
    """The configured sites named in ``ids`` (configuration order); unknown ids are an error."""
    known = [key(site) for site in sites]
    unknown = [site_id for site_id in ids if site_id not in known]
    if unknown:
        raise ValueError(
            f"--sites: no such site in the configuration: {', '.join(unknown)} (configured: {', '.join(known)})"
        )
    wanted = set(ids)
    return [site for site in sites if key(site) in wanted]


DEFAULT_ENGINE_ID = "hallwatch-engine"


def served_sites(
    sites: Sequence[T],
    *,
    ids: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    key=lambda site: site.id,
) -> list[T]:
    """The sites one engine serves: all of them, or those ``ids``, or shard i of n. Raises
    ValueError when the choice leaves the engine nothing to do."""
    if ids:
        return pick_sites(sites, ids, key=key)
    if shard:
        index, count = shard
        chosen = shard_sites(sites, index, count, key=key)
        if not chosen:
            raise ValueError(
                f"--shard {index}/{count}: none of the {len(sites)} configured sites falls to this "
                f"shard (`hallwatch shards --count {count}` shows the split); run fewer engines "
                "or choose sites with --sites"
            )
        return chosen
    return list(sites)


def engine_client_id(
    client_id: str, *, shard: tuple[int, int] | None = None, sites: Sequence[str] | None = None
) -> str:
    """Two engines must never share a persistent session: with ``--shard i/n`` and the
    default client id, the id becomes ``hallwatch-engine-{i}of{n}``; with ``--sites``, the
    site ids are appended (``engine_name``). An explicit ``--client-id`` (or
    HALLWATCH_CLIENT_ID) is kept. The production broker uses the account's user name instead
    (``use_username_as_clientid``): ``broker-config --shards`` and ``--engine-sites`` name each
    engine's account as this function names its client id."""
    if client_id != DEFAULT_ENGINE_ID:
        return client_id
    return engine_name(client_id, shard=shard, sites=sites)


def client_id_warning(client_id: str, username: str | None) -> str | None:
    """What to tell the operator of an engine whose client id is not its broker user name."""
    if not username or username == client_id:
        return None
    return (
        f"client id {client_id!r} is not the broker user name {username!r}: a broker with "
        f"use_username_as_clientid (the production configuration) gives this engine the client id and "
        f"persistent session {username!r}, and engines sharing that account take each other's connection "
        "(one account per engine: hallwatch broker-config --shards N or --engine-sites)"
    )
