"""Metrics, the health check, the Prometheus rules and the Grafana dashboards, checked by the
real tools: the engine as a process with ``--http``, a real Mosquitto, Debian's promtool and
a real Prometheus server scraping the engine on loopback."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_SITE, ROOT, Broker, EngineProcess, free_port, wait_until
from mqtt_helpers import Device
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = ROOT / "dashboards" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "dashboards" / "grafana" / "dashboards").glob("*.json"))
METRICS_DOC = ROOT / "docs" / "metrics.md"


def tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(f"{name} is not installed: run `make test`, which installs Debian's prometheus package")


# -- HTTP and exposition helpers ------------------------------------------------------------
def http_get(url: str, timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def declared_types(text: str) -> dict[str, str]:
    """Metric family -> type, from the ``# TYPE`` lines of the text exposition format."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def exposed_names(text: str) -> set[str]:
    """Every series name the output can hold: families, and histograms' _bucket/_sum/_count."""
    names = set()
    for name, kind in declared_types(text).items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


# -- PromQL: metric names used by rules and dashboards ---------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The hallwatch series a PromQL expression reads (label values and strings aside)."""
    bare = _STRING.sub('""', expr)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors: [5m], [$__range]
    return {name for name in _IDENT.findall(bare) if "hallwatch_" in name}


def dashboard_exprs(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    exprs = []

    def walk(panels):
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(re.sub(r"^label_values\((.*), *\w+\)$", r"\1", variable["definition"]))
    return exprs


def grafana_to_promql(expr: str, site: str) -> str:
    return (
        expr.replace("$site", site)
        .replace("$__range", "1h")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
    )


# -- the stack: broker, engine with --http, Prometheus scraping it ---------------------------
@dataclass
class Stack:
    broker: Broker
    engine: EngineProcess
    http: int
    prometheus: subprocess.Popen
    prom_port: int
    workdir: Path

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.http}/metrics"

    def metrics(self) -> str:
        status, _, body = http_get(self.metrics_url)
        assert status == 200
        return body

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, _, body = http_get(url)
        payload = json.loads(body)
        assert status == 200 and payload["status"] == "success", payload
        return payload["data"]

    def query(self, expr: str) -> dict[frozenset, float]:
        data = self.api("query", query=expr)
        return {
            frozenset((k, v) for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")): float(
                r["value"][1]
            )
            for r in data["result"]
        }


