"""The Chinese user manual (docs/zh/) names only what exists: every command and option, every
key of the window panel, every console element, every configuration key of its glossary, and
every screenshot it shows is one the test suite takes."""

from __future__ import annotations

import argparse
import re
import tomllib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from screenshots import MANUAL_OUT, MANUAL_SHOTS, OUT, PAGES

from queue_engine.cli import build_parser
from queue_engine.config import Calendar, Site, Supervision, load_site, parse_site
from queue_engine.core.alerts import ALERT_KINDS
from queue_engine.core.vocabulary import TABLES
from window_agents.panel import CommandError, parse_command

ROOT = Path(__file__).resolve().parent.parent
MANUAL = ROOT / "docs" / "zh"
CHAPTERS = {p.name: p.read_text(encoding="utf-8") for p in sorted(MANUAL.glob("*.md"))}
ALL = "\n".join(CHAPTERS.values())
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def code_texts(text: str) -> list[str]:
    """Every inline code span and every line of every fenced block."""
    blocks = FENCE.findall(text)
    outside = FENCE.sub("", text)
    return CODE_SPAN.findall(outside) + [line for block in blocks for line in block.splitlines()]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [parser] + [p for sub in subparsers(parser).values() for p in every_parser(sub)]


# `hallwatch WORD …` (also `.venv/bin/hallwatch`), up to the end of the command.
COMMAND = re.compile(r"(?:^|[\s/])hallwatch ([a-z][a-z-]*(?: [^|;&`]*)?)")


def test_every_command_and_option_the_manual_names_exists():
    root, _ = build_parser()
    named, wrong = [], []
    for text in code_texts(ALL):
        for match in COMMAND.finditer(text):
            words = match.group(1).split()
            parser, path = root, ["hallwatch"]
            while words and words[0] in subparsers(parser):
                path.append(words[0])
                parser = subparsers(parser)[words.pop(0)]
            if len(path) == 1 or (subparsers(parser) and words[:1] != ["--help"]):
                wrong.append(f"{match.group(0).strip()}: no such command")
                continue
            named.append(" ".join(path))
            wrong += [
                f"{' '.join(path)} {w}" for w in words if w.startswith("--") and w.split("=")[0] not in options(parser)
            ]
    everywhere = set().union(*(options(p) for p in every_parser(root)))
    for text in code_texts(ALL):
        if re.fullmatch(r"--[a-z-]+", text) and text not in everywhere:
            wrong.append(f"{text}: no command has it")
    assert wrong == []
    # the commands each user needs are there
    assert {
        "hallwatch engine",
        "hallwatch check-config",
        "hallwatch broker-config",
        "hallwatch report",
        "hallwatch county",
        "hallwatch posters",
        "hallwatch agent panel",
    } <= set(named)


DEMO = load_site(ROOT / "examples" / "demo-site.toml")
PANEL_KEY = re.compile(r"[a-z](?: .*)?")
CITIZEN_SECRET = b"a panel's citizen key, as hallwatch citizen-key gives it"


def test_every_panel_key_the_manual_names_is_one_the_panel_understands():
    chapter = CHAPTERS["window-staff.md"]
    keys = [text for text in code_texts(chapter) if PANEL_KEY.fullmatch(text)]
    refused = []
    for text in keys:
        try:
            parse_command(DEMO, text, CITIZEN_SECRET)
        except CommandError as err:
            # a key named on its own (`l`, then "加您的工号") needs its argument: that is all it may miss
            if " " in text or "不认识的按键" in str(err):
                refused.append(f"{text}: {err}")
    assert refused == []
    # every key of the panel is explained, the case key and the finish options included
    assert {text.split()[0] for text in keys} >= set("lonc rsbfktpuvhq".replace(" ", ""))
    assert any(text.startswith("k ") for text in keys) and any("缺=" in text for text in keys)


