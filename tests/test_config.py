"""The site configuration loader, exercised on real TOML files.

Every error test writes a file to ``tmp_path``, loads it with the real loader and checks
that the error names the file, the field path and the problem, as a hall's IT officer
would read it.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from datetime import time
from pathlib import Path

import pytest
from deploy_helpers import run_cli

from queue_engine.config import (
    ConfigError,
    DeviceKind,
    Site,
    WindowRole,
    expand_config_paths,
    load_site,
    load_sites,
    parse_site,
)

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-site.toml"

# A small valid site; error tests append or substitute one faulty part.
BASE_HEAD = """\
id = "mini"
name = "测试镇行政审批服务中心"
kind = "township"
timezone = "Asia/Shanghai"

[hours]
periods = ["08:30-12:00", "14:30-17:30"]
"""

BASE_SERVICES = """\
[[services]]
code = "shebao"
prefix = "A"
name = "社会保障"
category = "就业和社会保障"

[[services]]
code = "budongchan"
prefix = "B"
name = "不动产登记"
category = "不动产登记"
"""

BASE_WINDOWS = """\
[[windows]]
id = "w01"
name = "1号窗口"
role = "comprehensive"

[[windows]]
id = "w02"
name = "2号窗口"
services = ["shebao"]
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def base_site(
    head: str = BASE_HEAD, services: str = BASE_SERVICES, windows: str = BASE_WINDOWS, extra: str = ""
) -> str:
    return "\n".join([head, services, windows, extra])


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return info.value


def assert_every_line_names_file(err: ConfigError, path: Path) -> None:
    assert err.path == str(path)
    assert err.problems, "a ConfigError must carry at least one problem"
    lines = str(err).splitlines()
    assert len(lines) == len(err.problems)
    for line, problem in zip(lines, err.problems):
        assert line == f"{path}: {problem}"


# ---------------------------------------------------------------------------
# The demo site
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Site:
    return load_site(DEMO)


def test_base_fixture_is_valid(tmp_path):
    # The error tests below rely on the base being valid apart from what they break.
    site = load_site(write(tmp_path, base_site()))
    assert site.id == "mini"
    assert [w.id for w in site.windows] == ["w01", "w02"]


def test_demo_site_top_level(demo):
    assert demo.id == "demo"
    assert demo.kind == "township"
    assert "行政审批服务中心" in demo.name
    assert demo.timezone == "Asia/Shanghai"
    assert demo.tz.key == "Asia/Shanghai"
    assert demo.hours.spans() == [(time(8, 30), time(12, 0)), (time(14, 30), time(17, 30))]
    assert demo.queue.priority_cap == 2


def test_demo_site_covers_every_category_of_the_county_policy(demo):
    categories = {s.category for s in demo.services}
    required = {
        "就业和社会保障",
        "医疗保障",
        "不动产登记",
        "社会救助",
        "户籍管理",
        "水电气",
        "市场主体登记",
        "退役军人服务",
        "兜底服务",
        "一件事一次办",
    }
    assert required <= categories
    assert any(s.category == "兜底服务" and "办不成事" in s.name for s in demo.services)


def test_demo_site_required_services_and_prefixes(demo):
    assert demo.service("shebao").prefix == "A"
    assert demo.service("budongchan").prefix == "B"
    prefixes = [s.prefix for s in demo.services]
    assert len(prefixes) == len(set(prefixes))
    assert all(re.fullmatch(r"[A-Z]", p) for p in prefixes)
    assert demo.service("nosuch") is None


def test_demo_site_themes_bundle_existing_services(demo):
    themes = [s for s in demo.services if s.theme]
    assert len(themes) >= 2
    codes = {s.code for s in demo.services}
    for theme in themes:
        assert theme.category == "一件事一次办"
        assert len(theme.includes) >= 2
        assert set(theme.includes) <= codes
        assert theme.code not in theme.includes
        # a theme bundles ordinary services, not other themes
        assert not any(demo.service(code).theme for code in theme.includes)


