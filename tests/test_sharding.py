"""Many sites: a county file including township files, and engines splitting a county's
sites between them (--sites, --shard i/n)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import ROOT, EngineProcess
from mqtt_helpers import Device, Listener

from queue_engine.config import ConfigError, load_configs, load_deployment
from queue_engine.deploy.sharding import parse_shard, pick_sites, shard_of, shard_plan

COUNTY = ROOT / "examples" / "county" / "county.toml"
COUNTY_SITES = ["neixiang", "chimei", "xiaguan", "nanwan"]
# The first service of each site of the county example, and the staff of its window w01.
FIRST_SERVICE = {"neixiang": "shebao", "chimei": "shebao", "xiaguan": "shebao", "nanwan": "daiban"}


def cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


# -- the county file ---------------------------------------------------------------------------
def test_a_county_file_includes_its_township_and_village_files():
    sites = load_deployment(COUNTY)
    assert [s.id for s in sites] == COUNTY_SITES
    assert [s.kind for s in sites] == ["county", "township", "township", "village"]
    assert [s.id for s in load_configs([COUNTY])] == COUNTY_SITES


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_county_file_problems_name_the_file_the_field_and_the_problem(tmp_path):
    chimei = (ROOT / "examples" / "county" / "townships" / "chimei.toml").read_text(encoding="utf-8")
    write(tmp_path / "t" / "chimei.toml", chimei)
    cases = {
        'include = ["t/nosuch.toml"]': "include[0]: 't/nosuch.toml': no such file",
        'include = ["v/*.toml"]': "include[0]: 'v/*.toml' matches no file",
        "include = []": "include: List should have at least 1 item",
        'include = ["t/chimei.toml"]\nowner = "x"': "owner: unknown field",
        'include = ["t/chimei.toml", "t/../t/chimei.toml"]': "is included twice",
        'include = ["county.toml"]': "includes",
    }
    for text, expected in cases.items():
        county = write(tmp_path / "county.toml", text)
        with pytest.raises(ConfigError) as err:
            load_deployment(county)
        assert str(err.value).startswith(f"{county}: ") and expected in str(err.value), (text, str(err.value))
    # A problem inside an included file names that file.
    write(tmp_path / "t" / "bad.toml", chimei.replace('id = "chimei"', 'id = "Chimei"', 1))
    county = write(tmp_path / "county.toml", 'include = ["t/chimei.toml", "t/bad.toml"]')
    with pytest.raises(ConfigError) as err:
        load_deployment(county)
    assert str(err.value).startswith(f"{tmp_path / 't' / 'bad.toml'}: id:")
    # The same site twice, from two files, is refused naming both.
    write(tmp_path / "t" / "copy.toml", chimei)
    county = write(tmp_path / "county.toml", 'include = ["t/chimei.toml", "t/copy.toml"]')
    with pytest.raises(ConfigError, match="site 'chimei' is already defined in"):
        load_deployment(county)


# -- the split ---------------------------------------------------------------------------------
def test_shards_cover_every_site_once_and_adding_a_site_moves_no_other():
    ids = [f"site{n:03d}" for n in range(300)]
    for count in range(1, 6):
        plan = shard_plan(ids, count)
        assert sorted(i for shard in plan.values() for i in shard) == sorted(ids)  # each once
        assert all(len(shard) > 300 / count / 2 for shard in plan.values())  # roughly even
        grown = shard_plan(ids + ["newvillage"], count)
        assert {i: shard_of(i, count) for i in ids} == {
            i: s for s, members in grown.items() for i in members if i != "newvillage"
        }
        # One more engine: only sites the new engine takes over move.
        moved = [i for i in ids if shard_of(i, count) != shard_of(i, count + 1)]
        assert all(shard_of(i, count + 1) == count + 1 for i in moved)
        assert len(moved) < 300 / (count + 1) * 1.5


def test_shard_and_site_options_are_checked():
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/2", "0/2", "1/0", "1", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
    sites = load_deployment(COUNTY)
    assert [s.id for s in pick_sites(sites, ["nanwan", "chimei"])] == ["chimei", "nanwan"]
    with pytest.raises(ValueError, match="no such site in the configuration: nosuch"):
        pick_sites(sites, ["chimei", "nosuch"])
    result = cli("engine", "--config", str(COUNTY), "--shard", "3/2")
    assert result.returncode == 2 and "i must be between 1 and n" in result.stderr
    result = cli("engine", "--config", str(COUNTY), "--sites", "chimei,nosuch", "--db", "/nonexistent/x.db")
    assert result.returncode == 2 and "no such site in the configuration: nosuch" in result.stderr
    result = cli("engine", "--config", str(COUNTY), "--sites", "chimei", "--shard", "1/2")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    result = cli("shards", "--config", str(COUNTY), "--count", "2")
    assert result.returncode == 0
    plan = shard_plan(COUNTY_SITES, 2)
    assert result.stdout == f"1/2: {', '.join(plan[1])}\n2/2: {', '.join(plan[2])}\n"


def test_engines_that_split_sites_get_sessions_of_their_own():
    from queue_engine.deploy.sharding import engine_client_id

    def client_id(client_id="hallwatch-engine", **kwargs):
        return engine_client_id(client_id, **kwargs)

    assert client_id() == "hallwatch-engine"
    assert client_id(shard=(2, 3)) == "hallwatch-engine-2of3"
    assert (
        client_id(sites=["nanwan", "chimei"])
        == client_id(sites=["chimei", "nanwan"])
        == ("hallwatch-engine-chimei-nanwan")
    )
    many = [f"village-{n:03d}" for n in range(40)]
    assert client_id(sites=many) == client_id(sites=many[::-1]) != client_id(sites=many[1:])
    assert len(client_id(sites=many)) <= 64
    assert client_id(client_id="east-engine", shard=(1, 2)) == "east-engine"  # given explicitly: kept


# -- two engines, one county ----------------------------------------------------------------------
@pytest.mark.integration
def test_two_engines_split_a_four_site_county_without_overlap(broker, tmp_path):
    plan = shard_plan(COUNTY_SITES, 2)
    assert plan[1] and plan[2]  # the example county gives each engine work
    engines = [
        EngineProcess(
            broker,
            tmp_path / f"shard{i}.db",
            [COUNTY],
            tmp_path / f"engine{i}",
            client_id="hallwatch-engine",
            extra_args=["--shard", f"{i}/2"],
        )
        for i in (1, 2)
    ]
    alerts = Listener(broker.port, "hallwatch/+/alerts")
    devices = []
    try:
        for engine in engines:
            engine.start()
        for i, engine in enumerate(engines, 1):
            log = engine.log_text()
            assert f"sites {','.join(s for s in COUNTY_SITES if s in plan[i])}," in log
            assert f"as hallwatch-engine-{i}of2" in log  # two engines, two persistent sessions
        for site in COUNTY_SITES:
            kiosk = Device(broker.port, f"{site}-kiosk-1", site=site)
            panel = Device(broker.port, f"{site}-panel-w01", site=site)
            camera = Device(broker.port, f"{site}-cam-w01", site=site)
            devices += [kiosk, panel, camera]
            service = FIRST_SERVICE[site]
            assert kiosk.request("ticket.request", service=service)["ticket"]["no"] == "A001"
            assert kiosk.request("ticket.request", service=service)["ticket"]["no"] == "A002"
            staff = {"neixiang": "s101", "chimei": "s201", "xiaguan": "s301", "nanwan": "s401"}[site]
            assert panel.request("staff.login", staff=staff)["ok"]
            assert panel.request("call.next")["ticket"] == "A001"
            camera.raw(json.dumps({"v": 1, "state": "online", "kind": "camera", "window": "w01"}), channel="status")
            camera.raw(json.dumps({"v": 1, "state": "offline", "reason": "shutdown"}), channel="status")
            alerts.wait_topic(f"hallwatch/{site}/alerts")
        # One more round trip per site after the alerts: anything doubled would be in by now.
        for kiosk in devices[::3]:
            assert kiosk.request("ticket.request", service=FIRST_SERVICE[kiosk.site])["ticket"]["no"] == "A003"
        for site in COUNTY_SITES:
            fired = [a for a in alerts.on(f"hallwatch/{site}/alerts") if a["state"] == "firing"]
            assert [(a["kind"], a["device"]) for a in fired] == [("device_shutdown", f"{site}-cam-w01")]
        for kiosk in devices[::3]:
            assert len(kiosk.reply_log) == 3  # one engine answered each request, once
        for i, engine in enumerate(engines, 1):
            with sqlite3.connect(engine.db) as db:
                stored = {row[0] for row in db.execute("select distinct site from tickets")}
            assert stored == set(plan[i])
    finally:
        alerts.close()
        for d in devices:
            d.close()
        for engine in engines:
            engine.stop()


# -- one broker account per engine ----------------------------------------------------------------
def test_broker_config_gives_each_engine_an_account_of_its_own_for_its_sites_only(tmp_path):
    import csv

    from queue_engine.deploy.sharding import client_id_warning

    out = tmp_path / "shards"
    result = cli(
        "broker-config",
        "--config",
        str(COUNTY),
        "--out",
        str(out),
        "--shards",
        "2",
        "--engine-url",
        "mqtt://10.0.0.5:1883",
    )
    assert result.returncode == 0, result.stderr
    with (out / "credentials.csv").open(newline="", encoding="utf-8") as f:
        engines = {row["username"]: row["password"] for row in csv.DictReader(f) if row["role"] == "engine"}
    assert set(engines) == {"hallwatch-engine-1of2", "hallwatch-engine-2of2"}  # no shared hallwatch-engine
    acl = (out / "acl").read_text(encoding="utf-8").split("\n\n")
    for index, sites in shard_plan(COUNTY_SITES, 2).items():
        user = f"hallwatch-engine-{index}of2"
        (block,) = [b for b in acl if f"\nuser {user}\n" in b]
        assert {line.split("/")[1] for line in block.splitlines() if line.startswith("topic")} == set(sites)
        env = (out / f"engine-{index}of2.env").read_text(encoding="utf-8")
        assert env.endswith(f"HALLWATCH_BROKER=mqtt://{user}:{engines[user]}@10.0.0.5:1883\n")
        assert f"--shard {index}/2" in env
    # Engines started with --sites: one account per group, named as such an engine names its client id.
    result = cli(
        "broker-config",
        "--config",
        str(COUNTY),
        "--out",
        str(tmp_path / "groups"),
        "--engine-sites",
        "nanwan,chimei",
        "--engine-sites",
        "neixiang,xiaguan",
    )
    assert result.returncode == 0, result.stderr
    assert "HALLWATCH_BROKER=mqtt://hallwatch-engine-chimei-nanwan:" in (
        tmp_path / "groups" / "engine-chimei-nanwan.env"
    ).read_text(encoding="utf-8")
    for args, problem in (
        (("--shards", "5"), "none of the 4 sites falls to --shard 4/5, --shard 5/5"),
        (("--engine-sites", "chimei,nanwan"), "no engine serves neixiang, xiaguan"),
        (
            ("--engine-sites", "chimei", "--engine-sites", "chimei,nanwan,neixiang,xiaguan"),
            "site chimei is in two groups",
        ),
    ):
        result = cli("broker-config", "--config", str(COUNTY), "--out", str(tmp_path / "bad"), *args)
        assert result.returncode == 2 and problem in result.stderr, result.stderr
    # An engine whose client id is not its user name is told what the production broker makes of it.
    assert client_id_warning("hallwatch-engine-1of2", "hallwatch-engine-1of2") is None
    assert "take each other's connection" in client_id_warning("hallwatch-engine-1of2", "hallwatch-engine")
