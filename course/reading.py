"""Student time per notebook, estimated from reading, not from the kernel.

A student reads the notebook's prose at 200 words a minute, reads and runs each code cell
(1 minute for a lesson cell), and works each exercise: the time of its written and coded
answers is set per exercise kind below. Outputs and hidden cells (checks, otter's raw cells)
are not read. ``student_minutes`` returns the estimate's parts, so a course plan can show them.
"""

from __future__ import annotations

import re

__all__ = ["WORDS_PER_MINUTE", "MINUTES_PER_CODE_CELL", "MINUTES_PER_EXERCISE", "SHORT_PATH_02",
           "student_minutes", "section_minutes", "times_block", "write_times"]

WORDS_PER_MINUTE = 200
MINUTES_PER_CODE_CELL = 1.0
# Pen-and-paper derivations take longest; computing a closed form (a sum, a probability) or
# measuring with a given experiment is like changing one; a predict-then-check exercise is a
# prediction, one number and a sentence.
MINUTES_PER_EXERCISE = {"derive": 15.0, "change": 10.0, "compute": 10.0, "measure": 10.0,
                        "predict": 8.0}
_KIND = re.compile(r"^### Exercise \d+ \((\w+)", re.M)
_HIDDEN = {"remove-cell", "exercise-check"}
_WORD = re.compile(r"[A-Za-z0-9\u00C0-\u024F]+")


def student_minutes(nb) -> dict[str, float]:
    """``{"reading", "code", "exercises", "total"}`` in minutes for notebook ``nb``.

    reading: words of the markdown cells (math and markup count as the words they contain)
    / 200; code: lesson code cells outside the exercises section x 1 minute; exercises: the
    exercise headings' kinds x ``MINUTES_PER_EXERCISE``.
    """
    words, code_cells, exercises, in_exercises = 0, 0, 0.0, False
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if "exercises" in tags:
            in_exercises = True
        if cell.cell_type == "raw" or tags & _HIDDEN:
            continue
        if cell.cell_type == "markdown":
            if "solution" in tags:
                continue
            words += len(_WORD.findall(cell.source))
            for kind in _KIND.findall(cell.source):
                if kind not in MINUTES_PER_EXERCISE:
                    raise ValueError(f"nb: exercise kind {kind!r} has no time; the kinds: "
                                     f"{', '.join(MINUTES_PER_EXERCISE)}")
                exercises += MINUTES_PER_EXERCISE[kind]
        elif cell.cell_type == "code" and not in_exercises:
            code_cells += 1
    reading = words / WORDS_PER_MINUTE
    code = code_cells * MINUTES_PER_CODE_CELL
    return {"reading": reading, "code": code, "exercises": exercises,
            "total": reading + code + exercises}


def section_minutes(nb) -> list[tuple[str, float]]:
    """(``## `` heading, minutes) for each section of notebook ``nb`` before its exercises, the
    first cell's introduction under the notebook's title: prose at 200 words a minute plus one
    minute per code cell, as ``student_minutes`` counts them."""
    rows: list[tuple[str, float]] = []
    title, minutes = None, 0.0
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if "exercises" in tags:
            break
        if cell.cell_type == "raw" or tags & _HIDDEN:
            continue
        heading = (re.search(r"^#{1,2} (.+)$", cell.source, re.M)
                   if cell.cell_type == "markdown" else None)
        if heading and (title is None or cell.source.lstrip().startswith("## ")):
            if title is not None:
                rows.append((title, minutes))
            title, minutes = heading.group(1).strip(), 0.0
        if cell.cell_type == "markdown":
            minutes += len(_WORD.findall(cell.source)) / WORDS_PER_MINUTE
        elif cell.cell_type == "code":
            minutes += MINUTES_PER_CODE_CELL
    if title is not None:
        rows.append((title, minutes))
    return rows


# The sections of notebook 02 that a 90-minute class reads together (docs/course.md), by a
# word of their titles; the rest is homework.
SHORT_PATH_02 = ("By construction", "By measurement", "Fig. 3", "Lipschitz", "Conclusions",
                 "What you learned")
TIMES_MARK = re.compile(r"(<!-- student-time -->\n)(.*?)(<!-- /student-time -->)", re.S)


def times_block(notebooks) -> str:
    """The markdown that ``docs/course.md`` shows between ``<!-- student-time -->`` marks:
    student time per notebook, then notebook 02's sections with the 90-minute path marked."""
    import nbformat

    lines = ["| notebook | reading | code cells | exercises | total |", "|---|---|---|---|---|"]
    short = None
    for path in sorted(notebooks):
        nb = nbformat.read(path, as_version=4)
        t = student_minutes(nb)
        lines.append(f"| {path.stem[:2]} | {t['reading']:.0f} min | {t['code']:.0f} min | "
                     f"{t['exercises']:.0f} min | about {5 * round(t['total'] / 5):.0f} min |")
        if path.stem.startswith("02"):
            short = section_minutes(nb)
    if short:
        lines += ["", "| notebook 02, section | reading and running | in the 90-minute path |",
                  "|---|---|---|"]
        total = 0.0
        for i, (title, minutes) in enumerate(short):
            chosen = i == 0 or any(word in title for word in SHORT_PATH_02)
            total += minutes if chosen else 0.0
            lines.append(f"| {title.replace('|', '/')} | {minutes:.0f} min | "
                         f"{'yes' if chosen else 'homework'} |")
        lines.append(f"| **the path** | **{total:.0f} min** | |")
    return "\n".join(lines) + "\n"


def write_times(page, notebooks) -> bool:
    """Rewrite the block between the marks of ``page`` (docs/course.md); returns whether it
    changed. A page without the marks raises ValueError."""
    from pathlib import Path

    page = Path(page)
    text = page.read_text(encoding="utf-8")
    if not TIMES_MARK.search(text):
        raise ValueError(f"{page}: no '<!-- student-time -->...<!-- /student-time -->' marks")
    new = TIMES_MARK.sub(lambda m: m.group(1) + times_block(notebooks) + m.group(3), text, count=1)
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text
