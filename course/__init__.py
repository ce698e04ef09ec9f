"""Course tooling for the labkit notebooks: not part of the ``labkit`` library.

It lives in the source checkout beside ``labkit/`` and is not installed with the wheel; the
library never imports it (nor otter-grader, which it needs). ``python -m course`` runs it:

- ``editions``: the student edition and the autograder zips (``make exercises``);
- ``grading``: a folder of submissions graded into one score table and one answer sheet;
- ``questions``: the exercises' questions, points and rubrics, read from a notebook;
- ``references``: MyST citations rewritten as plain text for Jupyter;
- ``reading``: student time per notebook, estimated from reading;
- ``runtime``: the measured-runtime line of each notebook's first cell.

Introduced in ``docs/course.md``.
"""
