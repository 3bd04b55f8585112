"""The citizen's side over real HTTP: a slip followed by its token, rated from the phone (the
same record and follow-up as a pad's rating, one per visit), a window's poster rating the
visit just finished there."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from test_web_api import api_factory  # noqa: F401 (the fixture)

from queue_engine.core import events as ev

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(api_factory):  # noqa: F811 (the fixture)
    return await api_factory()


async def serve_one(api, window: str = "w02", staff: str = "s002", *, finish: bool = True) -> None:
    """Window ``window`` signs in and calls the next ticket; starts and finishes it."""
    panel = f"panel-{window}"
    if api.app.engine.hall("demo").windows[window].staff is None:
        await api.event(ev.StaffLogin, device=panel, staff=staff)
    await api.event(ev.CallNext, device=panel)
    if finish:
        await api.event(ev.ServiceStart, device=panel)
        await api.event(ev.ServiceFinish, device=panel, outcome=ev.Outcome.DONE)


def ratings(api) -> list[dict]:
    with sqlite3.connect(api.app.db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from ratings order by id")]


async def take_slip(api, service: str = "shebao", phone: str = "13800000001") -> dict:
    status, body, _ = await api.take(service, phone)
    assert status == 201, body
    ticket = body["ticket"]
    assert ticket["token"].startswith("20261125-" + ticket["no"] + "-")
    assert ticket["url"] == f"https://chimei-hall.example.cn/t/demo/{ticket['token']}"
    return ticket


async def test_a_slip_is_followed_by_its_token_and_rated_once_from_the_phone(api):
    mine = await take_slip(api)
    slip = f"/api/v1/sites/demo/slips/{mine['token']}"
    status, body, _ = await api.call("GET", slip)
    assert status == 200, body
    assert (body["no"], body["status"], body["ahead"], body["ratable"], body["rating"]) == (
        mine["no"],
        "waiting",
        0,
        False,
        None,
    )
    assert body["complaints"] == ["县投诉电话：0377-65532345", "乡镇投诉电话：0377-65761234"]
    assert "phone" not in body

    # Another site's, an altered, a malformed token: nothing.
    forged = mine["token"][:-1] + ("a" if mine["token"][-1] != "a" else "b")
    assert (await api.call("GET", f"/api/v1/sites/demo/slips/{forged}"))[0] == 404
    assert (await api.call("GET", f"/api/v1/sites/shuangquan/slips/{mine['token']}"))[0] == 404
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/slips/A001")
    assert (status, body["error"]) == (400, "bad_parameter")

    status, body, _ = await api.call("POST", f"{slip}/rating", json_body={"score": 5})
    assert (status, body["error"]) == (409, "not_finished")
    await serve_one(api)
    # Reasons are for 不满意 and 非常不满意 only.
    status, body, _ = await api.call("POST", f"{slip}/rating", json_body={"score": 4, "reasons": ["attitude"]})
    assert (status, body["error"], body["field"]) == (422, "reasons_not_allowed", "reasons")
    status, body, _ = await api.call(
        "POST", f"{slip}/rating", json_body={"score": 2, "reasons": ["efficiency", "attitude"], "comment": " 等太久 "}
    )
    assert status == 201, body
    assert body["rating"] == {
        "site": "demo",
        "ticket": mine["no"],
        "window": "w02",
        "window_name": "2号窗口",
        "staff_name": "李建军",
        "score": 2,
        "reasons": ["efficiency", "attitude"],
    }
    [row] = ratings(api)
    assert (row["window"], row["staff"], row["device"], row["ticket"], row["score"]) == (
        "w02",
        "s002",
        "phone",
        mine["no"],
        2,
    )
    assert (json.loads(row["reasons"]), row["comment"]) == (["efficiency", "attitude"], "等太久")
    [alert] = [a for a in api.app.engine.hall("demo").supervisor.alerts.values() if a.kind == "bad_rating"]
    assert (alert.window, alert.staff, alert.detail["reasons"], alert.detail["ticket"]) == (
        "w02",
        "s002",
        ["efficiency", "attitude"],
        mine["no"],
    )

    # One rating per visit: the phone again, then the window's pad, are refused.
    status, body, _ = await api.call("POST", f"{slip}/rating", json_body={"score": 5})
    assert (status, body["error"]) == (409, "already_rated")
    assert "已经评价过了" in body["message"]
    done = await api.app.submit_event(ev.Rating(site="demo", device="pad-w02", id="pad-1", window="w02", score=5))
    assert done.result.error == "already_rated"
    assert len(ratings(api)) == 1
    status, body, _ = await api.call("GET", slip)
    assert (body["status"], body["rating"], body["ratable"], body["staff_name"]) == ("done", 2, False, "李建军")


async def test_a_pad_rating_first_closes_the_phone_s_form(api):
    mine = await take_slip(api)
    await serve_one(api)
    await api.event(ev.Rating, device="pad-w02", window="w02", score=5)
    status, body, _ = await api.call("POST", f"/api/v1/sites/demo/slips/{mine['token']}/rating", json_body={"score": 1})
    assert (status, body["error"]) == (409, "already_rated")
    [row] = ratings(api)
    assert (row["device"], row["score"]) == ("pad-w02", 5)


async def test_a_window_poster_rates_the_visit_just_finished_there(api):
    first = await take_slip(api, phone="13800000001")
    await serve_one(api)
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/windows/w02/visit")
    assert status == 200, body
    assert (body["window_name"], body["staff_name"], body["visit"]["ticket"]) == ("2号窗口", "李建军", first["no"])
    status, body, _ = await api.call(
        "POST", "/api/v1/sites/demo/windows/w02/rating", json_body={"score": 1, "reasons": ["result"]}
    )
    assert status == 201, body
    assert (body["rating"]["ticket"], body["rating"]["window"], body["rating"]["staff_name"]) == (
        first["no"],
        "w02",
        "李建军",
    )
    # Rated: nothing left to rate without a number.
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/windows/w02/visit")
    assert body["visit"] is None
    status, body, _ = await api.call("POST", "/api/v1/sites/demo/windows/w02/rating", json_body={"score": 5})
    assert (status, body["error"]) == (409, "nothing_to_rate")
    assert "凭条上的号码" in body["message"]

    # A visit finished long ago is not "just finished": the slip's number rates it.
    second = await take_slip(api, phone="13800000002")
    await serve_one(api)
    api.clock.advance(31 * 60)
    status, body, _ = await api.call("POST", "/api/v1/sites/demo/windows/w02/rating", json_body={"score": 5})
    assert (status, body["error"]) == (409, "nothing_to_rate")
    status, body, _ = await api.call(
        "POST", "/api/v1/sites/demo/windows/w02/rating", json_body={"score": 5, "ticket": second["no"].lower()}
    )
    assert status == 201 and body["rating"]["ticket"] == second["no"], body
    # Not a visit of that window.
    status, body, _ = await api.call(
        "POST", "/api/v1/sites/demo/windows/w03/rating", json_body={"score": 5, "ticket": second["no"]}
    )
    assert status == 404
    assert (await api.call("GET", "/api/v1/sites/demo/windows/w99/visit"))[0] == 404
    assert [(r["ticket"], r["window"], r["device"]) for r in ratings(api)] == [
        (first["no"], "w02", "phone"),
        (second["no"], "w02", "phone"),
    ]


async def read_tickets(response, count: int) -> list[dict]:
    seen, kind = [], None
    while len(seen) < count:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "ticket":
            seen.append(json.loads(line[6:]))
    return seen


async def test_the_slip_stream_sends_the_ticket_whenever_it_moves(api):
    await take_slip(api, phone="13800000001")
    mine = await take_slip(api, phone="13800000002")
    response = await api.session.get(f"{api.base}/api/v1/sites/demo/slips/{mine['token']}/stream")
    try:
        assert response.status == 200
        [first] = await read_tickets(response, 1)
        assert (first["no"], first["ahead"], first["status"]) == (mine["no"], 1, "waiting")
        await serve_one(api, finish=False)  # the one before is called
        [moved] = await read_tickets(response, 1)
        assert (moved["ahead"], moved["status"]) == (0, "waiting")
        await api.event(ev.ServiceStart, device="panel-w02")
        await api.event(ev.ServiceFinish, device="panel-w02", outcome=ev.Outcome.DONE)
        await api.event(ev.CallNext, device="panel-w02")
        [called] = await read_tickets(response, 1)
        assert (called["status"], called["window_name"]) == ("called", "2号窗口")
    finally:
        response.close()


async def test_the_phone_pages_are_served(api):
    mine = await take_slip(api)
    for path, text in (
        (f"/t/demo/{mine['token']}", "我的号码"),
        ("/w/demo/w02", "2号窗口"),
        ("/s/demo", "办事指南"),
    ):
        status, body, headers = await api.call("GET", path)
        assert status == 200 and text in body, path
        assert "县投诉电话：0377-65532345" in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert (await api.call("GET", "/t/demo/20261125-A001-" + "a" * 24))[0] == 404
    assert (await api.call("GET", "/w/demo/w99"))[0] == 404
