#!/usr/bin/env bash
# GPU smoke test of the verl backend (details and options: gpu_smoke.py --help).
#   bash train/verl/gpu_smoke.sh [--model HF_DIR] [--steps 2] [--check-only]
# Uses $JUDGEFORGE_VERL_PYTHON if set, else python3. Exit 2 = needs missing (listed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${JUDGEFORGE_VERL_PYTHON:-$(command -v python3 || command -v python)}"
exec "$py" "$here/gpu_smoke.py" "$@"
