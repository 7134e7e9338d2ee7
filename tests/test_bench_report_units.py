"""Pure parts of judgeforge.benchmarks: spec parsing, request recording, tables, plots, summaries.

No server here; the end-to-end runs are in test_bench_quality.py / test_bench_throughput.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from judgeforge.benchmarks.judges import parse_judge_spec, parse_judge_specs, server_root
from judgeforge.benchmarks.quality import select_rows
from judgeforge.benchmarks.report import (
    fmt,
    fmt_ci,
    markdown_table,
    quality_markdown,
    quality_table,
    throughput_markdown,
)
from judgeforge.benchmarks.throughput import (
    Measurement,
    RecordingModel,
    evaluate_goals,
    parse_concurrency,
    parse_metrics_text,
    prefill_probe_params,
    summarize,
)
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.errors import ConfigError
from judgeforge.metrics import compute_metrics
from judgeforge.models.base import ChatOptions
from judgeforge.models.openai_chat import OpenAIChatModel

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- judge specs

def test_parse_judge_spec_url_label_and_v1(tmp_path):
    s = parse_judge_spec("http://127.0.0.1:8000")
    assert (s.kind, s.target, s.label) == ("url", "http://127.0.0.1:8000/v1", "127.0.0.1:8000")
    s = parse_judge_spec("base=http://h:1/v1/", model_name="m")
    assert (s.kind, s.target, s.label, s.model_name) == ("url", "http://h:1/v1", "base", "m")
    # an '=' inside a URL's query string is not a label
    s = parse_judge_spec("http://h:1/v1?x=1")
    assert s.kind == "url" and s.label == "h:1"


def test_parse_judge_spec_default_and_path(tmp_path):
    assert parse_judge_spec("default").kind == "default"
    assert parse_judge_spec("base=default").label == "base"
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    s = parse_judge_spec(f"trained={tmp_path / 'ckpt'}", server_options={"kv_cache_gib": 1})
    assert (s.kind, s.label, s.target) == ("path", "trained", str((tmp_path / "ckpt").resolve()))
    assert s.describe()["server_options"] == {"kv_cache_gib": 1}
    assert parse_judge_spec(str(tmp_path / "ckpt")).label == "ckpt"
    with pytest.raises(ConfigError, match="neither a URL"):
        parse_judge_spec(str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        parse_judge_spec("  ")


def test_parse_judge_specs_unique_labels():
    specs = parse_judge_specs(["default", "default", "x=default"])
    assert [s.label for s in specs] == ["default", "default-2", "x"]
    with pytest.raises(ConfigError):
        parse_judge_specs([])


def test_server_root():
    assert server_root("http://h:1/v1") == "http://h:1"
    assert server_root("http://h:1/v1/") == "http://h:1"
    assert server_root(None) is None


# ----------------------------------------------------------------------------- rows

def _record(i: int, label: int, src: str = "a") -> PointwiseRecord:
    return PointwiseRecord(input=[{"role": "user", "content": f"q{i}"}],
                           output={"content": f"r{i}", "label": {"quality": label}},
                           data_source=src, id=f"r{i}")


def test_select_rows_seeded_sample_in_file_order():
    recs = [_record(i, 1 + i % 5) for i in range(20)]
    rows, unlabelled = select_rows(recs, "quality", limit=5, seed=3)
    assert unlabelled == 0 and len(rows) == 5
    idx = [recs.index(r) for r in rows]
    assert idx == sorted(idx)
    assert rows == select_rows(recs, "quality", limit=5, seed=3)[0]  # deterministic
    assert select_rows(recs, "quality")[0] == recs
    assert select_rows(recs, "other")[0] == [] and select_rows(recs, "other")[1] == 20


# ----------------------------------------------------------------------------- requests

async def test_recording_model_takes_the_graders_request():
    from judgeforge.graders.llm_grader import LLMGrader
    from judgeforge.prompt import PromptTemplate

    template = PromptTemplate({"quality": Scale(min=1, max=5)})
    rec = RecordingModel()
    grader = LLMGrader(rec, template=template, mode="sample", constrained=True)
    result = await grader.aevaluate(query="q?", response="a.", rubric="be kind")
    assert result.error  # the recorder answers "" -> a parse failure, never a score
    (messages, options), = rec.calls
    assert messages == template.build("q?", "a.", rubric="be kind")
    params = OpenAIChatModel("m", "http://127.0.0.1:9/v1").request_params(messages, options)
    assert params["model"] == "m" and params["messages"] == messages
    assert params["extra_body"] == {"structured_outputs": {"regex": "<score>[1-5]</score>"}}
    assert params["temperature"] == 0.0 and params["max_tokens"] == 256
    assert "n" not in params and "logprobs" not in params
    probe = prefill_probe_params(params)
    assert probe == {"model": "m", "messages": messages, "max_tokens": 1, "temperature": 0.0}


def test_request_params_prefill_logprobs_vote():
    msgs = [{"role": "user", "content": "x"}]
    model = OpenAIChatModel("m", "http://127.0.0.1:9/v1")
    p = model.request_params(msgs, ChatOptions(prefill="<score>", max_tokens=1, logprobs=True,
                                               top_logprobs=20, temperature=0.0, timeout=5))
    assert p["messages"][-1] == {"role": "assistant", "content": "<score>"}
    assert p["extra_body"] == {"continue_final_message": True, "add_generation_prompt": False}
    assert p["logprobs"] is True and p["top_logprobs"] == 20 and "timeout" not in p
    assert msgs == [{"role": "user", "content": "x"}]  # not mutated
    model = OpenAIChatModel("m", "http://127.0.0.1:9/v1", extra_body={"top_k": 20})
    p = model.request_params(msgs, ChatOptions(n=5, stop=["</score>"], seed=1))
    assert p["n"] == 5 and p["stop"] == ["</score>"] and p["extra_body"] == {"top_k": 20}


def test_parse_concurrency():
    assert parse_concurrency("1,8,32") == [1, 8, 32]
    assert parse_concurrency(" 2, 2 ,1") == [2, 1]
    assert parse_concurrency([4]) == [4]
    for bad in ("", "0", "a", "1,-2"):
        with pytest.raises(ConfigError):
            parse_concurrency(bad)


def test_parse_metrics_text_sums_label_sets():
    text = ("# HELP vllm:prompt_tokens_total x\n# TYPE vllm:prompt_tokens_total counter\n"
            'vllm:prompt_tokens_total{engine="0",model_name="m"} 100.0\n'
            'vllm:prompt_tokens_total{engine="1",model_name="m"} 20.0\n'
            "vllm:generation_tokens_total 7\nother 1e3\n")
    m = parse_metrics_text(text)
    assert m["vllm:prompt_tokens_total"] == 120.0
    assert m["vllm:generation_tokens_total"] == 7.0 and m["other"] == 1000.0


# ----------------------------------------------------------------------------- summaries

def _ms() -> list[Measurement]:
    out = []
    # 2 rounds at c=1: raw 1.0, jf-sample 0.96/0.98, oj-runner 0.9, jf-expected 2.0,
    # oj-relevance 0.5, prefill 2.2 pairs/s (10 pairs each)
    speeds = {"raw": (1.0, 1.0), "jf-sample": (0.96, 0.98), "oj-runner": (0.9, 0.9),
              "jf-expected": (2.0, 2.0), "oj-relevance": (0.5, 0.8), "prefill": (2.2, 2.6)}
    for r in range(2):
        for v, s in speeds.items():
            out.append(Measurement(v, 1, r, 10, 10 / s[r], errors=0, latencies=[1.0, 2.0],
                                   prompt_tokens=1000.0, gen_tokens=60.0 if v != "prefill"
                                   else 10.0, token_source="server", cache_queries=1000.0,
                                   cache_hits=500.0))
    return out


def test_summarize_and_goals():
    res = summarize(_ms())
    rows = {(e["concurrency"], e["variant"]): e for e in res["summary"]}
    assert rows[(1, "jf-sample")]["ratio_to_raw"] == pytest.approx(0.97)
    assert rows[(1, "raw")]["ratio_to_raw"] == pytest.approx(1.0)
    assert rows[(1, "raw")]["gen_tokens_per_pair"] == pytest.approx(6.0)
    assert rows[(1, "raw")]["prompt_tokens_per_pair"] == pytest.approx(100.0)
    assert rows[(1, "raw")]["prefix_cache_hit_rate"] == pytest.approx(0.5)
    assert rows[(1, "oj-relevance")]["pairs_per_s"] == pytest.approx(0.65)
    (lim,) = res["prefill_limit"]
    # prefill: 1000 prompt tokens in 10/2.2 s -> 220 tok/s / 100 tok/pair = 2.2 pairs/s
    assert lim["limit_pairs_per_s"] == pytest.approx(2.4)
    assert lim["prompt_tokens_per_pair"] == pytest.approx(100.0)
    goals = {g["goal"]: g for g in res["goals"]}
    assert goals["jf-sample / raw pairs/s"]["met"] is True
    assert goals["jf-sample / oj-runner (same grader)"]["value"] == pytest.approx(
        np.median([0.96 / 0.9, 0.98 / 0.9]))
    assert goals["jf-expected / oj-relevance (JSON grader)"]["value"] == pytest.approx(
        np.median([4.0, 2.5]))
    assert goals["jf-expected / oj-relevance (JSON grader)"]["met"] is True  # 3.25 >= 3
    assert goals["jf-expected / prefill-bound limit"]["value"] == pytest.approx(
        np.median([2.0 / 2.2, 2.0 / 2.6]))
    md = throughput_markdown({"setup": {}, **res, "notes": ["n1"]})
    assert "| 1 | jf-sample |" in md and "## Goals" in md and "- n1" in md


def test_goals_missing_variants_are_skipped():
    ms = [m for m in _ms() if m.variant in ("raw", "jf-sample")]
    goals = evaluate_goals(ms)
    assert [g["goal"] for g in goals] == ["jf-sample / raw pairs/s"]


# ----------------------------------------------------------------------------- tables, plots

def test_fmt_and_markdown_table():
    assert fmt(None) == "-" and fmt(1) == "1" and fmt(0.12345) == "0.123"
    assert fmt(float("nan")) == "-"
    assert fmt_ci(0.5, [0.4, 0.6]) == "0.500 [0.400, 0.600]"
    assert fmt_ci(0.5, [None, None]) == "0.500"
    t = markdown_table(["a", "b"], [["x|y", 1]])
    assert t.splitlines() == ["| a | b |", "| :--- | ---: |", "| x\\|y | 1 |"]
    with pytest.raises(ValueError):
        markdown_table(["a"], [[1, 2]])


def _fake_report() -> dict:
    scale = Scale(min=1, max=5)
    labels = [1, 2, 3, 4, 5, 4, 4, 5]
    a = [1.2, 2.0, None, 4.4, 4.9, 3.6, 4.0, 5.0]
    b = [3, 3, 3, 3, 3, None, None, 3]
    src = ["x", "x", "x", "y", "y", "y", "y", "y"]
    judges = []
    for label, preds in (("base", a), ("trained|v2", b)):
        judges.append({"label": label, "target": "default",
                       "metrics": compute_metrics(preds, labels, scale, data_sources=src,
                                                  bootstrap=50),
                       "status_counts": {"ok": sum(p is not None for p in preds)},
                       "timings": {"pairs_per_s": 1.5, "latency_p50_s": 0.7,
                                   "latency_p95_s": 1.2, "completion_tokens_mean": 1.0}})
    return {"mode": "expected", "constrained": False, "judges": judges,
            "data": {"path": "d.jsonl", "name": "d", "dimension": "quality", "scale": [1, 5],
                     "rows_graded": 8, "rows_in_file": 8, "sample": "all labelled rows",
                     "label_counts": {}},
            "metrics_note": "note", "files": {"plots": []}, "timings": {"total_s": 1.0}}


def test_quality_table_side_by_side():
    report = _fake_report()
    table = quality_table(report)
    lines = table.splitlines()
    assert lines[0] == "| metric | base | trained\\|v2 |"
    by_title = {ln.split(" | ")[0].lstrip("| "): ln for ln in lines[2:]}
    mae_a = report["judges"][0]["metrics"]["mae"]
    assert f"{mae_a:.3f}" in by_title["MAE (failures = worst error)"]
    assert "8 (7)" in by_title["rows (parsed)"] and "8 (6)" in by_title["rows (parsed)"]
    # judge b predicts a constant: no correlation, shown as '-'
    assert by_title["Pearson r"].rstrip(" |").endswith("-")
    md = quality_markdown(report)
    assert "## Judges side by side" in md and "## Per data_source" in md


def test_plots_are_valid_pngs(tmp_path):
    import matplotlib.image as mpimg

    from judgeforge.benchmarks.plots import quality_plots, safe_name

    report = _fake_report()
    names = quality_plots(report, tmp_path)
    assert names == ["confusion_base.png", "confusion_trained_v2.png", "distribution.png"]
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        img = mpimg.imread(tmp_path / name)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert safe_name("../x y") == "x_y"


def test_bench_import_is_light_and_cli_parses():
    code = ("import sys, judgeforge.benchmarks, judgeforge.benchmarks.cli_bench;"
            "bad=[m for m in ('torch','vllm','matplotlib','transformers','openjudge') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    import argparse

    from judgeforge.benchmarks.cli_bench import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", "throughput", "--model", "default", "--data", "x.jsonl"])
    assert args.concurrency == "1,8" and args.constrained is True
    args = parser.parse_args(["bench", "quality", "--model", "a=default", "--model", "default",
                              "--data", "x.jsonl", "--out", "o"])
    assert args.model == ["a=default", "default"] and args.mode == "expected"


def test_every_bench_option_has_help():
    import argparse

    from judgeforge.benchmarks.cli_bench import register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    register(sub)
    bench = sub.choices["bench"]
    subs = next(a for a in bench._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in subs.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"bench {name} {action.option_strings} has no help"
    json.dumps(sorted(subs.choices))