def start_prometheus(workdir: Path, engine_http: int) -> tuple[subprocess.Popen, int]:
    """Debian's Prometheus server with a config of its own: the engine on loopback every
    second, the project's rule files evaluated every second. JSON is YAML. Returns at once:
    ``wait_prometheus`` waits until it answers."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [{"job_name": "hallwatch", "static_configs": [{"targets": [f"127.0.0.1:{engine_http}"]}]}],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))
    log = open(workdir / "prometheus.log", "w")
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--scrape.discovery-reload-interval=100ms",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc, port


def wait_prometheus(proc: subprocess.Popen, port: int, workdir: Path) -> None:
    def ready():
        if proc.poll() is not None:
            return "exited"
        try:
            return http_get(f"http://127.0.0.1:{port}/-/ready")[0] == 200
        except OSError:
            return False

    wait_until(ready, timeout=20, what="prometheus ready")
    if proc.poll() is not None:
        raise RuntimeError(f"prometheus exited:\n{(workdir / 'prometheus.log').read_text()}")


def drive_traffic(port: int) -> None:
    """A morning's beginning at the demo hall, through MQTT as the devices send it."""
    kiosk, w01, w02 = Device(port, "kiosk-1"), Device(port, "panel-w01"), Device(port, "panel-w02")
    pad, cam1, cam2, cam3 = (
        Device(port, "pad-w02"),
        Device(port, "cam-w01"),
        Device(port, "cam-w02"),
        Device(port, "cam-w03"),
    )
    for device in (kiosk, w01, w02, pad, cam1, cam2, cam3):  # no Nagle delay (see docs/benchmarks.md)
        device.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for service in ("budongchan", "shebao", "shebao", "shebao"):
            assert kiosk.request("ticket.request", service=service)["ok"]
        first = kiosk.send("ticket.request", event_id="dup-1", service="huji")
        assert kiosk.wait_reply(first)["ticket"]["no"] == "E001"
        kiosk.send("ticket.request", event_id="dup-1", service="huji")  # redelivered: answered, not applied
        kiosk.raw(b"{not json")  # rejected: bad_json

        assert w02.request("staff.login", staff="s001")["ok"]
        assert w02.request("service.finish", outcome="done")["error"] == "no_current_ticket"  # refused
        assert w02.request("call.next")["ticket"] == "A001"
        assert w02.request("call.recall")["ok"]  # not a new call
        assert w02.request("service.start")["ok"]
        assert w02.request("service.finish", outcome="done")["ok"]
        assert pad.request("rating", window="w02", score=5)["ok"]
        assert w02.request("call.next")["ticket"] == "A002"
        assert w02.request("call.skip")["ok"]  # no-show

        assert w01.request("staff.login", staff="s002")["ok"]
        assert w01.request("call.next")["ticket"] == "B001"
        assert w01.request("service.start")["ok"]
        assert w01.request("ticket.transfer", to_service="shebao")["ok"]

        online = {"v": 1, "state": "online", "kind": "camera", "fw": "1.0"}
        cam1.raw(json.dumps({**online, "window": "w01"}), channel="status")
        cam2.raw(json.dumps({**online, "window": "w02"}), channel="status")
        cam3.raw(json.dumps({**online, "window": "w03"}), channel="status")
        # Somebody at window 2's seat: staffed.
        cam2.raw(json.dumps({"v": 1, "id": "p2", "type": "presence", "window": "w02", "present": True, "count": 1}))
        # Nobody at window 1's seat: the window is open but unstaffed.
        cam1.raw(json.dumps({"v": 1, "id": "p1", "type": "presence", "window": "w01", "present": False, "count": 0}))
        cam3.raw(json.dumps({"v": 1, "id": "t1", "type": "tamper", "kind": "occluded"}))  # a critical alert
    finally:
        for device in (kiosk, w01, w02, pad, cam1, cam2, cam3):
            device.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    http = free_port()
    broker = Broker(workdir / "broker").start()
    engine = EngineProcess(
        broker, workdir / "hallwatch.db", [DEMO_SITE], workdir / "engine", extra_args=["--http", f"127.0.0.1:{http}"]
    )
    prometheus = None
    try:
        # Prometheus first: it takes a few seconds to apply its targets, the traffic meanwhile.
        prometheus, prom_port = start_prometheus(workdir / "prometheus", http)
        engine.start()
        drive_traffic(broker.port)
        s = Stack(broker, engine, http, prometheus, prom_port, workdir)
        wait_until(
            lambda: (
                value(
                    s.metrics(),
                    "hallwatch_alerts_active",
                    site="demo",
                    kind="camera_tamper",
                    severity="critical",
                    state="firing",
                )
                == 1
                and value(s.metrics(), "hallwatch_windows", site="demo", state="unstaffed") == 1
            ),
            what="presence and tamper applied",
        )
        wait_prometheus(prometheus, prom_port, workdir / "prometheus")
        wait_until(lambda: s.query('up{job="hallwatch"} == 1'), what="prometheus has scraped the engine")
        yield s
    finally:
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()
            try:
                prometheus.wait(10)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
        engine.stop()
        broker.stop()


