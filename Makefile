# labkit: `make book` (execute every notebook, write figures/, render the HTML book into site/)
# and `make test` (unit tests, every notebook under nbval at the fast size, the browser test).
# Both build everything they need on a fresh machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
JOBS   ?= 2

export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv bench assets browser book book-student test unit notebooks exercises grade gradebook format format-check results verify lab clean

venv: $(STAMP)

# torch first, with pip, from its CPU wheel (pip's configured indexes and local wheels; uv
# reads neither): installing the project into an env without torch pulls CUDA. Then the rest
# with uv where it installs (several times faster than pip, in parallel, from its own cache),
# else pip. labkit/__init__.py holds the version, which the editable install's metadata copies.
UV := $(VENV)/bin/uv
$(STAMP): pyproject.toml labkit/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q uv 2>/dev/null || echo "venv: uv not installed; pip installs the rest"
	$(PY) -m pip uninstall -q -y labkit 2>/dev/null || true  # the distribution's name before 0.2.0
	if [ -x $(UV) ]; then $(UV) pip install -q --python $(PY) -e ".[dev]"; \
	else $(PY) -m pip install -q -e ".[dev]"; fi
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# The widget renderer, require.js and MathJax, so the HTML book works offline.
assets: book/node_modules/.installed
book/node_modules/.installed: book/package.json book/package-lock.json
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || \
	  { echo "assets: npm is needed to fetch the book's front-end assets (install Node.js)"; exit 1; }
	cd book && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium, its driver and selenium for the browser tests (tests/test_book.py, and
# tests/test_jupyterlab.py: the widgets in a real JupyterLab; both skip with a message where no
# browser can be installed).
browser: venv
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "browser: could not install chromium; the browser test will be skipped"; \
	  else echo "browser: chromium/chromedriver not found and cannot be installed here; the browser test will be skipped"; fi; }
	@$(PY) -c "import selenium" 2>/dev/null || $(PY) -m pip install -q "selenium>=4.20"

# Execute every notebook at full size (in place, runtimes into their metadata), then render
# site/ with Sphinx + MyST-NB (docs/, execution off) and check its internal links.
# BOOK_ARGS=--no-execute renders the committed notebooks only; other BOOK_ARGS (--jobs N,
# --timeout S, notebook paths) go to scripts/execute_notebooks.py.
BOOK_ARGS ?=
SPHINXOPTS ?= -W --keep-going -q
book: venv assets
	$(if $(filter --no-execute,$(BOOK_ARGS)),,$(PY) scripts/execute_notebooks.py $(filter-out --no-execute,$(BOOK_ARGS)))
	$(PY) scripts/stamp_readme.py
	$(PY) -m course times --write docs/course.md  # student time, counted from the notebooks
	$(VENV)/bin/sphinx-build -b html $(SPHINXOPTS) -d .cache/book-doctrees docs site
	$(PY) scripts/check_links.py site
	@echo "book written to site/: open $(CURDIR)/site/index.html, or serve it: $(PY) -m http.server --directory site 8000"

# A worker gets whole files (a notebook's cells share a kernel), but a few slow tests alone, the
# slow ones first (tests/conftest.py), so that both workers stay busy to the end.
DIST := --dist loadfile --no-loadscope-reorder
test: venv assets browser
	LABKIT_FAST=1 LABKIT_FIGURES=$(CURDIR)/test-artifacts/figures $(PY) -m pytest -n $(JOBS) $(DIST) --durations=10 tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

unit: venv
	$(PY) -m pytest -n $(JOBS) $(DIST) tests

notebooks: venv
	LABKIT_FAST=1 LABKIT_FIGURES=$(CURDIR)/test-artifacts/figures $(PY) -m pytest -n $(JOBS) $(DIST) notebooks --nbval-lax --nbval-current-env

# Benchmarks (not part of `make test`): bench/search.py times labkit's exact search, its GEMM,
# faiss-cpu and scikit-learn, each library in a process of its own, best of 7, and writes the
# book's performance page, docs/performance.md (date, CPU, the BLAS each library loaded);
# then bench/topk.py (about two minutes) times the truncated top-k empirical score beside the
# full one at CIFAR scale and adds its section to the page.
BENCH_THREADS ?= 2
bench: venv
	if [ -x $(UV) ]; then $(UV) pip install -q --python $(PY) -e ".[bench]"; \
	else $(PY) -m pip install -q -e ".[bench]"; fi
	OMP_NUM_THREADS=$(BENCH_THREADS) MKL_NUM_THREADS=$(BENCH_THREADS) \
	  $(PY) bench/search.py --markdown docs/performance.md
	OMP_NUM_THREADS=$(BENCH_THREADS) MKL_NUM_THREADS=$(BENCH_THREADS) \
	  $(PY) bench/topk.py --markdown docs/performance.md

