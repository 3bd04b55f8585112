"""好差评 rating pad: five buttons, sent as ``rating`` for the pad's window.

The engine rates the window's last finished visit unless a ticket is named.
"""

from __future__ import annotations

from typing import TextIO

from queue_engine.core.vocabulary import RATING

from .console import Lines, say
from .device import Device, NoReply

BUTTONS = dict(RATING)  # the vocabulary's words, 5 (best) first
WORDS = {name: score for score, name in BUTTONS.items()}


class ScoreError(ValueError):
    pass


def parse_score(text: str) -> int:
    text = text.strip()
    if text in WORDS:
        return WORDS[text]
    if text.isdigit() and int(text) in BUTTONS:
        return int(text)
    raise ScoreError("请按 1 到 5 评价：" + "，".join(f"{s} {n}" for s, n in BUTTONS.items()))


def prompt(window_name: str) -> str:
    buttons = "  ".join(f"[{s}] {n}" for s, n in BUTTONS.items())
    return f"请对{window_name}的服务进行评价：\n{buttons}"


async def rate(device: Device, window: str, score: int, ticket: str | None, out: TextIO, err: TextIO) -> bool:
    try:
        reply = await device.request("rating", window=window, score=score, ticket=ticket)
    except NoReply:
        say(err, "评价未送达：系统无应答，请稍后再试")
        return False
    if not reply.get("ok"):
        say(err, f"评价未成功：{reply.get('message') or reply.get('error')}")
        return False
    rated = reply.get("ticket")
    say(out, f"感谢您的评价！（{BUTTONS[score]}{'，' + rated if isinstance(rated, str) else ''}）")
    return True


async def run(
    device: Device, window: str, window_name: str, *, score: int | None, ticket: str | None, out: TextIO, err: TextIO
) -> int:
    if score is not None:
        return 0 if await rate(device, window, score, ticket, out, err) else 1
    lines = Lines()
    say(out, prompt(window_name))
    while True:
        text = await lines.next()
        if text is None or text.lower() in ("q", "quit"):
            return 0
        if not text:
            continue
        try:
            chosen = parse_score(text)
        except ScoreError as exc:
            say(out, str(exc))
            continue
        await rate(device, window, chosen, None, out, out)
        say(out, prompt(window_name))