# -- the engine's own output -----------------------------------------------------------------
EXPECTED_AFTER_TRAFFIC = [
    # (metric, labels, value)
    ("hallwatch_tickets_issued_total", {"site": "demo", "service": "shebao"}, 3),
    ("hallwatch_tickets_issued_total", {"site": "demo", "service": "budongchan"}, 1),
    ("hallwatch_tickets_issued_total", {"site": "demo", "service": "huji"}, 1),
    ("hallwatch_tickets_waiting", {"site": "demo", "service": "shebao"}, 2),  # A003, and B001 transferred
    ("hallwatch_tickets_waiting", {"site": "demo", "service": "huji"}, 1),
    ("hallwatch_tickets_waiting", {"site": "demo", "service": "budongchan"}, 0),
    ("hallwatch_tickets_called_total", {"site": "demo", "service": "shebao", "window": "w02"}, 2),
    ("hallwatch_tickets_called_total", {"site": "demo", "service": "budongchan", "window": "w01"}, 1),
    ("hallwatch_tickets_served_total", {"site": "demo", "service": "shebao", "window": "w02", "outcome": "done"}, 1),
    ("hallwatch_tickets_no_show_total", {"site": "demo", "service": "shebao", "window": "w02"}, 1),
    ("hallwatch_tickets_transferred_total", {"site": "demo", "service": "shebao", "window": "w01"}, 1),
    ("hallwatch_wait_seconds_count", {"site": "demo", "service": "shebao"}, 2),
    ("hallwatch_wait_seconds_count", {"site": "demo", "service": "budongchan"}, 1),
    ("hallwatch_service_seconds_count", {"site": "demo", "service": "shebao"}, 1),
    ("hallwatch_ratings_total", {"site": "demo", "window": "w02", "score": "5"}, 1),
    ("hallwatch_events_rejected_total", {"site": "demo", "reason": "bad_json"}, 1),
    ("hallwatch_events_refused_total", {"site": "demo", "reason": "no_current_ticket"}, 1),
    ("hallwatch_events_duplicate_total", {"site": "demo"}, 1),
    ("hallwatch_windows", {"site": "demo", "state": "unstaffed"}, 1),
    ("hallwatch_windows", {"site": "demo", "state": "staffed"}, 1),
    ("hallwatch_windows", {"site": "demo", "state": "unverified"}, 0),
    ("hallwatch_windows", {"site": "demo", "state": "paused"}, 0),
    ("hallwatch_windows", {"site": "demo", "state": "not_opened"}, 8),  # 09:00: every window must be staffed
    ("hallwatch_windows", {"site": "demo", "state": "closed"}, 0),
    ("hallwatch_window_staffed", {"site": "demo", "window": "w01"}, 0),
    ("hallwatch_window_staffed", {"site": "demo", "window": "w02"}, 1),
    ("hallwatch_devices_online", {"site": "demo", "kind": "camera"}, 3),
    ("hallwatch_device_up", {"site": "demo", "device": "cam-w03", "kind": "camera"}, 1),
    ("hallwatch_device_up", {"site": "demo", "device": "cam-w05", "kind": "camera"}, 0),
    (
        "hallwatch_alerts_active",
        {"site": "demo", "kind": "camera_tamper", "severity": "critical", "state": "firing"},
        1,
    ),
    ("hallwatch_alerts_raised_total", {"site": "demo", "kind": "camera_tamper", "severity": "critical"}, 1),
    ("hallwatch_site_open", {"site": "demo"}, 1),  # 09:00 on a Wednesday, 08:30-12:00
    ("hallwatch_mqtt_connected", {}, 1),
    ("hallwatch_store_writable", {}, 1),
]


def test_the_engine_counts_what_the_devices_did(stack):
    text = stack.metrics()
    got = [(name, labels, value(text, name, **labels)) for name, labels, _ in EXPECTED_AFTER_TRAFFIC]
    assert got == EXPECTED_AFTER_TRAFFIC
    assert value(text, "hallwatch_events_processed_total") == 25  # every message above but the bad JSON
    assert value(text, "hallwatch_store_commit_batch_size_count") >= 1
    assert value(text, "hallwatch_store_commit_seconds_count") == value(text, "hallwatch_store_commit_batch_size_count")


def test_live_metrics_pass_promtool_check_metrics(stack):
    text = stack.metrics()
    assert "hallwatch_tickets_served_total{" in text  # an engine that has processed traffic
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    rows = re.findall(r"^\| `(hallwatch_\w+)` \| (\w+) \|([^|]*)\|", METRICS_DOC.read_text(encoding="utf-8"), re.M)
    return {
        name: (kind, frozenset(label.strip() for label in labels.split(",") if label.strip()))
        for name, kind, labels in rows
    }


def test_docs_metrics_lists_exactly_the_metrics_the_engine_serves(stack):
    text = stack.metrics()
    served = declared_types(text)
    documented = documented_metrics()
    assert sorted(set(served) - set(documented)) == [], "served but not in docs/metrics.md"
    assert sorted(set(documented) - set(served)) == [], "in docs/metrics.md but not served"
    assert {name: kind for name, (kind, _) in documented.items()} == served
    # The labels too, for every metric that has a series.
    seen: dict[str, set[str]] = {}
    for (name, labels), _ in samples(text).items():
        family = next((f for f in (name, re.sub(r"_(bucket|sum|count)$", "", name)) if f in served), None)
        seen.setdefault(family, set()).update(k for k, _ in labels if k != "le")
    assert {name: documented[name][1] for name in seen} == {name: frozenset(labels) for name, labels in seen.items()}


