"""The size limits of the package (docs/architecture.md): no function of ``labkit/`` longer
than 80 lines (the run layer's result-set modules: 60), and no file holding more than 6% of
the package's lines. The guard tests build a small package that breaks each limit and watch
the check name it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION = 80
MAX_SHARE = 0.06
# The modules of committed result sets (reading, provenance, verification, the run): 60 lines.
RUN_LAYER = {"results.py", "result_file.py", "result_rows.py", "provenance.py",
             "verification.py"}
MAX_RUN_LAYER_FUNCTION = 60


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of every function and method in ``path``, from its ``def``
    (or first decorator) to its last line, docstring included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    out.append((name, child.end_lineno - first + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def size_problems(package: Path) -> list[str]:
    """Every function over its limit and every file over its share of ``package``'s lines."""
    files = sorted(package.rglob("*.py"))
    lines = {f: len(f.read_text(encoding="utf-8").splitlines()) for f in files}
    total = sum(lines.values())
    out = []
    for f in files:
        where = f.relative_to(package.parent)
        if lines[f] > MAX_SHARE * total:
            out.append(f"{where}: {lines[f]} lines, {lines[f] / total:.1%} of the package's "
                       f"{total} (at most {MAX_SHARE:.0%})")
        limit = MAX_RUN_LAYER_FUNCTION if f.parent == package and f.name in RUN_LAYER \
            else MAX_FUNCTION
        out += [f"{where}: {name} is {n} lines (at most {limit})"
                for name, n in function_lengths(f) if n > limit]
    return out


def test_no_function_or_file_of_labkit_is_too_long():
    problems = size_problems(ROOT / "labkit")
    assert not problems, "\n".join(problems)


def _module(lines_of_functions: list[int]) -> str:
    """Python source with one function per entry, each that many lines long."""
    parts = []
    for i, n in enumerate(lines_of_functions):
        body = "".join(f"    x{j} = {j}\n" for j in range(n - 2))
        parts.append(f"def f{i}():\n{body}    return 0\n")
    return "\n".join(parts)


def test_a_long_function_is_named(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for i in range(30):  # many small files, so no file's share is the problem
        (package / f"m{i}.py").write_text(_module([40, 40]))
    assert size_problems(package) == []
    (package / "m0.py").write_text(_module([40, MAX_FUNCTION + 1]))
    problems = size_problems(package)
    assert problems == [f"pkg/m0.py: f1 is {MAX_FUNCTION + 1} lines (at most {MAX_FUNCTION})"]


def test_a_long_method_and_a_long_run_layer_function_are_named(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for i in range(30):
        (package / f"m{i}.py").write_text(_module([40, 40]))
    method = "class A:\n" + "".join("    " + line + "\n" for line in
                                    _module([MAX_FUNCTION + 2]).splitlines())
    (package / "m1.py").write_text(method)
    (package / "results.py").write_text(_module([MAX_RUN_LAYER_FUNCTION + 1]))
    problems = size_problems(package)
    assert f"pkg/m1.py: A.f0 is {MAX_FUNCTION + 2} lines (at most {MAX_FUNCTION})" in problems
    assert (f"pkg/results.py: f0 is {MAX_RUN_LAYER_FUNCTION + 1} lines (at most "
            f"{MAX_RUN_LAYER_FUNCTION})") in problems
    assert len(problems) == 2


def test_a_file_over_its_share_is_named(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for i in range(30):
        (package / f"m{i}.py").write_text(_module([40, 40]))
    assert size_problems(package) == []
    (package / "big.py").write_text(_module([60] * 4))  # 243 of the 2,673 lines: 9.1%
    problems = size_problems(package)
    assert problems == ["pkg/big.py: 243 lines, 9.1% of the package's 2673 (at most 6%)"]
