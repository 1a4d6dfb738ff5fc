# SLAM developer commands. `make demo` sets up .venv and runs the main job; `make test` runs the tests.
VENV ?= .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

DEPENDENCY_FILES := constraints.txt pyproject.toml $(wildcard plugins/*/pyproject.toml) recipes/pyproject.toml scripts/setup-venv.sh

.PHONY: setup demo demo-quick inspect test lint wheels
setup: $(VENV)/.slam-setup

$(VENV)/.slam-setup: $(DEPENDENCY_FILES)
	scripts/setup-venv.sh $(VENV)
	touch $@

# The main job: train the embedded demo (recipes/demo) on this machine and print its WER.
# WAV=path/to/file.wav also transcribes that file with the trained model.
demo: setup
	$(VENV)/bin/slam demo $(WAV)

# A smoke run of the same pipeline (a few steps; its WER is not the demo's).
demo-quick: setup
	$(VENV)/bin/slam demo --quick

# Every distribution's sdist and wheel, into dist/.
wheels: setup
	for folder in . plugins/*/ recipes contrib/template; do \
		$(VENV)/bin/python -m build --no-isolation --outdir dist $$folder || exit 1; \
	done

# Validate and inspect the paper-scale example spec (meta device, no weights).
inspect: setup
	$(VENV)/bin/slam spec validate recipes/vicuna-7b-lora/spec.yaml
	$(VENV)/bin/slam inspect recipes/vicuna-7b-lora/spec.yaml

test: setup
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check slam_core plugins recipes
