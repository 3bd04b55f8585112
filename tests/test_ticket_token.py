"""The ticket's token (queue_engine/tickettoken.py): made from the ticket's identity under the
engine's secret, checked by making it again; and the kiosk's reply that carries it, through
the real ingest and core (the engine's own path from an MQTT message to the reply)."""

from __future__ import annotations

import hmac
import json

import pytest
from core_helpers import BASE, site_dict

from queue_engine import tickettoken
from queue_engine.config import ConfigError, parse_site
from queue_engine.core.engine import Engine
from queue_engine.ingest import Ingest
from queue_engine.tickettoken import (
    SecretError,
    TicketRef,
    case_token,
    load_secret,
    slip_url,
    ticket_token,
    verify_case_token,
    verify_ticket_token,
)
from queue_engine.wire import Topics

SECRET = b"a-ticket-secret-for-tests-0123456789"
TOKEN = ticket_token(SECRET, "hall-1", "2026-11-25", "A012")


def test_a_token_names_its_ticket_and_is_verified_by_making_it_again():
    day, no, mac = TOKEN.split("-")
    assert (day, no) == ("20261125", "A012")
    assert len(mac) == 24 and set(mac) <= set("abcdefghijklmnopqrstuvwxyz234567")  # 120 bits, base32
    assert verify_ticket_token(SECRET, "hall-1", TOKEN) == TicketRef("hall-1", "2026-11-25", "A012")
    assert ticket_token(SECRET, "hall-1", "2026-11-25", "A012") == TOKEN  # no randomness: the same every time


def test_any_changed_character_fails():
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for i, char in enumerate(TOKEN):
        if char == "-":
            continue
        other = next(c for c in alphabet + "0123456789ABZ" if c != char and (c.isdigit() == char.isdigit()))
        changed = TOKEN[:i] + other + TOKEN[i + 1 :]
        assert verify_ticket_token(SECRET, "hall-1", changed) is None, f"position {i}: {changed}"


def test_another_tickets_token_fails_for_this_ticket():
    others = {
        "another number": ticket_token(SECRET, "hall-1", "2026-11-25", "A013"),
        "another day": ticket_token(SECRET, "hall-1", "2026-11-26", "A012"),
        "another site": ticket_token(SECRET, "hall-2", "2026-11-25", "A012"),
        "another secret": ticket_token(b"another-secret-of-16-chars-or-more", "hall-1", "2026-11-25", "A012"),
    }
    assert len({*others.values(), TOKEN}) == 5
    mac = TOKEN.rsplit("-", 1)[1]
    for what, token in others.items():
        # Its MAC grafted onto this ticket's day and number, or presented as is for this site.
        grafted = TOKEN.rsplit("-", 1)[0] + "-" + token.rsplit("-", 1)[1]
        assert verify_ticket_token(SECRET, "hall-1", grafted) is None, what
        assert token.rsplit("-", 1)[1] != mac, what
    assert verify_ticket_token(SECRET, "hall-2", TOKEN) is None  # this token at another site
    assert verify_ticket_token(b"another-secret-of-16-chars-or-more", "hall-1", TOKEN) is None


@pytest.mark.parametrize("bad", ["", "A012", "20261125-A012", TOKEN + "a", TOKEN.upper(), " " + TOKEN, "x" * 500])
def test_malformed_tokens_fail(bad):
    assert verify_ticket_token(SECRET, "hall-1", bad) is None


def test_a_case_token_names_its_case_and_no_other_case_site_secret_or_slip():
    token = case_token(SECRET, "hall-1", "J20261125001")
    no, mac = token.split("-")
    assert no == "J20261125001" and len(mac) == 24
    assert verify_case_token(SECRET, "hall-1", token) == "J20261125001"
    others = [
        case_token(SECRET, "hall-1", "J20261125002"),
        case_token(SECRET, "hall-2", "J20261125001"),
        case_token(b"another-secret-of-16-chars-or-more", "hall-1", "J20261125001"),
    ]
    for other in others:
        assert verify_case_token(SECRET, "hall-1", no + "-" + other.split("-")[1]) is None, other
    assert verify_case_token(SECRET, "hall-2", token) is None
    # The distinct context: the MAC of a slip never passes for a case's, whatever the number.
    slip_mac = ticket_token(SECRET, "hall-1", "2026-11-25", "A012").rsplit("-", 1)[1]
    assert verify_case_token(SECRET, "hall-1", f"{no}-{slip_mac}") is None
    for bad in ("", no, token + "a", token.upper(), "G20261125001-" + mac, TOKEN):
        assert verify_case_token(SECRET, "hall-1", bad) is None, bad


