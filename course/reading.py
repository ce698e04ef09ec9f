"""Student time per notebook, estimated from reading, not from the kernel.

A student reads the notebook's prose at 200 words a minute, reads and runs each code cell
(1 minute for a lesson cell), and works each exercise: the time of its written and coded
answers is set per exercise kind below. Outputs and hidden cells (checks, otter's raw cells)
are not read. ``student_minutes`` returns the estimate's parts, so a course plan can show them.
"""

from __future__ import annotations

import re

__all__ = ["WORDS_PER_MINUTE", "MINUTES_PER_CODE_CELL", "MINUTES_PER_EXERCISE", "student_minutes"]

WORDS_PER_MINUTE = 200
MINUTES_PER_CODE_CELL = 1.0
# Pen-and-paper derivations take longest; a predict-then-check exercise is a prediction, one
# number and a sentence.
MINUTES_PER_EXERCISE = {"derive": 15.0, "change": 10.0, "predict": 8.0}
_KIND = re.compile(r"^### Exercise \d+ \((derive|change|predict)", re.M)
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
            exercises += sum(MINUTES_PER_EXERCISE[k] for k in _KIND.findall(cell.source))
        elif cell.cell_type == "code" and not in_exercises:
            code_cells += 1
    reading = words / WORDS_PER_MINUTE
    code = code_cells * MINUTES_PER_CODE_CELL
    return {"reading": reading, "code": code, "exercises": exercises,
            "total": reading + code + exercises}