def test_demo_site_every_guide_is_complete(demo):
    for service in demo.services:
        assert service.guide.missing_fields() == [], service.code
        assert service.guide.item_type in ("即办件", "承诺件"), service.code
        assert service.guide.basis.startswith("《"), service.code
        assert service.expected_service_min > 0 and service.target_wait_min > 0


def test_demo_site_windows(demo):
    assert len(demo.windows) >= 8
    w01, w02 = demo.window("w01"), demo.window("w02")
    assert w01.name == "1号窗口" and w01.role is WindowRole.COMPREHENSIVE
    assert w02.name == "2号窗口" and w02.role is WindowRole.STANDARD
    assert demo.window_services(w01) == frozenset(s.code for s in demo.services)
    assert demo.window_services(w02) == frozenset({"shebao"})
    assert demo.window("w99") is None
    fallback = [w for w in demo.windows if w.role is WindowRole.FALLBACK]
    assert len(fallback) == 1
    assert "banbucheng" in demo.window_services(fallback[0])
    assert all(w.unit for w in demo.windows)


def test_demo_site_every_service_has_a_specialist_or_fallback_window(demo):
    # w01 serves everything; the hall still needs a non-comprehensive window for each
    # ordinary service so one absence does not close a service.
    specialist = {
        code for w in demo.windows if w.role is not WindowRole.COMPREHENSIVE for code in demo.window_services(w)
    }
    assert {s.code for s in demo.services} <= specialist


def test_demo_site_devices(demo):
    kiosk = demo.device("kiosk-1")
    assert kiosk.kind is DeviceKind.KIOSK and kiosk.window is None
    assert demo.device("board-1").kind is DeviceKind.DISPLAY
    assert demo.device("selfservice-1").kind is DeviceKind.SELFSERVICE
    for window in demo.windows:
        for prefix, kind in (("panel", DeviceKind.PANEL), ("cam", DeviceKind.CAMERA), ("pad", DeviceKind.PAD)):
            device = demo.device(f"{prefix}-{window.id}")
            assert device is not None, f"{prefix}-{window.id} missing"
            assert device.kind is kind
            assert device.window == window.id


def test_demo_site_staff(demo):
    ids = [s.id for s in demo.staff]
    assert "s001" in ids
    assert len(ids) >= len(demo.windows)
    assert ids == [f"s{n:03d}" for n in range(1, len(ids) + 1)]
    for member in demo.staff:
        assert member.name and member.unit and member.title


# ---------------------------------------------------------------------------
# Errors: file, field path, problem
# ---------------------------------------------------------------------------


def test_unknown_key_in_window(tmp_path):
    windows = BASE_WINDOWS.replace('role = "comprehensive"', 'role = "comprehensive"\ncolour = "red"')
    path = write(tmp_path, base_site(windows=windows))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == ["windows[0].colour: unknown field (not allowed here)"]
    assert str(path) in str(err)
    assert "windows[0].colour" in str(err)
    assert "unknown field" in str(err)


def test_unknown_key_in_guide(tmp_path):
    services = BASE_SERVICES + '\n[services.guide]\nbasis = "x"\nfees = "不收费"\n'
    path = write(tmp_path, base_site(services=services))
    err = load_error(path)
    assert err.problems == ["services[1].guide.fees: unknown field (not allowed here)"]


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, base_site(head=BASE_HEAD.replace("kind =", 'county = "内乡县"\nkind =')))
    err = load_error(path)
    assert err.problems == ["county: unknown field (not allowed here)"]


def test_missing_required_fields(tmp_path):
    head = BASE_HEAD.replace('name = "测试镇行政审批服务中心"\n', "")
    windows = BASE_WINDOWS.replace('name = "2号窗口"\n', "")
    path = write(tmp_path, base_site(head=head, windows=windows))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    # both problems are reported at once, each with its own path
    assert sorted(err.problems) == ["name: required field is missing", "windows[1].name: required field is missing"]


