# The two commands of the README. Both set everything up first.
.PHONY: demo test setup lint

demo: setup
	.venv/bin/streamrec demo

test: setup
	.venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check .