def test_healthz_and_unknown_paths(stack):
    status, content_type, body = http_get(f"http://127.0.0.1:{stack.http}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert content_type.startswith("application/json")
    status, content_type, body = http_get(f"http://127.0.0.1:{stack.http}/no/such/page")
    assert status == 404 and content_type.startswith("application/json")
    assert json.loads(body)["error"] == "not_found"
    status, content_type, _ = http_get(stack.metrics_url)
    assert status == 200 and content_type.startswith("text/plain")


# -- Prometheus ----------------------------------------------------------------------------------
def test_prometheus_scrapes_the_engine_and_reads_back_what_happened(stack):
    targets = stack.api("targets")["activeTargets"]
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("hallwatch", "up")]
    for name, labels, expected in EXPECTED_AFTER_TRAFFIC:
        selector = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        wait_until(
            lambda selector=selector, labels=labels, expected=expected: (
                stack.query(selector).get(frozenset(labels.items())) == expected
            ),
            what=f"prometheus: {selector} == {expected}",
        )
    # Computed by Prometheus from the series, and by the recording rules.
    checks = {
        "sum(hallwatch_tickets_issued_total{site='demo'})": 5,
        "site:hallwatch_tickets_waiting:sum{site='demo'}": 3,
        "site:hallwatch_windows_staffed:sum{site='demo'}": 1,
        "sum(hallwatch_window_staffed{site='demo'})": 1,
        "site_severity:hallwatch_alerts_active:sum{site='demo',severity='critical'}": 1,
    }
    for expr, expected in checks.items():

        def got(expr=expr, expected=expected):
            result = list(stack.query(expr).values())
            return result and round(result[0], 6) == expected

        wait_until(got, what=f"prometheus: {expr} == {expected}")


def test_every_rule_loads_and_evaluates_cleanly_on_the_engine_s_series(stack):
    def evaluated():
        groups = stack.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules) else None

    rules = wait_until(evaluated, what="every rule evaluated once")
    assert len(rules) == sum(f.read_text().count("- record:") + f.read_text().count("- alert:") for f in RULE_FILES)
    assert [(r["name"], r.get("lastError", "")) for r in rules if r["health"] != "ok"] == []


def test_every_dashboard_query_runs_on_prometheus(stack):
    for path in DASHBOARDS:
        for expr in dashboard_exprs(path):
            stack.api("query", query=grafana_to_promql(expr, "demo"))  # asserts status success


def test_grafana_shows_the_product_s_words_joined_from_the_engine_s_vocabulary(stack):
    """The windows-by-state panel, run on Prometheus, labels each state with the vocabulary's
    word; the 满意率 queries count the scores core/figures.py counts."""
    from queue_engine.core.figures import SATISFIED_SCORES
    from queue_engine.core.vocabulary import STAFFING

    hall = json.loads((ROOT / "dashboards/grafana/dashboards/hallwatch-hall.json").read_text(encoding="utf-8"))
    (panel,) = [p for p in hall["panels"] if p["title"].startswith("窗口状态")]
    expr = grafana_to_promql(panel["targets"][0]["expr"], "demo")
    by_label = wait_until(
        lambda: {dict(k)["label"]: v for k, v in stack.query(expr).items()} or None, what="windows by state, joined"
    )
    assert by_label == {
        label: by_state
        for label, by_state in (
            (STAFFING["staffed"], 1),
            (STAFFING["unstaffed"], 1),
            (STAFFING["not_opened"], 8),
            (STAFFING["unverified"], 0),
            (STAFFING["closed"], 0),
            (STAFFING["paused"], 0),
        )
    }
    scores = "|".join(str(s) for s in SATISFIED_SCORES)
    satisfied = [
        e for path in DASHBOARDS for e in dashboard_exprs(path) if "hallwatch_ratings_total{" in e and "score=~" in e
    ]
    rules = (PROMETHEUS_DIR / "rules" / "hallwatch-recording.yml").read_text(encoding="utf-8")
    assert satisfied and all(f'score=~"{scores}"' in e for e in satisfied)
    assert f'score=~"{scores}"' in rules


