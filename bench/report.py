"""Budgets beside figures: read bench/budgets.toml, judge each figure, write docs/benchmarks.md.

Pure functions (a dict of figures in, verdicts and Markdown out), so the test
suite checks them with real input (tests/unit/test_bench_budgets.py) while
speed itself is never asserted in tests.
"""

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

BUDGETS = Path(__file__).with_name("budgets.toml")
BOUNDS = {"min": "≥", "max": "≤", "below": "<"}
MISS = "**MISS**"
MET = "met"


@dataclass(frozen=True)
class Budget:
    id: str
    row: str
    figure: str
    unit: str
    bound: str  # min | max | below
    limit: float

    def text(self) -> str:
        return f"{BOUNDS[self.bound]} {_number(self.limit)} {self.unit}"

    def met_by(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.bound == "min":
            return value >= self.limit
        if self.bound == "max":
            return value <= self.limit
        return value < self.limit


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    value: float | None  # None: not measured in this run

    @property
    def met(self) -> bool:
        return self.value is not None and self.budget.met_by(self.value)

    def figure_text(self) -> str:
        if self.value is None:
            return "not measured"
        return f"{_number(self.value)} {self.budget.unit}"


def load_budgets(path: Path = BUDGETS) -> list[Budget]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    budgets = []
    for entry in data["budget"]:
        bounds = [k for k in BOUNDS if k in entry]
        if len(bounds) != 1:
            raise ValueError(f"budget {entry.get('id')}: exactly one of min, max, below")
        limit = entry[bounds[0]]
        if not isinstance(limit, int | float) or isinstance(limit, bool):
            raise ValueError(f"budget {entry['id']}: the bound must be a number")
        budgets.append(Budget(entry["id"], entry["row"], entry["figure"], entry["unit"], bounds[0], float(limit)))
    ids = [b.id for b in budgets]
    if len(set(ids)) != len(ids):
        raise ValueError("budget ids must be unique")
    return budgets


def judge(budgets: list[Budget], figures: dict[str, float]) -> list[Verdict]:
    """One verdict per budget; a figure missing from `figures` is a miss (not measured)."""
    return [Verdict(b, figures.get(b.figure)) for b in budgets]


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def budget_table(verdicts: list[Verdict]) -> str:
    lines = ["| what | figure | budget | verdict |", "| --- | ---: | ---: | --- |"]
    for v in verdicts:
        lines.append(f"| {v.budget.row} | {v.figure_text()} | {v.budget.text()} | {MET if v.met else MISS} |")
    return "\n".join(lines)


def render(verdicts: list[Verdict], *, title: str, intro: str, sections: list[tuple[str, str]]) -> str:
    """The whole report: intro, the budget table, the list of misses, then each section (heading, Markdown)."""
    misses = [v for v in verdicts if not v.met]
    parts = [f"# {title}", intro.strip(), "## Budgets", budget_table(verdicts)]
    if misses:
        parts.append(f"{len(misses)} of {len(verdicts)} budgets missed:\n\n" + "\n".join(
            f"- {MISS} {v.budget.row}: {v.figure_text()} (budget {v.budget.text()})" for v in misses))
    else:
        parts.append(f"Every one of the {len(verdicts)} budgets was met in this run.")
    for heading, body in sections:
        parts.append(f"## {heading}")
        parts.append(body.strip())
    return "\n\n".join(parts) + "\n"