def test_missing_services_section(tmp_path):
    path = write(
        tmp_path, base_site(services="", windows='[[windows]]\nid = "w01"\nname = "1号窗口"\nrole = "comprehensive"\n')
    )
    err = load_error(path)
    assert err.problems == ["services: required field is missing"]


def test_duplicate_service_prefix(tmp_path):
    services = BASE_SERVICES.replace('prefix = "B"', 'prefix = "A"')
    path = write(tmp_path, base_site(services=services))
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "services[1].prefix: duplicate 'A'" in str(err)
    assert "services[0].prefix" not in str(err)


def test_duplicate_window_id(tmp_path):
    windows = BASE_WINDOWS.replace('id = "w02"', 'id = "w01"')
    path = write(tmp_path, base_site(windows=windows))
    err = load_error(path)
    assert "windows[1].id: duplicate 'w01'" in str(err)


def test_lowercase_prefix_refused(tmp_path):
    services = BASE_SERVICES.replace('prefix = "B"', 'prefix = "b"')
    path = write(tmp_path, base_site(services=services))
    err = load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("services[1].prefix: ")
    assert "pattern" in err.problems[0]


def test_window_lists_unknown_service(tmp_path):
    windows = BASE_WINDOWS.replace('services = ["shebao"]', 'services = ["shebao", "nosuch"]')
    path = write(tmp_path, base_site(windows=windows))
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "windows[1].services: unknown service 'nosuch'" in str(err)


def test_standard_window_without_services(tmp_path):
    windows = BASE_WINDOWS.replace('services = ["shebao"]\n', "")
    path = write(tmp_path, base_site(windows=windows))
    err = load_error(path)
    assert err.problems == ["windows[1]: a window that is not comprehensive must list the services it serves"]


def test_service_served_by_no_window(tmp_path):
    windows = BASE_WINDOWS.replace('role = "comprehensive"', 'services = ["shebao"]')
    path = write(tmp_path, base_site(windows=windows))
    err = load_error(path)
    assert "services[1]: no window serves 'budongchan'" in str(err)
    assert "shebao'" not in str(err)


def test_theme_includes_unknown_service(tmp_path):
    services = BASE_SERVICES + textwrap.dedent("""
        [[services]]
        code = "kaiban"
        prefix = "X"
        name = "我要开办企业"
        category = "一件事一次办"
        theme = true
        includes = ["shebao", "shichang"]
        """)
    path = write(tmp_path, base_site(services=services))
    err = load_error(path)
    assert "services[2].includes: unknown service 'shichang'" in str(err)


def test_device_window_does_not_exist(tmp_path):
    extra = '[[devices]]\nid = "cam-w09"\nkind = "camera"\nwindow = "w09"\n'
    path = write(tmp_path, base_site(extra=extra))
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "devices[0].window: unknown window 'w09'" in str(err)


def test_panel_device_without_window(tmp_path):
    extra = '[[devices]]\nid = "kiosk-1"\nkind = "kiosk"\n\n[[devices]]\nid = "panel-w01"\nkind = "panel"\n'
    path = write(tmp_path, base_site(extra=extra))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == ["devices[1]: a panel device must name its window"]


def test_a_kiosk_belongs_to_no_window(tmp_path):
    extra = '[[devices]]\nid = "kiosk-1"\nkind = "kiosk"\nwindow = "w01"\n'
    path = write(tmp_path, base_site(extra=extra))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == ["devices[0]: a kiosk device belongs to no window (remove window = 'w01')"]


def test_a_camera_may_watch_a_place_rather_than_a_window(tmp_path):
    """A lobby or entrance camera: supervised all the same (core tests), bound to no window."""
    extra = '[[devices]]\nid = "cam-lobby"\nkind = "camera"\n'
    site = load_site(write(tmp_path, base_site(extra=extra)))
    assert site.device("cam-lobby").window is None


