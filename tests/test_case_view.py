"""What the citizen's case page shows (queue_engine.web.casepage.public_case), read from the core
driven with scripted time: the reply that opens a case carries its due day for the case slip;
the page marks it 未到期, 今日到期 on its due day, 已超期 after it, and nothing once it is closed;
only status changes are listed, and no staff member or citizen is shown.

The site of tests/test_core_cases.py: budongchan a 承诺件 of 5 working days; a case accepted on
Wednesday 2026-11-25 is due on Wednesday 2026-12-02.
"""

from __future__ import annotations

from datetime import date

from core_helpers import the_reply
from test_core_cases import WED, at, case_event, cases_driver, opened, visit

from queue_engine.core import events as ev
from queue_engine.web.casepage import public_case

DUE = date(2026, 12, 2)


def test_the_case_page_marks_the_due_day_and_shows_no_staff_member_or_citizen():
    d = cases_driver(at(WED, 9))
    finished = visit(d, "budongchan", "w03", "s003", ev.Outcome.ACCEPTED, citizen="c" * 64)
    case = opened(finished)
    reply = the_reply(finished)
    assert (reply.case, reply.due_day, reply.service) == (case.no, "2026-12-02", "budongchan")

    marks = {
        "in_time": at(date(2026, 12, 1), 17),
        "due_today": at(DUE, 9),
        "overdue": at(date(2026, 12, 3), 9),
    }
    for mark, now in marks.items():
        shown = public_case(d.hall, d.hall.cases.cases[case.no], [], now)
        assert (shown["mark"], shown["due_day"], shown["day"]) == (mark, "2026-12-02", "2026-11-25")
    assert [e["action"] for e in shown["events"]] == ["opened"]  # (from the case, before the store has it)
    assert not {"agent", "citizen", "staff", "result", "ticket"} & shown.keys()
    assert "c" * 64 not in str(shown) and "s003" not in str(shown)

    case_event(d, "panel-w03", ev.CaseComplete, case=case.no, result="已登记发证")
    closed = public_case(d.hall, d.hall.cases.cases[case.no], [], at(date(2026, 12, 3), 9))
    assert (closed["status"], closed["mark"]) == ("completed", None)
    assert "已登记发证" not in str(closed)
