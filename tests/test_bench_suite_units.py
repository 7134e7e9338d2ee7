"""The benchmark suite's pieces without a model: suite YAML, anchors read from the shipped
JUDGE-BENCH results, the leave-one-rater-out ceiling, the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from judgeforge.benchmarks.suite import load_suite, shipped_suites
from judgeforge.benchmarks.suite.anchors import judge_bench_anchors, set_anchors
from judgeforge.benchmarks.suite.ceiling import loro_ceiling
from judgeforge.benchmarks.suite.report import set_table, summary_table
from judgeforge.benchmarks.suite.sets import load_set
from judgeforge.data.schema import PointwiseRecord
from judgeforge.datasets import shipped_path
from judgeforge.errors import ConfigError


def test_default_suite_resolves_to_shipped_files() -> None:
    assert {"default", "prometheus"} <= set(shipped_suites())
    suite = load_suite("default")
    names = [s.name for s in suite.sets]
    assert len(names) == 10 and "newsroom-relevance" in names and "lamp-r" in names
    for s in suite.sets:
        for f in s.files:
            assert f.is_file() and "datasets" in f.parts, f
    news = next(s for s in suite.sets if s.name == "newsroom-fluency")
    loaded = load_set(news)
    assert loaded.dimension == "fluency" and loaded.task_origin == "data"
    assert "well-written and grammatical" in (loaded.task or "")
    fq = load_set(next(s for s in suite.sets if s.name == "feedbackqa"))
    assert len(fq.result.records) == 1995 and fq.task_origin == "suite"


def test_anchors_come_from_the_results_files_as_in_the_readme() -> None:
    def spearman(path: str, metric: str, judge: str) -> float:
        found = judge_bench_anchors(shipped_path(path), metric)
        return next(a["spearman"] for a in found if a["judge"] == judge)

    news = "judge-bench/results/newsroom.json.gz"
    gpt = [spearman(news, m, "gpt-4o") for m in ("Informativeness", "Relevance", "Fluency",
                                                   "Coherence")]
    assert [round(v, 2) for v in gpt] == [0.62, 0.56, 0.59, 0.59]
    assert round(spearman(news, "Relevance", "Meta-Llama-3.1-8B-Instruct"), 2) == 0.44
    gsm = "judge-bench/results/roscoe-gsm8k.json.gz"
    cosmos = "judge-bench/results/roscoe-cosmos.json.gz"
    assert round(spearman(gsm, "Overall Quality", "gpt-4o"), 2) == 0.91
    assert round(spearman(cosmos, "Overall Quality", "gpt-4o"), 2) == 0.69
    assert round(spearman(gsm, "Overall Quality", "Meta-Llama-3.1-8B-Instruct"), 2) == 0.86
    assert round(spearman(cosmos, "Overall Quality", "Meta-Llama-3.1-8B-Instruct"), 2) == 0.62
    found = judge_bench_anchors(shipped_path(news), "Relevance")
    assert len(found) == 12 and all(a["n"] == 420 for a in found)
    with pytest.raises(ConfigError, match="no judge has results"):
        judge_bench_anchors(shipped_path(news), "Overall Quality")


def test_typed_anchors_need_a_citation(tmp_path: Path) -> None:
    data = shipped_path("lamp-r/test.jsonl.gz")
    good = tmp_path / "mine.yaml"
    good.write_text(f"""
name: mine
sets:
  - name: writing
    converter: lamp
    files: [{data}]
    task: Rate the paragraph.
    anchors:
      published: [{{judge: Paper-Judge, spearman: 0.4, source: "Someone et al. 2025"}}]
