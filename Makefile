# vth-twin: the two commands, plus helpers. See README.md.
.PHONY: demo test setup setup-test db-up db-down lint typecheck pytest bench clean

demo:            ## set up, start PostGIS, load the demo data, serve the API and map on 127.0.0.1:8000
	scripts/demo.sh

test: setup-test db-up lint typecheck pytest  ## set up, start PostGIS, run ruff, mypy and pytest

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

db-up:
	@if [ -z "$$TWIN_DATABASE_URL" ]; then .venv/bin/twin db up; fi

db-down:
	.venv/bin/twin db down

lint:
	.venv/bin/ruff check .

typecheck:
	.venv/bin/mypy

pytest:
	.venv/bin/pytest -q $(PYTEST_ARGS)

bench:           ## benchmarks against named peers (needs the medium-scale twin; see README)
	.venv/bin/python bench/run.py

clean:           ## remove .venv (the database stays; 'twin db reset' deletes it)
	rm -rf .venv
