"""The main job: data -> GRPO-trained judge -> served -> graded -> benchmarked, on CPU.

Each step runs the same public commands and APIs a user would (``judgeforge data``, ``bench
quality``, ``train``, ``serve``; ``await grader.aevaluate``, ``GradingRunner``); heavy steps run
as subprocesses so their memory is returned when they end. See :func:`build_steps`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.demo.steps_runner import Step, StepFailed, judgeforge_cli, run_logged
from judgeforge.prompt import truncate_text

__all__ = ["DemoOptions", "Demo", "default_data_files"]


def default_data_files() -> list[Path]:
    """The real GPT-4-labelled Prometheus absolute-grading sets shipped in the package."""
    from judgeforge.datasets import prometheus_files

    return prometheus_files()


@dataclass
class DemoOptions:
    workdir: Path
    quick: bool = False
    data: list[Path] = field(default_factory=list)
    test_rows: int | None = None
    redo: list[str] = field(default_factory=list)
    train_overrides: list[str] = field(default_factory=list)

    @property
    def n_test(self) -> int:
        return self.test_rows or (24 if self.quick else 128)  # 128: the recipe's test rows

    @property
    def train_config(self) -> str:
        """The training preset (``judgeforge train cpu``/``cpu-quick``)."""
        return "cpu-quick" if self.quick else "cpu"


# The prompt the judge is trained with and graded with must be the same. Long Prometheus rows
# (rubric + reference + response, ~1200 tokens) make CPU steps slow, so the demo trims the data
# itself, once (the CPU recipe's prompt options: no rubric, no reference, short texts), and
# training, benchmarking and serving all read the same trimmed files with no further trimming:
# the base model is benchmarked through a URL, which carries no judge card (and so no prompt
# limits), and it must see the very prompts the trained judge sees. Each trimmed row keeps its
# response's original length in extra_info.response_chars for the length baseline.
VAL_FILE = "val.parquet"  # judgeforge.train.cpu.data.VAL_FILE (benchmarks never import train)
MAX_QUERY_CHARS = 300
MAX_RESPONSE_CHARS = 400
NO_TRAIN_TRIMMING = ["prompt.max_query_chars=null", "prompt.max_response_chars=null",
                     "prompt.use_rubric=false", "prompt.use_reference=false"]
BENCH_MODES = (("sample", ["--mode", "sample", "--max-tokens", "24"]),
               ("expected", ["--mode", "expected"]))


class Demo:
    def __init__(self, opts: DemoOptions) -> None:
        self.opts = opts
        self.work = opts.workdir.resolve()
        self.data_dir = self.work / "data"
        self.server: Any = None          # VLLMServer of the trained judge, while needed
        self.api_proc: subprocess.Popen[bytes] | None = None

    # ---- steps ---------------------------------------------------------------------------------
    def build_steps(self) -> list[Step]:
        return [
            Step("check", "check the environment (vLLM CPU, TRL, threads)", self.check),
            Step("model", "prepare the default judge model (SmolLM2-135M-Instruct)", self.model),
            Step("data", "convert the Prometheus sets and split train/test", self.data),
            Step("train", "train the CPU recipe (SFT warm-up + GRPO)", self.train),
            # after training: the base's calibration is fitted on the training run's validation
            # rows (train/val.parquet), as the trained judge's was
            Step("bench-base", "benchmark the base model (raw and calibrated) on the test split",
                 self.bench_base),
            Step("serve", "serve the trained judge (vLLM + scoring API) and grade a few pairs",
                 self.serve_and_grade),
            Step("bench-trained", "benchmark the trained judge on the test split",
                 self.bench_trained),
        ]

    def check(self, log: Path) -> dict[str, Any]:
        code = ("import torch, vllm, trl, transformers, judgeforge; "
                "print('torch', torch.__version__, '| vllm', vllm.__version__, '| trl', "
                "trl.__version__, '| transformers', transformers.__version__, '| cores', "
                "__import__('os').cpu_count())")
        run_logged([sys.executable, "-c", code], log)
        return {}

    def model(self, log: Path) -> dict[str, Any]:
        from judgeforge.models.default_model import prepare_default_model

        path = prepare_default_model()
        print(f"default model: {path}")
        return {"path": str(path)}

    def data(self, log: Path) -> dict[str, Any]:
        from judgeforge.data.converters.prometheus import convert_prometheus
        from judgeforge.data.io import write_records
        from judgeforge.data.schema import DatasetInfo
        from judgeforge.data.split import group_split

        files = self.opts.data or default_data_files()
        records, info = [], None
        for f in files:
            loaded = convert_prometheus(f)
            info = info or loaded.info
            records += loaded.records
            print(f"{f.name}: {len(loaded.records)} rows, labels "
                  f"{_counts(r.label[next(iter(r.label))] for r in loaded.records)}")
        assert info is not None
        info = DatasetInfo(name="prometheus-absolute", dimensions=info.dimensions,
                           source="prometheus-eval/prometheus-eval (GPT-4 labels, Apache-2.0)",
                           license=info.license, description="demo: queries/responses trimmed "
                           f"to {MAX_QUERY_CHARS}/{MAX_RESPONSE_CHARS} chars, no rubric or "
                           "reference")
        # Split by question (Prometheus idx) before trimming: the responses to one question
        # never straddle train and test. Grouping by query text is not enough here: MT-Bench's
        # second-turn queries hold each model's own first answer, so one question has many texts.
        train, test = group_split(records, test_size=self.opts.n_test, seed=0, group_key="idx")
        train, test = [_trim(r) for r in train], [_trim(r) for r in test]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        train_path = write_records(self.data_dir / "train.parquet", train, info)
        test_path = write_records(self.data_dir / "test.parquet", test, info)
        print(f"group split by question (idx): train {len(train)} rows -> {train_path}\n"
              f"test: {len(test)} rows -> {test_path} (no query in both)")
        return {"train": str(train_path), "test": str(test_path), "n_train": len(train),
                "n_test": len(test)}

    def _bench(self, log: Path, label: str, model: str, out: Path) -> dict[str, Any]:
        test, train = self._data_out("test"), self._data_out("train")
        val = self.work / "train" / VAL_FILE  # the training run's validation rows
        for mode, args in BENCH_MODES:
            # --train-data: the constant and length baselines, fitted on the training split;
            # --calibration-data (expected mode): the judge calibrated on the validation rows
            cal = ["--calibration-data", str(val)] if mode == "expected" and val.is_file() \
                else []
            run_logged(judgeforge_cli("bench", "quality", "--data", test, "--model",
                                      f"{label}={model}", *args, "--concurrency", "8",
                                      "--train-data", train, *cal, "--out", str(out / mode)),
                       log)
        return {mode: str(out / mode / "report.json") for mode, _ in BENCH_MODES}

    def bench_base(self, log: Path) -> dict[str, Any]:
        return self._bench(log, "base", "default", self.work / "bench-base")

    def train(self, log: Path) -> dict[str, Any]:
        out = self.work / "train"
        # validation (best-checkpoint choice) uses rows held out of the training split, never
        # the test split the benchmark reports on
        run_logged(judgeforge_cli("train", str(self.opts.train_config),
                                  f"data.train_files=[{self._data_out('train')}]",
                                  "data.val_files=[]", "data.group_key=idx", f"output_dir={out}",
                                  *NO_TRAIN_TRIMMING,
                                  *self.opts.train_overrides), log)
        for name in ("best", "final"):
            if (out / name / "config.json").is_file():
                print(f"trained judge: {out / name}")
                return {"checkpoint": str(out / name), "curves": str(out / "curves.png"),
                        "log": str(out / "train_log.jsonl")}
        raise StepFailed(f"training finished but left no model folder in {out}")

    def serve_and_grade(self, log: Path) -> dict[str, Any]:
        base_url = self._ensure_server(log)
        api_url = self._ensure_api(log, base_url)
        from judgeforge.benchmarks.demo.usage import grade_examples

        shown = asyncio.run(grade_examples(base_url, self.server.model_name, api_url,
                                           self._data_out("test")))
        (self.work / "usage.json").write_text(json.dumps(shown, indent=2))
        return {"vllm": base_url, "api": api_url}

    def bench_trained(self, log: Path) -> dict[str, Any]:
        base_url = self._ensure_server(log)
        return self._bench(log, "trained", base_url, self.work / "bench-trained")

    # ---- servers -------------------------------------------------------------------------------
    def _checkpoint(self) -> str:
        state = json.loads((self.work / "state.json").read_text())
        return state["train"]["outputs"]["checkpoint"]

    def _data_out(self, key: str) -> str:
        state = json.loads((self.work / "state.json").read_text())
        return state["data"]["outputs"][key]

    def _ensure_server(self, log: Path) -> str:
        if self.server is None:
            from judgeforge.models.vllm_server import VLLMServer

            print("starting vLLM for the trained judge (~40 s on 2 cores) ...", flush=True)
            srv = VLLMServer(self._checkpoint(), served_model_name="judge", kv_cache_gib=1,
                             max_model_len=4096, log_file=self.work / "logs" / "vllm-judge.log")
            srv.start()
            self.server = srv
            print(f"vLLM: {srv.base_url} (pid {srv.pid})", flush=True)
        return str(self.server.base_url)

    def _ensure_api(self, log: Path, base_url: str) -> str:
        if self.api_proc is None:
            from judgeforge.data.io import read_info
            from judgeforge.models.vllm_server import find_free_port

            info = read_info(self._data_out("test"))
            assert info is not None
            dim, scale = next(iter(info.dimensions.items()))
            port = find_free_port()
            fh = open(self.work / "logs" / "scoring-api.log", "ab")
            self.api_proc = subprocess.Popen(
                judgeforge_cli("serve", base_url, "--model-name", "judge", "--port", str(port),
                               "--grader", dim, "--scale", f"{dim}={scale}", "--mode", "sample"),
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
            self.api_url = f"http://127.0.0.1:{port}"
            _wait_http(f"{self.api_url}/healthz", 600, self.api_proc)
            print(f"scoring API: {self.api_url} (pid {self.api_proc.pid})", flush=True)
        return self.api_url

    def close(self) -> None:
        if self.api_proc is not None and self.api_proc.poll() is None:
            self.api_proc.terminate()
            try:
                self.api_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.api_proc.kill()
            self.api_proc = None
        if self.server is not None:
            self.server.stop()
            self.server = None


def _trim(record: Any) -> Any:
    """The record with short texts, no rubric or reference, and its response's original length
    in ``extra_info.response_chars`` (for the length baseline)."""
    data = record.to_dict()
    extra = dict(data.get("extra_info") or {})
    extra.setdefault("response_chars", len(data["output"]["content"]))
    extra.pop("reference", None)
    extra.pop("rubric", None)
    data["extra_info"] = extra
    for m in data["input"]:
        m["content"] = truncate_text(m["content"], MAX_QUERY_CHARS)
    data["output"]["content"] = truncate_text(data["output"]["content"], MAX_RESPONSE_CHARS)
    return type(record).model_validate(data)


def _counts(values: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepFailed(f"the process serving {url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise StepFailed(f"{url} did not answer within {timeout:.0f} s")


def env_threads() -> str:
    return os.environ.get("OMP_NUM_THREADS", "all cores")