""")
    suite = load_suite(good)
    assert suite.name == "mine"
    assert set_anchors(suite.sets[0]) == [{"judge": "Paper-Judge", "spearman": 0.4,
                                           "pearson": None, "kendall": None, "n": None,
                                           "valid": None, "source": "Someone et al. 2025"}]
    assert load_set(suite.sets[0]).task == "Rate the paragraph."
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace(', source: "Someone et al. 2025"', ""))
    with pytest.raises(ConfigError, match=r"published\[0\].source: cite"):
        load_suite(bad)


@pytest.mark.parametrize("body,message", [
    ("sets: []", "non-empty 'sets'"),
    ("sets: [{name: a, converter: nope, files: [x]}]", "converter: one of"),
    ("sets: [{name: a, converter: lamp, files: [lamp-r/test.jsonl.gz], colour: red}]",
     "unknown key"),
    ("sets: [{name: a, converter: lamp, files: [no/such.jsonl]}]", "neither beside the suite"),
    ("sets: [{name: a, converter: lamp, files: [lamp-r/test.jsonl.gz]},"
     " {name: a, converter: lamp, files: [lamp-r/test.jsonl.gz]}]", "unique"),
    ("sets: [{name: a, converter: judge-bench, files: [judge-bench/newsroom.json.gz],"
     " anchors: {judge_bench: judge-bench/results/newsroom.json.gz}}]", "needs the set's metric"),
])
def test_bad_suite_files_are_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_suite(path)
    with pytest.raises(ConfigError, match="no suite"):
        load_suite(tmp_path / "missing.yaml")


def _rec(scores: list[int]) -> PointwiseRecord:
    return PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": "q"}],
        "output": {"content": "r", "label": {"q": 1}}, "data_source": "t",
        "extra_info": {"rater_scores": scores}})


def test_leave_one_rater_out_ceiling() -> None:
    from scipy import stats

    rows = [[1, 2, 1], [3, 3, 4], [5, 4, 5], [2, 1, 2], [4, 5, 3], [2, 2]]
    got = loro_ceiling([_rec(r) for r in rows])
    assert got is not None and got["rows"] == 6 and got["raters"] == 3
    expected = []
    for j in range(3):
        mine = [r[j] for r in rows if j < len(r)]
        rest = [sum(r[:j] + r[j + 1:]) / (len(r) - 1) for r in rows if j < len(r)]
        expected.append(stats.spearmanr(mine, rest).statistic)
    assert got["per_rater"] == pytest.approx(expected)
    assert got["spearman"] == pytest.approx(sum(expected) / 3)
    assert loro_ceiling([_rec([3]) for _ in range(5)]) is None  # one rater: no ceiling


def _report() -> dict[str, Any]:
    metrics = {"n": 4, "n_parsed": 3, "parse_failure_rate": 0.25, "mae": 1.0, "spearman": 0.5,
               "pearson": 0.4, "kendall": 0.3, "qwk": 0.2, "ci": {"spearman": [0.1, 0.9]}}
    return {"suite": {"name": "t", "headline_anchors": ["gpt-4o"]},
            "judges": [{"label": "smol", "target": "x"}], "settings": {"limit": 4},
            "sets": [{"name": "s1", "rows_graded": 4, "judges": [{"label": "smol", **metrics}],
                      "baselines": [{"label": "baseline: length", **metrics, "spearman": 0.1}],
                      "anchors": [{"judge": "gpt-4o", "spearman": 0.62, "pearson": 0.6,
                                   "kendall": 0.5, "n": 420},
                                  {"judge": "other", "spearman": 0.3, "n": 420}],
                      "ceiling": {"spearman": 0.7, "rows": 4}}]}


def test_tables_show_judges_baselines_anchors_and_ceiling() -> None:
    report = _report()
    summary = summary_table(report)
    assert "0.50 [0.10, 0.90] (25% fail)" in summary and "| 0.10 |" in summary
    assert "gpt-4o (pub.)" in summary and "| 0.62 |" in summary and "| 0.70 |" in summary
    full = set_table(report, report["sets"][0])
    assert "other (published)" in full and "human (leave-one-rater-out)" in full
    short = set_table(report, report["sets"][0], all_anchors=False)
    assert "other (published)" not in short and "gpt-4o (published)" in short


def test_a_trained_judge_keeps_its_card_prompt_with_the_sets_dimension(tmp_path: Path) -> None:
    from judgeforge.benchmarks.judges import JudgeSpec
    from judgeforge.benchmarks.suite.run import _judge_template
    from judgeforge.card import JudgeCard
    from judgeforge.data.schema import Scale
    from judgeforge.prompt import PromptTemplate

    folder = tmp_path / "judge"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    trained = PromptTemplate({"quality": Scale(min=1, max=5)}, system_prompt="Be strict.",
                             max_response_chars=400)
    JudgeCard.from_template(trained).write(folder)
    base = PromptTemplate({"relevance": Scale(min=1, max=5)}, task="Summaries.",
                          max_query_chars=6000, max_response_chars=4000)
    got = _judge_template(JudgeSpec("trained", str(folder), "path"), base)
    assert dict(got.dimensions) == {"relevance": Scale(min=1, max=5)}
    assert got.system_prompt == "Be strict." and got.task == "Summaries."
    assert (got.max_query_chars, got.max_response_chars) == (6000, 400)
    plain = JudgeSpec("url", "http://127.0.0.1:1/v1", "url")
    assert _judge_template(plain, base) is base
