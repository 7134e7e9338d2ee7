# judgeforge: the two commands of the README, and their parts.
.PHONY: setup demo demo-quick lint test test-main test-verl

setup:            ## build .venv and .venv-verl (idempotent)
	tools/setup_env.sh all

demo: setup       ## the main job: data -> GRPO-trained judge -> served -> graded -> benchmarked
	.venv/bin/judgeforge demo

demo-quick: setup ## a few-minute version of the main job
	.venv/bin/judgeforge demo --quick

lint: setup       ## ruff, mypy (tools/typecheck.py) and the layering rule; settings in pyproject.toml
	.venv/bin/ruff check .
	.venv/bin/python tools/typecheck.py
	.venv/bin/python -m pytest tests/test_layering.py tests/test_public_api.py -q -p no:cacheprovider

test: lint        ## lint, then every test: the main environment, then the verl environment
	JUDGEFORGE_REQUIRE_STACK=1 .venv/bin/python -m pytest tests --ignore=tests/verl -q -ra --durations=15
	JUDGEFORGE_REQUIRE_STACK=1 .venv-verl/bin/python -m pytest tests/verl -q -ra

test-main: setup
	JUDGEFORGE_REQUIRE_STACK=1 .venv/bin/python -m pytest tests --ignore=tests/verl -q -ra --durations=15

test-verl: setup
	JUDGEFORGE_REQUIRE_STACK=1 .venv-verl/bin/python -m pytest tests/verl -q -ra