def test_the_mac_is_compared_in_constant_time(monkeypatch):
    compared = []
    constant_time = hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(tickettoken.hmac, "compare_digest", recording)
    wrong = TOKEN[:-1] + ("a" if TOKEN[-1] != "a" else "b")
    assert verify_ticket_token(SECRET, "hall-1", wrong) is None
    assert verify_ticket_token(SECRET, "hall-1", TOKEN) is not None
    assert [presented for presented, _ in compared] == [wrong.rsplit("-", 1)[1], TOKEN.rsplit("-", 1)[1]]


def test_the_secret_comes_from_a_file_or_the_environment(tmp_path):
    path = tmp_path / "ticket.secret"
    path.write_text("  from-the-file-0123456789\n")
    assert load_secret(path, environ={}) == b"from-the-file-0123456789"
    assert load_secret(None, environ={"HALLWATCH_TICKET_SECRET": "from-the-environment-0123"}) == (
        b"from-the-environment-0123"
    )
    assert load_secret(None, environ={}) is None
    assert load_secret(None, environ={"HALLWATCH_TICKET_SECRET": ""}) is None
    with pytest.raises(SecretError, match="HALLWATCH_TICKET_SECRET: the ticket secret has 5 characters"):
        load_secret(None, environ={"HALLWATCH_TICKET_SECRET": "short"})
    with pytest.raises(SecretError, match="cannot read it"):
        load_secret(tmp_path / "missing", environ={})


def test_public_url_is_checked():
    data = site_dict()
    data["web"] = {"public_url": "https://hall.example.cn/"}
    with pytest.raises(ConfigError) as err:
        parse_site(data, "hall.toml")
    assert "hall.toml: web.public_url: 'https://hall.example.cn/' is not the hall's public address" in str(err.value)
    data["web"] = {"public_url": "https://hall.example.cn:8443/zwfw"}
    assert parse_site(data).web.public_url == "https://hall.example.cn:8443/zwfw"


def kiosk_reply(ingest: Ingest, event_id: str, now: float = BASE) -> dict:
    payload = json.dumps({"v": 1, "id": event_id, "type": "ticket.request", "service": "shebao"}).encode()
    processed = ingest.process("hallwatch/hall-1/dev/kiosk-1/event", payload, now)
    assert processed.reply is not None
    return json.loads(processed.reply.payload)


def test_the_kiosks_reply_carries_the_token_and_the_slips_link():
    data = site_dict()
    data["web"] = {"public_url": "https://hall.example.cn"}
    site = parse_site(data)
    ingest = Ingest(Engine([site]), [site], Topics(), ticket_secret=SECRET)
    ticket = kiosk_reply(ingest, "k1")["ticket"]
    assert ticket["no"] == "A001"
    assert verify_ticket_token(SECRET, "hall-1", ticket["token"]) == TicketRef("hall-1", "2026-11-25", "A001")
    assert ticket["url"] == slip_url("https://hall.example.cn", "hall-1", ticket["token"])
    assert ticket["url"].startswith("https://hall.example.cn/t/hall-1/20261125-A001-")
    # A resend is answered as the first time: the same link.
    assert kiosk_reply(ingest, "k1", BASE + 5)["ticket"] == ticket
    second = kiosk_reply(ingest, "k2", BASE + 6)["ticket"]
    assert second["no"] == "A002" and second["token"] != ticket["token"]


def test_without_a_secret_or_an_address_the_reply_is_as_before():
    plain = parse_site(site_dict())
    without_url = kiosk_reply(Ingest(Engine([plain]), [plain], Topics(), ticket_secret=SECRET), "k1")["ticket"]
    assert "url" not in without_url and without_url["token"].startswith("20261125-A001-")
    data = site_dict()
    data["web"] = {"public_url": "https://hall.example.cn"}
    site = parse_site(data)
    without_secret = kiosk_reply(Ingest(Engine([site]), [site], Topics()), "k1")["ticket"]
    assert set(without_secret) == {"no", "service", "issued_at", "ahead", "eta_min"}
