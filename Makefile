# The few commands a person types. The README's two commands need only Python.
.PHONY: run demo test lint migrate bench

demo:
	./scripts/demo.sh

run:
	.venv/bin/yuyue serve

test:
	./scripts/test.sh

lint:
	.venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench && .venv/bin/mypy

migrate:
	.venv/bin/yuyue init

bench:
	.venv/bin/python bench/run.py
