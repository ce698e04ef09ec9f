"""Course tooling under its former name: it lives in the checkout's ``course`` package.

The student edition, the autograder zips and the runtime line of each notebook are built by
``course`` (``python -m course``, ``docs/course.md``), which sits beside ``labkit/`` in a source
checkout and is not installed with the wheel; the library never imports it, nor otter-grader.
In a checkout, ``python -m labkit.exercises [NOTEBOOKS] [OUT]`` and the names below keep
working; in an installed labkit, importing this module raises ImportError.
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "course" / "__init__.py").is_file() and str(_CHECKOUT) not in sys.path:
    sys.path.append(str(_CHECKOUT))
try:
    from course.editions import assignment_notebooks, build_student_edition, is_assignment
    from course.runtime import RUNTIME_MARK, format_runtime, runtime_line, stamp_runtime
except ImportError as error:  # an installed labkit: no checkout beside it
    raise ImportError("labkit.exercises is course tooling from a labkit source checkout (its "
                      "course/ package); it is not part of the installed library") from error

__all__ = ["RUNTIME_MARK", "format_runtime", "runtime_line", "stamp_runtime", "is_assignment",
           "assignment_notebooks", "build_student_edition"]

if __name__ == "__main__":
    from course.__main__ import main

    main(["exercises", *sys.argv[1:3]])