def console_texts() -> str:
    sources = [
        *(ROOT / "queue_engine" / "web" / "templates").glob("*.html"),
        *(ROOT / "queue_engine" / "web" / "static").glob("*.js"),
        *(ROOT / "queue_engine" / "county" / "templates").glob("*.html"),
        *(ROOT / "queue_engine" / "county" / "static").glob("*.js"),
    ]
    labels = [str(label) for table in TABLES.values() for label in table.values()]
    return "\n".join([*(p.read_text(encoding="utf-8") for p in sources), *labels])


def test_every_console_element_the_manual_names_is_on_the_pages():
    pages = console_texts()
    named = set(re.findall(r"「([^」]+)」", ALL))
    assert len(named) > 30
    assert sorted(name for name in named if name not in pages) == []


def test_the_alerts_chapter_lists_every_alert_kind_by_its_label():
    table = CHAPTERS["supervision.md"]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    assert sorted(rule.label for rule in ALERT_KINDS.values() if rule.label not in rows) == []


def field_model(annotation: typing.Any) -> type[BaseModel] | None:
    """The model a field holds (itself, or in a list or an optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        model = field_model(arg)
        if model is not None:
            return model
    return None


def resolve(key: str) -> bool:
    model: type[BaseModel] | None = Site
    for part in key.split("."):
        if model is None:
            return False
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        if part not in fields:
            return False
        model = field_model(fields[part].annotation)
    return True


GLOSSARY = CHAPTERS["glossary.md"]
GLOSSARY_KEYS = [
    key
    for line in GLOSSARY.splitlines()
    if line.startswith("| ") and line.count("|") >= 4
    for key in CODE_SPAN.findall(line.split("|")[2])
    if re.fullmatch(r"[a-z_0-9]+(\.[a-z_0-9]+)*", key)
]


def test_every_configuration_key_of_the_glossary_exists():
    assert len(GLOSSARY_KEYS) > 60
    assert [key for key in GLOSSARY_KEYS if not resolve(key)] == []


@pytest.mark.parametrize("section, model", [("supervision", Supervision), ("calendar", Calendar)])
def test_the_glossary_names_every_supervision_and_calendar_setting(section, model):
    names = [(f.alias or name) for name, f in model.model_fields.items()]
    assert [n for n in names if f"{section}.{n}" not in GLOSSARY_KEYS] == []


def test_every_toml_example_of_the_manual_is_a_valid_configuration():
    blocks = re.findall(r"```toml\n(.*?)```", ALL, re.S)
    assert blocks
    for block in blocks:
        data = tomllib.loads((ROOT / "examples" / "demo-site.toml").read_text(encoding="utf-8"))
        data.update(tomllib.loads(block))
        parse_site(data)


def test_every_screenshot_the_manual_shows_is_one_the_suite_takes():
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", ALL)
    assert shown
    taken = {OUT / name for name in PAGES} | {MANUAL_OUT / name for name in MANUAL_SHOTS}
    for link in shown:
        path = (MANUAL / link).resolve()
        assert path in taken, f"{link}: not taken by tests/screenshots.py"
        assert path.exists(), f"{link}: run tests/screenshots.py"


def test_the_readme_opens_in_chinese_and_points_to_the_manual():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = readme.split("Queueing and window supervision", 1)[0]  # (the English section)
    assert "make demo" in chinese and "make test" in chinese and "docs/zh/README.md" in chinese
    assert re.search(r"[\u4e00-\u9fff]{20}", chinese)
    assert (ROOT / "docs" / "zh" / "README.md").exists()
    for chapter in re.findall(r"\]\(([a-z-]+\.md)", CHAPTERS["README.md"]):
        assert chapter in CHAPTERS


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_between_the_chapters_arrives():
    broken = []
    for name, text in CHAPTERS.items():
        for target in re.findall(r"(?<!!)\[[^\]]*\]\(([^)]+)\)", text):
            if target.startswith("http"):
                continue
            file, _, fragment = target.partition("#")
            path = (MANUAL / (file or name)).resolve()
            if not path.exists():
                broken.append(f"{name}: {target}")
            elif fragment and path.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
                if fragment not in {anchor(h) for h in headings}:
                    broken.append(f"{name}: {target}")
    assert broken == []