def check_config_warnings(path: Path) -> list[str]:
    """``hallwatch check-config`` on the file, which is valid: its warnings, except the
    calendar's about this year and next (which depend on the day the test runs)."""
    done = run_cli("check-config", "--lang", "en", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return [line for line in lines if ": warning: " in line and "no official working days" not in line]


def test_check_config_warns_of_a_window_no_camera_watches(tmp_path):
    """w02 has no camera of its own (the lobby camera watches no window): its staffing can
    never be verified, so it can never raise window_unstaffed. Valid, with a warning."""
    extra = (
        '[[devices]]\nid = "cam-w01"\nkind = "camera"\nwindow = "w01"\n\n'
        '[[devices]]\nid = "cam-lobby"\nkind = "camera"\n'
    )
    path = write(tmp_path, base_site(extra=extra))
    assert check_config_warnings(path) == [
        f"{path}: warning: windows[1]: no camera watches w02 (2号窗口), so whether anybody is at the seat "
        "can never be verified (its staffing is always unverified, 无法核实) and it can never raise "
        'window_unstaffed; bind a camera to it ([[devices]] kind = "camera", window = "w02")'
    ]


def test_check_config_warns_of_a_working_saturday_that_follows_no_weekday(tmp_path):
    """With a window staffed on some weekdays only, a working Saturday the site adds must say
    which weekday it makes up for; one that does (2027-02-20) is not warned of."""
    windows = BASE_WINDOWS.replace('services = ["shebao"]', 'services = ["shebao"]\nstaff_weekdays = [1, 3, 5]')
    calendar = "[calendar]\nworkdays = [2027-02-06, 2027-02-20]\nfollows = { 2027-02-20 = 1 }\n"
    cameras = "".join(f'[[devices]]\nid = "cam-{w}"\nkind = "camera"\nwindow = "{w}"\n\n' for w in ("w01", "w02"))
    path = write(tmp_path, base_site(head=BASE_HEAD + calendar, windows=windows, extra=cameras))
    assert check_config_warnings(path) == [
        f"{path}: warning: calendar.workdays: 2027-02-06 is a working Saturday that follows no weekday: windows "
        "with staff_weekdays treat it as weekday 6; name the weekday it makes up for in [calendar].follows "
        "(e.g. follows = { 2027-02-06 = 5 })"
    ]


@pytest.mark.parametrize(
    ("calendar", "problem"),
    [
        ("follows = { 2027-02-06 = 8 }", "calendar.follows.2027-02-06: Input should be less than or equal to 7"),
        (
            "holidays = [2027-02-08]\nfollows = { 2027-02-08 = 1 }",
            "calendar: follows names days off (holidays): 2027-02-08",
        ),
    ],
)
def test_calendar_follows_names_a_weekday_for_a_working_day(tmp_path, calendar, problem):
    err = load_error(write(tmp_path, base_site(head=f"{BASE_HEAD}[calendar]\n{calendar}\n")))
    assert err.problems == [problem]


def test_kiosk_without_window_is_fine(tmp_path):
    extra = '[[devices]]\nid = "kiosk-1"\nkind = "kiosk"\n'
    site = load_site(write(tmp_path, base_site(extra=extra)))
    assert site.device("kiosk-1").window is None


def test_unknown_device_kind(tmp_path):
    extra = '[[devices]]\nid = "tv-1"\nkind = "television"\n'
    path = write(tmp_path, base_site(extra=extra))
    err = load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("devices[0].kind: ")
    assert "'kiosk'" in err.problems[0]  # the message lists the allowed kinds


def test_bad_timezone(tmp_path):
    path = write(tmp_path, base_site(head=BASE_HEAD.replace("Asia/Shanghai", "Mars/Olympus_Mons")))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == ["timezone: unknown timezone 'Mars/Olympus_Mons'"]


def test_timezone_naming_a_tz_directory(tmp_path):
    path = write(tmp_path, base_site(head=BASE_HEAD.replace("Asia/Shanghai", "Asia")))
    err = load_error(path)
    assert err.problems == ["timezone: unknown timezone 'Asia'"]


def test_bad_opening_period_reversed(tmp_path):
    head = BASE_HEAD.replace('["08:30-12:00", "14:30-17:30"]', '["12:00-08:00"]')
    path = write(tmp_path, base_site(head=head))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == ["hours.periods: '12:00-08:00' ends before it starts"]


@pytest.mark.parametrize(
    "periods, problem",
    [
        ('["8:30-12:00"]', "'8:30' is not a time of day HH:MM"),
        ('["08:30~12:00"]', "'08:30~12:00' is not a period HH:MM-HH:MM"),
        ('["14:30-17:30", "08:30-12:00"]', "'08:30-12:00' overlaps or precedes the period before it"),
        ('["08:30-12:00", "11:00-17:30"]', "'11:00-17:30' overlaps or precedes the period before it"),
        ("[]", "at least one opening period is required"),
        ('["08:30-08:30"]', "'08:30-08:30' ends before it starts"),  # an empty period
    ],
)
def test_bad_opening_periods(tmp_path, periods, problem):
    head = BASE_HEAD.replace('["08:30-12:00", "14:30-17:30"]', periods)
    err = load_error(write(tmp_path, base_site(head=head)))
    assert err.problems == [f"hours.periods: {problem}"]


def test_priority_cap_out_of_range(tmp_path):
    path = write(tmp_path, base_site(extra="[queue]\npriority_cap = 0\n"))
    err = load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("queue.priority_cap: ")
    assert "greater than or equal to 1" in err.problems[0]


def test_invalid_toml(tmp_path):
    path = write(tmp_path, 'id = "demo"\nname = "赤眉镇\n')  # unterminated string
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert len(err.problems) == 1
    assert "TOML" in err.problems[0]
    assert "line 2" in err.problems[0]  # tomllib's position survives, so it can be found


def test_missing_file(tmp_path):
    path = tmp_path / "nosuch.toml"
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("cannot read file")
    assert "No such file" in err.problems[0]


def test_file_not_utf8(tmp_path):
    path = tmp_path / "gbk.toml"
    path.write_bytes(base_site().encode("gbk"))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert "UTF-8" in err.problems[0]


def test_cross_reference_problems_are_separate_and_located(tmp_path):
    windows = BASE_WINDOWS.replace('services = ["shebao"]', 'services = ["nosuch"]')
    services = BASE_SERVICES.replace('prefix = "B"', 'prefix = "A"')
    path = write(tmp_path, base_site(services=services, windows=windows))
    err = load_error(path)
    assert sorted(err.problems) == [
        "services[1].prefix: duplicate 'A'",
        "windows[1].services: unknown service 'nosuch'",
    ]


def test_problems_from_several_sections_reported_together(tmp_path):
    windows = BASE_WINDOWS.replace('role = "comprehensive"', 'role = "comprehensive"\ncolour = "red"')
    head = BASE_HEAD.replace("Asia/Shanghai", "Nowhere/City")
    extra = '[[devices]]\nid = "panel-w01"\nkind = "panel"\n'
    path = write(tmp_path, base_site(head=head, windows=windows, extra=extra))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert sorted(err.problems) == [
        "devices[0]: a panel device must name its window",
        "timezone: unknown timezone 'Nowhere/City'",
        "windows[0].colour: unknown field (not allowed here)",
    ]


# Broken files, each with problems of several kinds: validators', pydantic's own, cross-section.
BROKEN = {
    "validators": base_site(
        head=BASE_HEAD.replace("Asia/Shanghai", "Nowhere/City").replace('"14:30-17:30"', '"14:30-13:30"'),
        extra='[[devices]]\nid = "panel-w01"\nkind = "panel"\n\n[complaints]\ncounty = "投诉"\n\n'
        '[web]\npublic_url = "ftp://hall"\n\n[calendar]\nholidays = [2026-10-01]\nworkdays = [2026-10-01]\n',
    ),
    "types": base_site(
        head=BASE_HEAD.replace('kind = "township"', 'kind = "town"\ncolour = "red"'),
        services=BASE_SERVICES.replace('prefix = "A"', 'prefix = "a"\nexpected_service_min = "long"'),
        extra="[queue]\npriority_cap = 0\nissue_outside_hours = 3\n",
    ),
    "references": base_site(
        services=BASE_SERVICES.replace('prefix = "B"', 'prefix = "A"'),
        windows=BASE_WINDOWS.replace('services = ["shebao"]', 'services = ["nosuch"]'),
        extra='[[devices]]\nid = "pad-w09"\nkind = "pad"\nwindow = "w09"\n',
    ),
}


# What a Chinese problem keeps in Latin letters: quoted values, configuration keys, kinds of device.
KEPT_LATIN = re.compile(r"""'[^']*'|"[^"]*"|\[\[devices\]\]|[a-z_]+ = |\b(true|false|window|services|panel|http)\b""")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_problem_carries_its_chinese_text_from_where_it_is_found(tmp_path, name):
    """English for the engine's log, Chinese for check-config: both worded where the problem
    arises, a field's problem as 配置项 FIELD：…, with nothing left in English but names."""
    err = load_error(write(tmp_path, BROKEN[name]))
    assert len(err.problems) >= 3
    for problem in err.problems:
        field, _, _ = problem.partition(": ")
        assert problem.zh.startswith(f"配置项 {field}："), (problem, problem.zh)
        text = KEPT_LATIN.sub("", problem.zh.removeprefix(f"配置项 {field}："))
        assert re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[A-Za-z]{3,}", text), (problem, problem.zh)


def test_a_file_s_problems_are_chinese_too(tmp_path):
    broken = write(tmp_path, "id = [", "broken.toml")
    county = write(tmp_path, 'name = "县"\ninclude = ["a.toml", "nowhere/*.toml"]\n', "county.toml")
    write(tmp_path, base_site(), "a.toml")
    for load, path, zh in [
        (load_site, broken, "不是有效的 TOML："),
        (load_site, tmp_path / "missing.toml", "无法读取文件："),
        (expand_config_paths, county, "配置项 include[1]：'nowhere/*.toml' 在 "),
    ]:
        with pytest.raises(ConfigError) as info:
            load([path]) if load is expand_config_paths else load(path)
        (problem,) = info.value.problems
        assert problem.zh.startswith(zh), problem.zh


# ---------------------------------------------------------------------------
# Several sites
# ---------------------------------------------------------------------------


def test_load_sites_distinct_ids(tmp_path):
    first = write(tmp_path, base_site(), "a.toml")
    second = write(tmp_path, base_site(head=BASE_HEAD.replace('id = "mini"', 'id = "other"')), "b.toml")
    sites = load_sites([first, second, DEMO])
    assert [s.id for s in sites] == ["mini", "other", "demo"]


def test_load_sites_duplicate_id(tmp_path):
    first = write(tmp_path, base_site(), "chimei.toml")
    second = write(tmp_path, base_site(), "chimei-copy.toml")
    with pytest.raises(ConfigError) as info:
        load_sites([first, second])
    err = info.value
    assert err.path == str(second)  # the later file is the one at fault
    assert_every_line_names_file(err, second)
    assert err.problems == [f"id: site 'mini' is already defined in {first}"]


def test_load_sites_reports_the_invalid_file(tmp_path):
    good = write(tmp_path, base_site(), "good.toml")
    bad = write(tmp_path, base_site(head=BASE_HEAD.replace('kind = "township"', 'kind = "city"')), "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_sites([good, bad])
    assert info.value.path == str(bad)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("kind: ")
    assert "'township'" in info.value.problems[0]


def test_complaint_telephones_are_checked_and_labelled():
    data = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    site = parse_site(data)
    assert site.complaints.labelled() == ["县投诉电话：0377-65532345", "乡镇投诉电话：0377-65761234"]
    data["complaints"] = {"county": "12345", "township": "0377-6576123转8001"}
    assert [n for _, n in parse_site(data).complaints.lines()] == ["12345", "0377-6576123转8001"]
    data["complaints"] = {"county": "call us", "town": "1"}
    with pytest.raises(ConfigError) as err:
        parse_site(data, "chimei.toml")
    assert err.value.problems == [
        "complaints.county: 'call us' is not a telephone number: digits and '-', optionally 转 and an extension, "
        'e.g. "0377-65123456" or "12345"',
        "complaints.town: unknown field (not allowed here)",
    ]


# ---------------------------------------------------------------------------
# 限时办结: the promise in numbers
# ---------------------------------------------------------------------------


def guided(item_type: str, time_limit: str, promise: str = "") -> str:
    """The base services, the second with a guide of this item type, wording and promise."""
    return (
        BASE_SERVICES
        + f'\n[services.guide]\ntime_limit = "{time_limit}"\nitem_type = "{item_type}"\n'
        + (f"promise_working_days = {promise}\n" if promise else "")
    )


def test_a_promised_item_must_state_its_working_days(tmp_path):
    path = write(tmp_path, base_site(services=guided("承诺件", "5个工作日")))
    err = load_error(path)
    assert_every_line_names_file(err, path)
    assert err.problems == [
        "services[1].guide: a 承诺件 must state its promise in numbers: promise_working_days = N (working days)"
    ]


def test_an_on_the_spot_item_promises_no_days(tmp_path):
    err = load_error(write(tmp_path, base_site(services=guided("即办件", "即办", "3"))))
    assert err.problems[0].startswith("services[1].guide: a 即办件 is done on the spot")


@pytest.mark.parametrize("days", ["0", "366", '"five"'])
def test_the_promise_is_a_number_of_working_days_within_a_year(tmp_path, days):
    err = load_error(write(tmp_path, base_site(services=guided("承诺件", "5个工作日", days))))
    assert [p.split(":")[0] for p in err.problems] == ["services[1].guide.promise_working_days"]


def test_an_unknown_item_type_is_refused(tmp_path):
    err = load_error(write(tmp_path, base_site(services=guided("承若件", "5个工作日"))))
    assert err.problems[0].startswith("services[1].guide.item_type:")


@pytest.mark.parametrize(
    ("item_type", "time_limit", "promise", "warning"),
    [
        ("承诺件", "5个工作日", "5", None),
        ("承诺件", "当场登记，3个工作日内答复", "3", None),
        ("即办件", "即办", "", None),
        ("承诺件", "20 个工作日", "15", "says 20 working days but promise_working_days = 15"),
        ("承诺件", "即办", "3", "reads as 即办 but item_type is 承诺件"),
        ("即办件", "3个工作日", "", "promises working days but item_type is 即办件"),
        ("承诺件", "一个月内", "20", None),  # wording it cannot read: left alone
    ],
)
def test_check_config_warns_where_the_published_time_limit_disagrees(tmp_path, item_type, time_limit, promise, warning):
    path = write(tmp_path, base_site(services=guided(item_type, time_limit, promise)))
    done = run_cli("check-config", "--lang", "en", str(path))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if ": warning: services" in line]
    if warning is None:
        assert warnings == []
    else:
        assert warnings == [f"{path}: warning: services[1].guide.time_limit {time_limit!r} {warning}"]


def test_every_promised_item_of_the_examples_states_its_days_as_published():
    examples = [p for p in sorted(DEMO.parent.rglob("*.toml")) if p.name != "county.toml"]  # sites, not the deployment
    done = run_cli("check-config", "--lang", "en", *map(str, examples))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": warning: services" not in done.stdout
    promised = [s for path in examples for s in load_site(path).services if s.guide.item_type == "承诺件"]
    assert len(promised) >= 10 and all(s.guide.promise_working_days for s in promised)
