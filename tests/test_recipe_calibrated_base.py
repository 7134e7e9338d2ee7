"""The recipe benchmark's verdicts include the trained judge against its calibrated base.

``benchmarks/train_cpu_recipe.py --report-only`` on a recipe folder written here: the shipped
Prometheus split files (real rows) and a ``recipe.json`` whose predictions are set by the test,
so the verdicts' direction is known.
"""

from __future__ import annotations

import json
from pathlib import Path

from judgeforge.data.io import write_records


def test_report_only_compares_the_trained_judge_with_the_calibrated_base(tmp_path: Path) -> None:
    from judgeforge.benchmarks.train_cpu_recipe import main
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.datasets import shipped_path

    loaded = convert_prometheus(shipped_path("prometheus-absolute/vicuna_eval.json.gz"))
    train, test = loaded.records[:200], loaded.records[200:260]
    split = tmp_path / "split"
    split.mkdir()
    write_records(split / "train.jsonl", train, loaded.info)
    write_records(split / "test.jsonl", test, loaded.info)
    labels = [r.label["quality"] for r in test]
    good = [float(y) for y in labels]
    flat = [3.0 + 0.01 * (i % 5) for i in range(len(labels))]
    metrics = {"n": len(labels), "mae": 0.5, "ci": {}}
    recipe = {
        "dimension": "quality", "scale": [1, 5], "test_labels": labels, "rows_train": 200,
        "rows_val": 30, "rows_test": len(labels), "threads": 1,
        "rows": [{"name": "base (untrained)", "readout": "expected+cal", "metrics": metrics},
                 {"name": "sft+grpo", "readout": "expected+cal", "metrics": metrics}],
        "models": {"base (untrained)": {"predictions": {"expected+cal": flat}},
                   "sft+grpo": {"predictions": {"expected+cal": good}}},
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["--out", str(tmp_path), "--report-only", "--bootstrap", "200"]) == 0
    md = (tmp_path / "benchmark.md").read_text()
    assert ("- `sft+grpo [expected+cal]` beats `base [expected+cal]` on Spearman" in md)
    assert ("- `sft+grpo [expected+cal]` beats `base [expected+cal]` on MAE" in md)
    found = json.loads((tmp_path / "benchmark.json").read_text())["verdicts"]
    assert {v["baseline"] for v in found} == {"baseline: constant", "baseline: length",
                                              "base [expected+cal]"}
