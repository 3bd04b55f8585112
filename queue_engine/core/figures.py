"""Figures with one definition, used by the consoles, the reports, the metrics and Grafana.

- 满意率 (satisfaction): the share of 好差评 ratings that are 非常满意, 满意 or 基本满意 (5, 4,
  3) among all ratings; 不满意 and 非常不满意 (2, 1) are the bad ratings.
- 空岗 (vacancy): the working time a window is not seen staffed, in three categories shown
  side by side (``model.VACANCY``): never opened although it must be staffed, open with
  nobody at the seat, open with no working camera to tell.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import VACANCY

SATISFIED_SCORES = (5, 4, 3)


def satisfaction_pct(counts: Mapping[int, int]) -> float | None:
    """满意率 in percent, from the number of ratings per score; None without ratings."""
    total = sum(counts.values())
    if not total:
        return None
    return 100.0 * sum(counts.get(score, 0) for score in SATISFIED_SCORES) / total


def vacancy_seconds(categories: Mapping[str, float]) -> dict[str, float]:
    """A subject's 空岗 seconds per category (every category present, 0 if none), from its
    seconds per accounting category."""
    return {category.value: categories.get(category.value, 0.0) for category in VACANCY}
