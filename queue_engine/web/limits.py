"""Limits per client: how many numbers may be taken from phones (the site's ``[web]`` limits,
checked before a phone ticket is asked of the engine), and how many wrong tokens an address
may present before its requests for a console are refused."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.model import TicketStatus
from .errors import ApiError

if TYPE_CHECKING:
    from ..core.hall import Hall


def network_of(address: str) -> str:
    """The client's network: an IPv4 address's /24, an IPv6 address's /64 (one household, one
    office, one tout's block of lines); anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class PhoneLimits:
    """Tickets per phone per day and per site per hour (counted from today's tickets, so a
    restart forgets nothing), a phone's no-shows per day (its reservations that expired
    unchecked), and per client address and network per hour (in memory), counting requests
    still in flight."""

    def __init__(self) -> None:
        self.in_flight_phone: Counter[tuple[str, str]] = Counter()
        self.in_flight_address: Counter[str] = Counter()  # by address, and by "net " + network
        self.in_flight_site: Counter[str] = Counter()
        self.by_address: dict[str, deque[float]] = {}  # (the same keys)

    def check(self, hall: Hall, phone: str, address: str, now: float, speed: float) -> None:
        rules = hall.site.web
        if rules.phone_tickets_per_day == 0:
            raise ApiError(403, "phone_tickets_disabled", "本中心未开通手机取号")
        today = hall.local(now).date().isoformat()  # the day may roll with this very request
        mine = [t for t in hall.tickets.values() if t.phone == phone and t.day == today]
        used = len(mine) + self.in_flight_phone[(hall.id, phone)]
        if used >= rules.phone_tickets_per_day:
            raise ApiError(
                429,
                "phone_limit",
                f"该手机号今天已取号 {used} 次，已达每日 {rules.phone_tickets_per_day} 次上限",
                limit=rules.phone_tickets_per_day,
            )
        missed = sum(1 for t in mine if t.status is TicketStatus.NO_SHOW and t.check_in_code and not t.checked_in_at)
        if missed >= rules.phone_no_shows_per_day:
            raise ApiError(
                429,
                "phone_no_shows",
                f"该手机号今天有 {missed} 个预约未到大厅签到，今天不能再用手机取号，请到大厅取号机取号",
                limit=rules.phone_no_shows_per_day,
            )
        self._within(address, rules.address_tickets_per_hour, now, speed, "address_limit", "同一网络地址")
        network = "net " + network_of(address)
        self._within(network, rules.network_tickets_per_hour, now, speed, "network_limit", "同一网段")
        hour = sum(1 for t in hall.tickets.values() if t.phone is not None and t.issued_at > now - 3600)
        if hour + self.in_flight_site[hall.id] >= rules.site_phone_tickets_per_hour:
            raise ApiError(
                429,
                "site_limit",
                f"本中心手机取号每小时最多 {rules.site_phone_tickets_per_hour} 个，请稍后再试或到大厅取号机取号",
                limit=rules.site_phone_tickets_per_hour,
                headers={"Retry-After": "60"},
            )

    def _within(self, key: str, limit: int, now: float, speed: float, code: str, who: str) -> None:
        recent = self._recent(key, now)
        if len(recent) + self.in_flight_address[key] >= limit:
            wait_s = (recent[0] + 3600 - now) / speed if recent else 60.0
            raise ApiError(
                429,
                code,
                f"{who}每小时最多取号 {limit} 次，请稍后再试",
                limit=limit,
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self.by_address.get(address)
        if times is None:
            if len(self.by_address) > 100_000:  # forget addresses idle for an hour
                for key in [k for k, v in self.by_address.items() if not v or v[-1] < now - 3600]:
                    del self.by_address[key]
            times = self.by_address[address] = deque()
        while times and times[0] <= now - 3600:
            times.popleft()
        return times

    def within_codes(self, hall: Hall, address: str, now: float, speed: float) -> None:
        """SMS codes asked for from one address: no more per hour than numbers it may take."""
        self._within(
            "sms " + address, hall.site.web.address_tickets_per_hour, now, speed, "address_limit", "同一网络地址"
        )

    def code_sent(self, address: str, now: float) -> None:
        self._recent("sms " + address, now).append(now)

    def reserve(self, site: str, phone: str, address: str) -> None:
        self.in_flight_phone[(site, phone)] += 1
        self.in_flight_site[site] += 1
        for key in (address, "net " + network_of(address)):
            self.in_flight_address[key] += 1

    def release(self, site: str, phone: str, address: str, issued_at: float | None) -> None:
        _decrement(self.in_flight_phone, (site, phone))
        _decrement(self.in_flight_site, site)
        for key in (address, "net " + network_of(address)):
            _decrement(self.in_flight_address, key)
            if issued_at is not None:
                self._recent(key, issued_at).append(issued_at)


def _decrement(counter: Counter, key) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


WRONG_TOKEN_WINDOW_S = 60.0


class WrongTokens:
    """Wrong tokens per client address, counted in real time (a guesser runs in real time,
    whatever the speed of the engine's clock). After ``per_minute`` of them within a minute, the
    address's requests that present a token are refused (429) until the oldest is a minute old,
    the right token included: an answer that told a hit from a miss would keep the guessing
    going."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self.by_address: dict[str, deque[float]] = {}

    def refuse_if_throttled(self, address: str) -> None:
        times = self.by_address.get(address)
        if times is None or len(times) < self.per_minute:
            return
        wait_s = times[0] + WRONG_TOKEN_WINDOW_S - self.clock()
        if wait_s > 0:
            raise ApiError(
                429,
                "too_many_wrong_tokens",
                f"访问令牌错误次数过多，请 {math.ceil(wait_s)} 秒后再试",
                limit=self.per_minute,
                headers={"Retry-After": str(math.ceil(wait_s))},
            )

    def record(self, address: str) -> int:
        """Count a wrong token from ``address``; how many it presented within the last minute."""
        now = self.clock()
        times = self.by_address.get(address)
        if times is None:
            if len(self.by_address) > 10_000:  # forget the addresses quiet for a minute
                for key in [k for k, v in self.by_address.items() if v[-1] < now - WRONG_TOKEN_WINDOW_S]:
                    del self.by_address[key]
            times = self.by_address[address] = deque(maxlen=self.per_minute)
        times.append(now)
        return sum(1 for t in times if t > now - WRONG_TOKEN_WINDOW_S)
