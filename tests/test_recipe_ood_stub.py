"""The recipe benchmark's out-of-domain pieces on a stub suite report (no model, no grading):
which folder is graded, which base model goes beside it, and the table's rows."""

from __future__ import annotations

from pathlib import Path

from judgeforge.benchmarks.train_cpu_recipe import base_model, judge_folder, ood_table
from judgeforge.card import JudgeCard
from judgeforge.data.schema import Scale


def _entry(label: str, mae: float, rho: float | None) -> dict:
    return {"label": label, "n": 60, "n_parsed": 60, "parse_failure_rate": 0.0, "mae": mae,
            "spearman": rho, "ci": {"mae": [mae - 0.1, mae + 0.1]}}


def test_stub_ood_table_lists_judges_baselines_anchors_and_only_the_asked_sets() -> None:
    def one(name: str) -> dict:
        return {"name": name, "scale": [1, 5], "mode": "expected", "rows_graded": 60,
                "judges": [_entry("base", 1.2, 0.1), _entry("trained", 0.8, 0.3)],
                "baselines": [_entry("baseline: constant", 0.7, None),
                              _entry("baseline: length", 0.5, 0.6)],
                "anchors": [{"judge": "gpt-4o", "n": 420, "spearman": 0.56},
                            {"judge": "other", "n": 420, "spearman": 0.1}],
                "ceiling": {"rows": 60, "spearman": 0.2}}

    report = {"suite": {"headline_anchors": ["gpt-4o"]},
              "sets": [one("newsroom-relevance"), one("roscoe-gsm8k")]}
    table = ood_table(report, ["newsroom-relevance"])
    lines = table.splitlines()
    assert "roscoe-gsm8k" not in table
    assert sum("| trained |" in x for x in lines) == 1 and "0.800 [0.70, 0.90]" in table
    assert "baseline: length" in table and "gpt-4o (published, 420 rows)" in table
    assert "other (published" not in table  # only the suite's headline anchors
    assert "human (leave-one-rater-out)" in table
    assert len(ood_table(report).splitlines()) == 2 * (len(lines) - 2) + 2


def test_stub_folders_final_before_sft_and_the_cards_base_model(tmp_path: Path) -> None:
    assert judge_folder(tmp_path) is None
    for name in ("sft", "final"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    assert judge_folder(tmp_path) == tmp_path / "final"
    assert base_model(tmp_path / "final") == "default"  # no card

    def card(base: str) -> None:
        JudgeCard(dimensions={"quality": Scale(min=1, max=5)}, base_model=base).write(
            tmp_path / "final")

    card(str(tmp_path / "sft"))
    assert base_model(tmp_path / "final") == str(tmp_path / "sft")
    card("/nope")
    assert base_model(tmp_path / "final") == "default"