# Lay out every notebook's code cells at 88 columns (Black, comments rewrapped; exercise cells are
# left to their author): `make format`, or `make format NOTEBOOKS=notebooks/02_*.ipynb` for some.
# tests/test_layout.py (so `make test`) fails naming any cell that `make format` would change and
# any code line over 88 characters; `make format-check` runs the same check alone.
NOTEBOOKS ?=
format: venv
	$(PY) scripts/format_notebooks.py $(NOTEBOOKS)

format-check: venv
	$(PY) scripts/format_notebooks.py --check $(NOTEBOOKS)

# The student edition of every notebook with exercises (course/, otter assign): build/student/
# (solutions removed, public form checks, the files the notebooks read), build/handout/ (one zip
# per notebook to hand out) and build/autograder/ (the solved notebooks, each notebook's
# autograder zip declaring everything grading needs, and the written questions' rubrics).
# See docs/course.md.
exercises: venv
	$(PY) -m course exercises notebooks build

# Grade a folder of submissions without Docker: make grade NB=00_primer SUBMISSIONS=dir
# writes grades/<NB>/scores.csv (one row per submission), written.md, written.csv (its score
# column for the instructor) and gradebook.csv (one row per student id, with totals).
NB ?= 00_primer
SUBMISSIONS ?= submissions
grade: venv
	$(PY) -m course grade build/autograder/$(NB)-autograder.zip $(SUBMISSIONS) \
	  --out grades/$(NB) --instructor notebooks/$(NB).ipynb

# After written.csv is filled in: merge every grades/<NB>/ into its gradebook.csv, then write
# grades/lms.csv, one column per notebook, for Canvas (LMS=moodle for Moodle), or fill in the
# LMS's own export: make gradebook ROSTER=canvas-export.csv.
LMS ?= canvas
ROSTER ?=
gradebook: venv
	$(PY) -m course gradebook grades/*/
	$(PY) -m course export grades/*/gradebook.csv --out grades/lms.csv --lms $(LMS) \
	  $(if $(ROSTER),--roster $(ROSTER))

# The student edition of the book, in site-student/: the student notebooks as pages (lesson
# outputs kept, no solution, no rubric), their download buttons serving the student notebooks.
# It renders the committed notebooks (no execution); the last step fails if any solution line
# of the instructor notebooks appears anywhere in the site.
book-student: exercises assets
	$(PY) -c "from course.book import stage_student_book as s; s('build/student', 'build/book-student')"
	LABKIT_CHECKOUT=$(CURDIR) $(VENV)/bin/sphinx-build -b html $(SPHINXOPTS) \
	  -d .cache/book-student-doctrees build/book-student/docs site-student
	cp build/student/[0-9][0-9]_*.ipynb site-student/_sources/notebooks/
	$(PY) scripts/check_links.py site-student
	$(PY) -m course check-book site-student
	@echo "student book written to site-student/: open $(CURDIR)/site-student/index.html"

# Every committed result set under results/, from scratch or resumed (rows already in a file are
# kept). About 4 CPU-hours on one 2-core machine; `labkit results run NAME --device cuda` for a GPU.
RESULTS_JOBS ?= 2
results: venv
	for name in $$($(VENV)/bin/labkit results list --names); do \
	  $(VENV)/bin/labkit results run $$name --n-jobs $(RESULTS_JOBS) || exit 1; done
	$(VENV)/bin/labkit claims

# Recompute results/claims.json from the rows (fails on any difference), then one random row of
# every result set and compare (slow: a row is a whole training run).
verify: venv
	$(VENV)/bin/labkit claims --check
	for f in results/*.json; do [ "$$f" = results/claims.json ] || \
	  $(VENV)/bin/labkit verify $$f --rows 1 || exit 1; done

lab: venv
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) site site-student build grades .cache book/node_modules test-artifacts .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
