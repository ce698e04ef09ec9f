"""``python -m course``: build the student edition, grade a folder, estimate student time.

    python -m course exercises [NOTEBOOKS_DIR] [OUT] [--book-url URL]   # make exercises
    python -m course grade AUTOGRADER.zip SUBMISSIONS/ [--out DIR] [--instructor NB]
    python -m course gradebook GRADES_DIR...               # merge coded and written scores
    python -m course export [NAME=]GRADEBOOK.csv... --out LMS.csv [--roster CSV] [--key COL]
    python -m course times [NOTEBOOKS_DIR] [--write PAGE]   # student time, from reading
    python -m course check-book SITE [NOTEBOOKS_DIR]        # fails on any solution line
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="student edition, hand-outs and autograder zips")
    ex.add_argument("notebooks", nargs="?", default="notebooks")
    ex.add_argument("out", nargs="?", default="build")
    ex.add_argument("--book-url", default=None,
                    help="the book's address: hand-out links to other pages point there")
    gr = sub.add_parser("grade", help="grade a folder of submissions without Docker")
    gr.add_argument("autograder")
    gr.add_argument("submissions")
    gr.add_argument("--out", default="grades")
    gr.add_argument("--instructor", default=None, help="the instructor notebook (for rubrics)")
    gr.add_argument("--timeout", type=float, default=1800)
    gb = sub.add_parser("gradebook", help="merge scores.csv and the filled-in written.csv")
    gb.add_argument("folders", nargs="+", help="folders written by grade (grades/<NB>)")
    lx = sub.add_parser("export", help="the gradebooks' totals as a CSV an LMS imports")
    lx.add_argument("gradebooks", nargs="+", metavar="[NAME=]GRADEBOOK",
                    help="gradebook.csv files; NAME (default: its folder's name) is the "
                         "assignment's column")
    lx.add_argument("--out", required=True)
    lx.add_argument("--roster", default=None, help="the LMS's grade export, to fill in")
    lx.add_argument("--key", default=None, help="the roster column holding student ids")
    lx.add_argument("--lms", choices=("canvas", "moodle"), default="canvas",
                    help="the columns to write when there is no roster")
    lx.add_argument("--allow-incomplete", action="store_true",
                    help="export even where written answers are not all scored")
    tm = sub.add_parser("times", help="student time per notebook, from reading")
    tm.add_argument("notebooks", nargs="?", default="notebooks")
    tm.add_argument("--write", metavar="PAGE", help="rewrite the marked block of PAGE instead")
    cb = sub.add_parser("check-book", help="fail if a built site shows any solution line")
    cb.add_argument("site")
    cb.add_argument("notebooks", nargs="?", default="notebooks")
    args = parser.parse_args(argv)

    if args.command == "exercises":
        from .editions import assignment_notebooks, build_student_edition

        for stem, paths in build_student_edition(assignment_notebooks(args.notebooks),
                                                 args.out, book_url=args.book_url).items():
            print(f"{stem}: student {paths['student']}, hand-out {paths['handout']}, "
                  f"autograder {paths['zip']}, rubric {paths['rubric']}")
    elif args.command == "grade":
        from .grading import grade_folder

        scores = grade_folder(args.autograder, args.submissions, args.out,
                              instructor=args.instructor, timeout=args.timeout)
        print(f"scores: {scores}; written answers: {scores.with_name('written.md')}; "
              f"score them in {scores.with_name('written.csv')}, then run "
              f"python -m course gradebook {scores.parent}")
    elif args.command == "gradebook":
        from .grading import gradebook

        for folder in args.folders:
            print(f"gradebook: {gradebook(folder)}")
    elif args.command == "export":
        from .grading import export_roster

        books = {}
        for item in args.gradebooks:
            name, sep, path = item.rpartition("=")
            books[name if sep else Path(path).resolve().parent.name] = path
        out = export_roster(books, args.out, roster=args.roster, key=args.key, lms=args.lms,
                            allow_incomplete=args.allow_incomplete)
        print(f"{out}: {', '.join(books)}, ready to import")
    elif args.command == "check-book":
        from .book import solution_leaks

        leaks = solution_leaks(args.site, args.notebooks)
        if leaks:
            raise SystemExit(f"{len(leaks)} solution lines in {args.site}:\n"
                             + "\n".join(leaks[:20]))
        print(f"{args.site}: no solution line of {args.notebooks}/ appears")
    else:
        from .reading import times_block, write_times

        notebooks = sorted(Path(args.notebooks).glob("[0-9][0-9]_*.ipynb"))
        if args.write:
            changed = write_times(args.write, notebooks)
            print(f"{args.write}: {'rewritten' if changed else 'up to date'}")
        else:
            print(times_block(notebooks), end="")


if __name__ == "__main__":
    main()
