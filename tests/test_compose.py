"""docker-compose.yml and the Dockerfile agree with the repository: every file they name
exists (or is made by the documented command), ports and paths match the broker's, the
engine's, Prometheus's and Grafana's configurations, and the image's install and start
commands work outside a container."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from deploy_helpers import PRODUCTION_CONF, broker_config, compose, interpolate, make_certs, volume_mounts

from queue_engine.cli import build_parser

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = compose()["services"]
OFFICIAL_IMAGES = {"mosquitto": "eclipse-mosquitto", "prometheus": "prom/prometheus", "grafana": "grafana/grafana"}


def container_path(service: str, path: str) -> Path:
    """The host path that a service's container path comes from (bind mounts only)."""
    best = None
    for source, target, is_bind in volume_mounts(SERVICES[service]):
        if (
            is_bind
            and (path == target or path.startswith(target.rstrip("/") + "/"))
            and (best is None or len(target) > len(best[1]))
        ):
            best = (source, target)
    assert best, f"{service}: nothing is mounted at {path}"
    source, target = best
    return ROOT / source.removeprefix("./") / path[len(target) :].lstrip("/")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The repository's var/, made by the commands docker-compose.yml and the docs name."""
    var = tmp_path_factory.mktemp("var")
    broker_config(var / "broker", ROOT / "examples" / "demo-site.toml")
    make_certs(var / "certs", "localhost", "127.0.0.1")
    return var


def test_images_are_official_and_pinned_and_the_engine_is_built_here():
    for service, image in OFFICIAL_IMAGES.items():
        name, _, tag = SERVICES[service]["image"].partition(":")
        assert name == image and re.match(r"v?\d+\.\d+", tag), SERVICES[service]["image"]
    assert SERVICES["engine"]["build"] == "."
    assert SERVICES["simulator"]["image"] == SERVICES["engine"]["image"]
    assert SERVICES["simulator"]["profiles"] == ["simulate"]
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "simulator")


def test_every_file_the_stack_mounts_exists_or_is_generated(generated):
    for name, service in SERVICES.items():
        for source, target, is_bind in volume_mounts(service):
            if not is_bind:
                assert source in compose()["volumes"], f"{name}: volume {source} is not declared"
                continue
            relative = source.removeprefix("./")
            base = generated if relative.startswith("var/") else ROOT
            path = base / relative.removeprefix("var/") if base is generated else ROOT / relative
            assert path.exists(), f"{name}: {source} (mounted at {target}) does not exist"
        for env_file in service.get("env_file", []):
            relative = env_file.removeprefix("./")
            assert relative.startswith("var/broker/"), env_file
            assert (generated / relative.removeprefix("var/")).is_file(), env_file


