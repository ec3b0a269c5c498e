# Two commands matter: `make demo` runs the example site, `make test` runs the tests.
# Wagtail 8 and Django 6 need Python 3.12+; scripts/find-python picks one.
PYTHON ?= $(shell scripts/find-python)
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-sqlite test-postgres test-browser test-compat browser gettext messages lint venv clean docs check-wheel test-proof-full bench

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,postgres,redis,docs]"
	touch $(STAMP)

venv: $(STAMP)

## Run the example site on http://127.0.0.1:8000 with a worker and demo data.
## Another port: make demo DEMO_PORT=8001. Ctrl+C stops everything.
DEMO_PORT ?= 8000
demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	WAGTAILADMIN_BASE_URL=http://127.0.0.1:$(DEMO_PORT) $(PY) manage.py load_demo_data
	$(PY) scripts/run_demo.py --port $(DEMO_PORT)

## Run the whole test suite on SQLite (browser tests included).
test: $(STAMP) browser gettext
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)
	@# Threads cannot share an in-memory SQLite database: the race tests get a file.
	BVC_SQLITE_TEST_NAME=$$(mktemp -u /tmp/bvc-race-XXXXXX.sqlite3) $(BIN)/pytest tests/test_concurrency.py tests/test_meetings.py $(PYTEST_ARGS)

## The suite without the browser tests, on SQLite.
test-sqlite: $(STAMP)
	$(BIN)/pytest -m "not browser" $(PYTEST_ARGS)

## The suite without the browser tests, on PostgreSQL (127.0.0.1:5432, user postgres).
test-postgres: $(STAMP)
	BVC_DATABASE=postgres BVC_PG_TEST_NAME=test_bvc_$$$$ $(BIN)/pytest -m "not browser" $(PYTEST_ARGS)

## Only the browser tests (Playwright driving Debian's Chromium).
test-browser: $(STAMP) browser
	$(BIN)/pytest -m browser $(PYTEST_ARGS)

## The suite on the oldest supported stack: Wagtail 7.4 LTS and Django 5.2 (SQLite).
COMPAT_VENV ?= .venv-compat
test-compat:
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet "wagtail>=7.4,<7.5" "Django>=5.2,<5.3" -e ".[test]"
	$(COMPAT_VENV)/bin/pytest -m "not browser" --ignore=tests/proof $(PYTEST_ARGS)

## GNU gettext, for `make messages` and the test that the catalogues are current.
gettext:
	@command -v xgettext >/dev/null 2>&1 || scripts/install-gettext

## Update the it, es, sv and uk catalogues from the code, then compile them.
LANGS := it es sv uk
messages: $(STAMP) gettext
	cd wagtail_bookings_vc && PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings \
		../$(PY) -m django makemessages $(addprefix -l ,$(LANGS)) --no-obsolete --no-location --ignore="testing/*"
	cd wagtail_bookings_vc && PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings \
		../$(PY) -m django compilemessages

## Debian's Chromium for the browser tests; Playwright never downloads a browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || scripts/install-chromium
	@scripts/install-axe

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The proof suites at full size (1,000 bookings, 400 examples per property), on SQLite
## and on PostgreSQL with Redis; the figures go to benchmarks/results/ (docs/proof.md).
## The CI sizes run with `make test` and `make test-postgres`.
test-proof-full: $(STAMP)
	BVC_PROOF_SIZE=1000 BVC_PROOF_RESULTS=benchmarks/results/proof-sqlite-full.json $(BIN)/pytest tests/proof $(PYTEST_ARGS)
	BVC_DATABASE=postgres BVC_PG_TEST_NAME=test_bvc_proof_$$$$ BVC_PROOF_SIZE=1000 BVC_PROOF_RESULTS=benchmarks/results/proof-postgres-full.json $(BIN)/pytest tests/proof $(PYTEST_ARGS)

## Benchmarks: print a table and keep the results in benchmarks/results/, then plot the
## latency against the number of bookings. BENCH_ARGS=--quick for a small run (1,000
## bookings). They run in an environment of their own, which alone has django-appointment
## (measured side by side) and matplotlib.
BENCH_ARGS ?=
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed."; exit 1; }
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[test,postgres,redis,bench]"
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.run --database postgres $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.plot

## Build the documentation site into docs/_build; any warning fails the build.
docs: $(STAMP)
	PYTHON=$(PY) scripts/build-docs

## Build the sdist and wheel, install the wheel into a new `wagtail start` site as the
## tutorial says, and book an online appointment there.
check-wheel: $(STAMP)
	$(PY) scripts/check-wheel

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(BENCH_VENV) demo.sqlite3 var docs/_build
