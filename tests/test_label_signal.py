"""benchmarks/label_signal.py on real files: the shipped Prometheus sets split by question, and
synthetic rows whose expected Spearman is known exactly (no quality number is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeforge.benchmarks.label_signal import main, rater_ceiling, signal_rows
from judgeforge.data.schema import DatasetInfo, PointwiseRecord, Scale


def _rec(i: int, label: int, *, words: int, group: int, ratings: list[int]) -> PointwiseRecord:
    return PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": f"Question {group}?"}],
        "output": {"content": " ".join(["word"] * words), "label": {"quality": label}},
        "data_source": "synthetic", "id": str(i),
        "extra_info": {"idx": group, "reference": "word word", "ratings": ratings,
                       "source": "a" if label > 2 else "b"}})


def test_signals_on_rows_built_to_a_known_answer() -> None:
    scale = Scale(min=1, max=5)
    # label rises with length; within a question the labels differ
    rows = [_rec(i, 1 + i % 5, words=1 + i % 5, group=i // 5, ratings=[1 + i % 5] * 3)
            for i in range(40)]
    found = {r["name"]: r for r in signal_rows(rows[:20], rows[20:], "quality", scale,
                                               group_key="idx", fields=["source"],
                                               bootstrap=50)}
    assert found["response length (characters)"]["spearman"] == pytest.approx(1.0)
    # every question holds labels 1..5: its mean says nothing about which answer is better
    assert found["question oracle (test labels' own question mean)"]["spearman"] is None
    assert "TF-IDF cosine(response, reference answer)" in found
    assert found["training-label mean by extra_info.source"]["spearman"] > 0.5
    assert rater_ceiling(rows, "ratings") == pytest.approx([1.0, 1.0, 1.0])
    assert rater_ceiling(rows, "missing") is None


def test_prints_the_table_for_the_shipped_prometheus_split(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import write_records
    from judgeforge.data.split import group_split
    from judgeforge.datasets import prometheus_files

    data = convert_prometheus(prometheus_files()[0])
    train, test = group_split(data.records, test_size=80, seed=0, group_key="idx",
                              dimension="quality")
    info = DatasetInfo(dimensions=dict(data.info.dimensions))
    write_records(tmp_path / "train.jsonl", train, info)
    write_records(tmp_path / "test.jsonl", test, info)
    assert main([str(tmp_path), "--group-key", "idx", "--field", "response_source",
                 "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    for name in ("rater noise ceiling (one of 3 ratings", "question oracle",
                 "response length", "cosine(response, reference answer)",
                 "extra_info.response_source"):
        assert name in out