def test_the_broker_configuration_matches_its_mounts_and_ports(generated):
    conf = PRODUCTION_CONF.read_text(encoding="utf-8")
    listeners = {int(line.split()[1]) for line in conf.splitlines() if line.startswith("listener ")}
    published = {int(p.split(":")[1]) for p in SERVICES["mosquitto"]["ports"]}
    assert listeners == published == {1883, 8883}
    # Every container path in mosquitto.conf is mounted; persistence lives on a volume.
    paths = re.findall(
        r"(/mosquitto/\S+)", "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    )
    mounts = volume_mounts(SERVICES["mosquitto"])
    for path in paths:
        assert any(path.startswith(target) for _, target, _ in mounts), f"{path} is not mounted"
    persistence = re.search(r"^persistence_location (\S+)", conf, re.M)[1]
    assert any(not bind and persistence.startswith(target) for _, target, bind in mounts)
    assert any(target == "/mosquitto/config/conf.d" for _, target, _ in mounts)
    # The engine account that broker-config writes points at this service and its plain port.
    env = (generated / "broker" / "engine.env").read_text()
    assert re.search(r"^HALLWATCH_BROKER=mqtt://hallwatch-engine:[^@]+@mosquitto:1883$", env, re.M)
    # (tests/test_broker_security.py runs this very configuration, its container paths
    # replaced by these mounts' sources, in a real Mosquitto.)


def test_engine_ports_paths_and_command_match_prometheus_and_the_cli():
    engine = SERVICES["engine"]
    command = engine["command"]
    assert command[0] == "engine"
    http = command[command.index("--http") + 1]
    host, port = http.rsplit(":", 1)
    assert host == "0.0.0.0" and [f"{port}:{port}"] == engine["ports"]
    # Prometheus scrapes the engine service at that port.
    prometheus_yml = container_path("prometheus", "/etc/prometheus/prometheus.yml")
    prometheus = yaml.safe_load(prometheus_yml.read_text(encoding="utf-8"))
    targets = [t for job in prometheus["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert f"engine:{port}" in targets
    for pattern in prometheus.get("rule_files", []):
        assert list(prometheus_yml.parent.glob(pattern)), f"rule_files {pattern} matches nothing"
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(engine["healthcheck"]["test"])
    # The database is on the engine's volume.
    db = engine["environment"]["HALLWATCH_DB"]
    assert any(not bind and db.startswith(target + "/") for _, target, bind in volume_mounts(engine))
    config = interpolate(engine["environment"]["HALLWATCH_CONFIG"])
    assert container_path("engine", config).is_file()
    # Every option the stack passes exists in the CLI it runs.
    assert_cli_accepts(command)


def test_grafana_is_provisioned_with_the_dashboards_and_prometheus():
    provisioning = container_path("grafana", "/etc/grafana/provisioning")
    assert (provisioning / "datasources").is_dir() and (provisioning / "dashboards").is_dir()
    urls = [
        ds["url"]
        for f in (provisioning / "datasources").glob("*.y*ml")
        for ds in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]
    ]
    assert "http://prometheus:9090" in urls
    assert [p.split(":")[1] for p in SERVICES["prometheus"]["ports"]] == ["9090"]
    dashboard_paths = [
        p["options"]["path"]
        for f in (provisioning / "dashboards").glob("*.y*ml")
        for p in yaml.safe_load(f.read_text(encoding="utf-8"))["providers"]
    ]
    assert dashboard_paths
    for path in dashboard_paths:
        folder = container_path("grafana", path)
        boards = list(folder.glob("*.json"))
        assert boards, f"no dashboard in {folder}"
        for board in boards:
            json.loads(board.read_text(encoding="utf-8"))


def test_the_simulate_profile_runs_the_simulator_on_the_stack_config():
    simulator = SERVICES["simulator"]
    command = [interpolate(word) for word in simulator["command"]]
    assert command[0] == "simulate"
    assert container_path("simulator", command[command.index("--config") + 1]).is_file()
    assert float(command[command.index("--speed") + 1]) > 0
    assert_cli_accepts(command)


def assert_cli_accepts(command: list[str]) -> None:
    parser, _ = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert command[0] in commands, f"docker-compose.yml runs `hallwatch {command[0]}`, which the CLI lacks"
    sub = commands[command[0]]
    known = {flag for action in sub._actions for flag in action.option_strings}  # noqa: SLF001
    for word in command[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"hallwatch {command[0]} has no option {word}"


# -- the Dockerfile ---------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_dockerfile_copies_what_exists_and_installs_the_package_from_it(tmp_path):
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    copied = []
    for instruction, args in steps:
        if instruction == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                copied.append(source.rstrip("/"))
        if instruction == "RUN" and "pip install" in args:
            install_at = len(copied)
    installed_from = copied[:install_at]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pyproject.toml" in installed_from and pyproject["project"]["readme"] in installed_from
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:
        assert package.rstrip("*") in installed_from, f"pip install . needs {package}, not copied before it"
    # What `docker run hallwatch` does: the entry point and the default command, from a copy
    # of exactly what the image holds (so nothing outside the COPY lines can be relied on).
    context = tmp_path / "app"
    context.mkdir()
    for source in copied:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, context / source)
    entrypoint = json.loads(dict(steps)["ENTRYPOINT"])
    cmd = json.loads(dict(steps)["CMD"])
    assert entrypoint == ["hallwatch"] and pyproject["project"]["scripts"]["hallwatch"] == "queue_engine.cli:main"
    env = {**os.environ, "PYTHONPATH": str(context)}
    probe = [
        sys.executable,
        "-c",
        "import sys, queue_engine.cli as c; "
        "assert c.__file__.startswith(sys.argv[1]), c.__file__; sys.argv = ['hallwatch'] + sys.argv[2:]; "
        "sys.exit(c.main())",
        str(context),
    ]
    for args in (cmd + ["--help"], ["broker-config", "--help"]):
        result = subprocess.run(probe + args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "usage: hallwatch" in result.stdout
    # The bridge template that broker-config looks for in the image's working directory.
    assert "broker_config" in copied and (context / "broker_config" / "bridge-to-county.conf").is_file()
    assert dict(steps)["WORKDIR"] == "/app"
    # The image's default site configuration is one it holds.
    env_line = dict(steps)["ENV"]
    default_config = re.search(r"HALLWATCH_CONFIG=(\S+)", env_line)[1]
    assert (context / default_config.removeprefix("/app/")).is_file()
