# The two commands of the README. Both set everything up first.
.PHONY: demo test setup lint

demo: setup
	.venv/bin/streamrec demo

# The linter and the type checker run first: a red one fails the tests.
test: setup lint
	.venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
