"""The questions of an instructor notebook, read from its otter assign cells.

Each ``# BEGIN QUESTION`` raw cell opens a question (its YAML config: ``name``, ``manual``,
``points``); an autograded question's points are the ``points`` of its test cells (their
``# BEGIN TEST CONFIG`` docstrings), a written (manual) question's are its own. The written
questions' model answers and rubrics are the markdown solution cells inside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

__all__ = ["Question", "questions", "exercise_points", "rubric_sheet"]

_TEST_CONFIG = re.compile(r'"""\s*#\s*BEGIN TEST CONFIG\n(.*?)"""\s*#\s*END TEST CONFIG', re.S)
_POINTS = re.compile(r"\((\d+(?:\.\d+)?) points?\)")


@dataclass
class Question:
    """One otter question: its name, whether it is written (manual), its points, its hidden
    and public test sources, and for a written one its prompt and solution (answer + rubric)."""

    name: str
    manual: bool
    points: float
    prompt: str = ""
    solution: str = ""
    public: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)


def questions(nb) -> list[Question]:
    """The questions of notebook ``nb`` in order."""
    found: list[Question] = []
    current, part = None, None
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw":
            head = text.split("\n", 1)[0].strip().upper()
            if head == "# BEGIN QUESTION":
                config = yaml.safe_load(text.split("\n", 1)[1]) or {}
                current = Question(config["name"], bool(config.get("manual", False)),
                                   float(config.get("points", 0) or 0))
                found.append(current)
                part = "prompt"
            elif head in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                part = head.split()[-1].lower()
            elif head in ("# END SOLUTION", "# END TESTS"):
                part = None
            elif head == "# END QUESTION":
                current, part = None, None
            continue
        if current is None:
            continue
        if part == "prompt" and cell.cell_type == "markdown" and not current.prompt:
            current.prompt = cell.source
        elif part == "solution" and cell.cell_type == "markdown":
            current.solution = cell.source
        elif part == "tests" and cell.cell_type == "code":
            match = _TEST_CONFIG.search(cell.source)
            config = yaml.safe_load(match.group(1)) if match else {}
            (current.hidden if config.get("hidden") else current.public).append(cell.source)
            if not current.manual:
                current.points += float(config.get("points", 0) or 0)
    return found


def exercise_points(nb) -> list[tuple[str, float, float]]:
    """Per exercise heading (``### Exercise ...``): (heading, points it states, points its
    questions carry). The questions of an exercise are those between its heading and the next."""
    rows, heading, stated, carried = [], None, 0.0, 0.0
    names = {q.name: q for q in questions(nb)}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.search(r"^### Exercise", cell.source, re.M):
            if heading is not None:
                rows.append((heading, stated, carried))
            heading = re.search(r"^### (Exercise.*)$", cell.source, re.M).group(1)
            match = _POINTS.search(heading)
            stated, carried = (float(match.group(1)) if match else 0.0), 0.0
        elif cell.cell_type == "raw" and cell.source.strip().upper().startswith("# BEGIN QUESTION"):
            name = (yaml.safe_load(cell.source.split("\n", 1)[1]) or {})["name"]
            carried += names[name].points
        elif (cell.cell_type == "markdown" and re.search(r"^## ", cell.source, re.M)
              and heading is not None and "exercises" not in cell.metadata.get("tags", [])):
            rows.append((heading, stated, carried))
            heading = None
    if heading is not None:
        rows.append((heading, stated, carried))
    return rows


def rubric_sheet(nb, title: str) -> str:
    """A markdown grading sheet of the written questions: prompt, model answer and rubric."""
    lines = [f"# {title}: written answers", ""]
    for q in questions(nb):
        if q.manual:
            answer = re.sub(r"</?details>|<summary>.*?</summary>", "", q.solution).strip()
            lines += [f"## {q.name} ({q.points:g} points)", "", q.prompt.strip(), "", answer, ""]
    return "\n".join(lines)
