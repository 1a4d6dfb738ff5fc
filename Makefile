# SLAM developer commands. `make demo` sets up .venv and runs the main job; `make test` runs the tests.
VENV ?= .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

DEPENDENCY_FILES := constraints.txt pyproject.toml $(wildcard plugins/*/pyproject.toml) scripts/setup-venv.sh

.PHONY: setup demo test lint
setup: $(VENV)/.slam-setup

$(VENV)/.slam-setup: $(DEPENDENCY_FILES)
	scripts/setup-venv.sh $(VENV)
	touch $@

# The main job until the training engine lands: validate and inspect the shipped example spec.
demo: setup
	$(VENV)/bin/slam plugins
	$(VENV)/bin/slam spec validate recipes/example/spec.yaml
	$(VENV)/bin/slam inspect recipes/example/spec.yaml

test: setup
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check slam_core plugins