# A legend's placeholders that are Chinese words: the vocabulary's (joined from
# hallwatch_label_info) and a site's name (joined from hallwatch_site_info).
CHINESE_PLACEHOLDERS = {
    "label": "hallwatch_label_info",
    "severity_label": "hallwatch_label_info",
    "name": "hallwatch_site_info",
}
PLACEHOLDER = re.compile(r"\{\{ *(\w+) *\}\}")


def dashboard_targets(dashboard: dict) -> list[tuple[dict, dict]]:
    """(panel, target) for every query of every panel, rows' panels included."""
    found = []

    def walk(panels):
        for panel in panels:
            found.extend((panel, target) for target in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return found


def every_panel(dashboard: dict) -> list[dict]:
    return [p for panel in dashboard["panels"] for p in [panel, *panel.get("panels", [])]]


def test_every_dashboard_title_legend_and_column_speaks_chinese():
    """Titles, legends, value mappings and table columns are Chinese, without an English half;
    a legend made only of placeholders shows words its query joins from the engine's
    vocabulary or site names. The queries themselves are run on Prometheus by the tests above."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert CJK.search(dashboard["title"]) and CJK.search(dashboard["description"]), path.name
        for panel in every_panel(dashboard):
            texts = [panel["title"], *filter(None, [panel.get("description")])]
            texts += [
                m["text"]
                for m in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", [])
                for m in (m.get("options") or {}).values()
                if isinstance(m, dict) and "text" in m
            ]
            texts += [
                c
                for t in panel.get("transformations", [])
                for c in t["options"].get("renameByName", {}).values()
                if c != "-"
            ]  # "-": a hidden column
            for text in texts:
                assert CJK.search(text) and not re.search(r"[A-Za-z]{2,}", text), (path.name, text)
        for panel, target in dashboard_targets(dashboard):
            legend = target["legendFormat"]
            placeholders = PLACEHOLDER.findall(legend)
            words = PLACEHOLDER.sub("", legend)
            assert not re.search(r"[A-Za-z]{2,}", words), (path.name, panel["title"], legend)
            if not CJK.search(words):
                assert placeholders and set(placeholders) <= set(CHINESE_PLACEHOLDERS), (path.name, legend)
            for name in set(placeholders) & set(CHINESE_PLACEHOLDERS):
                assert CHINESE_PLACEHOLDERS[name] in target["expr"], (path.name, legend)


def test_the_dashboards_legends_show_chinese_words_on_prometheus(stack):
    """Run on the engine's series, every legend that names the vocabulary's words or a site's
    name gets them, in Chinese: the joins match."""
    seen = set()
    for path in DASHBOARDS:
        for panel, target in dashboard_targets(json.loads(path.read_text(encoding="utf-8"))):
            wanted = set(PLACEHOLDER.findall(target["legendFormat"])) & set(CHINESE_PLACEHOLDERS)
            if not wanted:
                continue
            result = stack.query(grafana_to_promql(target["expr"], "demo"))
            for labels in map(dict, result):
                assert all(CJK.search(labels.get(name, "")) for name in wanted), (path.name, panel["title"], labels)
                seen |= wanted
    assert seen == set(CHINESE_PLACEHOLDERS)


def test_dashboards_and_rules_use_only_metrics_the_engine_serves(stack):
    served = exposed_names(stack.metrics())
    rules = [r for g in stack.api("rules")["groups"] for r in g["rules"]]  # parsed by Prometheus itself
    recorded = {r["name"] for r in rules if r["type"] == "recording"}
    used_by_rules = {name for r in rules for name in metric_names(r["query"])}
    assert used_by_rules, "no metric found in the rules: the check would prove nothing"
    assert sorted(used_by_rules - served - recorded) == []
    for path in DASHBOARDS:
        used = {name for expr in dashboard_exprs(path) for name in metric_names(expr)}
        assert used, path
        assert (path.name, sorted(used - served - recorded)) == (path.name, [])


def test_the_metric_name_extractor_sees_what_it_must():
    expr = (
        'sum by (site) (rate(hallwatch_wait_seconds_bucket{site=~"$site", kind="hallwatch_x"}[5m])) '
        '/ site:hallwatch_tickets_waiting:sum and on (site) up{job="hallwatch"}'
    )
    assert metric_names(expr) == {"hallwatch_wait_seconds_bucket", "site:hallwatch_tickets_waiting:sum"}


def test_dashboards_have_a_site_variable_and_filter_by_it():
    assert {p.name for p in DASHBOARDS} == {"hallwatch-hall.json", "hallwatch-county.json"}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["site"]["type"] == "query" and "hallwatch_site_info" in variables["site"]["definition"]
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels:
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
        if path.name == "hallwatch-hall.json":
            # One hall: every query is about the chosen site (the engine's own series through it).
            assert [e for e in dashboard_exprs(path)[:-1] if "$site" not in e] == []


# -- promtool on the rule files ------------------------------------------------------------------
def test_promtool_checks_the_rules_and_the_config():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    assert RULE_TESTS
    result = subprocess.run(
        [tool("promtool"), "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROMETHEUS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_rule_has_a_unit_test():
    alerts = set(
        re.findall(r"^\s*- alert: (\w+)$", (PROMETHEUS_DIR / "rules" / "hallwatch-alerts.yml").read_text(), re.M)
    )
    tested = set(re.findall(r"alertname: (\w+)", "".join(p.read_text() for p in RULE_TESTS)))
    assert alerts and alerts == tested
    recorded = set(re.findall(r"^\s*- record: (\S+)$", "".join(p.read_text() for p in RULE_FILES), re.M))
    exercised = set(re.findall(r"expr: (\S+)$", "".join(p.read_text() for p in RULE_TESTS), re.M))
    assert recorded and recorded == exercised


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_alert_speaks_chinese_and_its_unit_test_checks_the_words():
    """Each rule's summary and description are Chinese (summary_en stays for IT); each rule's
    promtool test expects them, rendered, so a template that no longer renders fails there.
    The words a template looks up are the vocabulary's own tables."""
    from queue_engine.core.vocabulary import TABLES

    rules = [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert rules
    looked_up = set()
    for rule in rules:
        notes = rule["annotations"]
        assert CJK.search(notes["summary"]) and CJK.search(notes["description"]), rule["alert"]
        assert not CJK.search(notes.get("summary_en", "")), rule["alert"]
        looked_up |= set(re.findall(r'label_info\{table=\\"(\w+)\\"', notes["summary"] + notes["description"]))
    assert looked_up and looked_up <= set(TABLES)
    expected = {
        test["alertname"]: alert["exp_annotations"]
        for path in RULE_TESTS
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for test in case.get("alert_rule_test", [])
        for alert in test["exp_alerts"]
    }
    for rule in rules:
        notes = expected[rule["alert"]]
        assert CJK.search(notes["summary"]) and CJK.search(notes["description"]), rule["alert"]
        assert "{{" not in notes["summary"] + notes["description"], rule["alert"]


# -- health follows the broker; the command line -------------------------------------------------
def test_healthz_is_503_while_the_broker_is_away_and_reconnects_are_counted(broker, engine_factory):
    http = free_port()
    engine_factory(extra_args=["--http", f"127.0.0.1:{http}"]).start()
    healthz, metrics = f"http://127.0.0.1:{http}/healthz", f"http://127.0.0.1:{http}/metrics"
    assert http_get(healthz)[0] == 200
    broker.stop()
    status, _, body = wait_until(
        lambda: (lambda r: r if r[0] == 503 else None)(http_get(healthz)), what="503 without the broker"
    )
    assert json.loads(body) == {"status": "unhealthy", "reason": "not connected to the broker"}
    assert value(http_get(metrics)[2], "hallwatch_mqtt_connected") == 0
    broker.start()
    wait_until(lambda: http_get(healthz)[0] == 200, timeout=20, what="200 once the broker is back")
    text = http_get(metrics)[2]
    assert (value(text, "hallwatch_mqtt_connected"), value(text, "hallwatch_mqtt_reconnects_total")) == (1, 1)


def run_cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def test_a_bad_http_address_exits_2(tmp_path):
    result = run_cli("engine", "--config", str(DEMO_SITE), "--db", str(tmp_path / "x.db"), "--http", "nowhere")
    assert result.returncode == 2
    assert "'nowhere' is not host:port" in result.stderr


def test_an_http_port_in_use_exits_2_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "engine",
            "--config",
            str(DEMO_SITE),
            "--db",
            str(tmp_path / "x.db"),
            "--http",
            f"127.0.0.1:{port}",
            "--connect-timeout",
            "1",
        )
    assert result.returncode == 2
    assert f"cannot serve HTTP on 127.0.0.1:{port}" in result.stderr
