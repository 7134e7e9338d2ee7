"""The pairwise reward (issue 24): verdict against gold, ties, J1's both-orders credit, parse
failures at the minimum, and the same path through compute_score for pairwise training rows."""

from __future__ import annotations

import pytest

from judgeforge.data import PairwiseRecord
from judgeforge.errors import ConfigError, DataError
from judgeforge.pairwise_prompt import PairwisePromptTemplate, parse_verdict
from judgeforge.pairwise_reward import (
    PairwiseReward,
    both_orders_reward,
    check_verdict,
    pairwise_reward,
)
from judgeforge.train.pairwise_rows import (
    VERDICT_CODES,
    build_pairwise_rows,
    is_pairwise_row,
)
from judgeforge.train.reward import REWARD_KEYS, compute_score, compute_score_batch

A, B, TIE = "<verdict>A</verdict>", "<verdict>B</verdict>", "<verdict>TIE</verdict>"


def test_verdict_reward_table() -> None:
    table = {("a", "a"): 1.0, ("b", "a"): 0.0, ("tie", "a"): 0.5, ("a", "tie"): 0.5,
             ("tie", "tie"): 1.0, (None, "a"): 0.0, (None, "tie"): 0.0, ("B", " A "): 0.0}
    for (pred, gold), want in table.items():
        assert pairwise_reward(pred, gold) == want, (pred, gold)
    strict = PairwiseReward(tie_credit=0.0, min_reward=-1.0)
    assert strict(None, "b") == -1.0 and strict("tie", "b") == 0.0


@pytest.mark.parametrize("kw", [{"tie_credit": 1.5}, {"min_reward": 0.1}, {"wrong": 0.6},
                                {"correct": float("nan")}, {"tie_credit": True}])
def test_a_failure_can_never_beat_an_answer(kw: dict) -> None:
    with pytest.raises(ConfigError):
        PairwiseReward(**kw)


@pytest.mark.parametrize("bad", ["c", "", None, 1, "A wins"])
def test_bad_gold_is_a_data_error(bad: object) -> None:
    with pytest.raises(DataError, match="true verdict"):
        pairwise_reward("a", bad)  # type: ignore[arg-type]
    assert check_verdict(" TIE ") == "tie"


def test_both_orders_credit_needs_both_right() -> None:
    # gold "a": the swapped pair's gold is "b"
    assert both_orders_reward("a", "b", "a") == 1.0          # right in both orders
    assert both_orders_reward("a", "a", "a") == 0.0          # position bias: always "a"
    assert both_orders_reward("b", "a", "a") == 0.0          # consistently wrong
    assert both_orders_reward("a", None, "a") == 0.0         # a parse failure in one order
    assert both_orders_reward("a", "tie", "a") == 0.5        # right, then a near miss
    assert both_orders_reward("tie", "tie", "tie") == 1.0
    assert both_orders_reward("a", "a", "a", mode="mean") == 0.5
    assert both_orders_reward("a", "b", "a", mode="mean") == 1.0
    with pytest.raises(ConfigError):
        both_orders_reward("a", "b", "a", mode="max")  # type: ignore[arg-type]


def _records() -> list[PairwiseRecord]:
    base = {"input": [{"role": "user", "content": "Capital of France?"}], "data_source": "unit"}
    return [PairwiseRecord.model_validate({**base, "response_a": "Paris", "response_b": "Rome",
                                           "preference": "a", "id": "p1"}),
            PairwiseRecord.model_validate({**base, "response_a": "Lyon", "response_b": "Lyon.",
                                           "preference": "tie", "id": "p2"})]


def test_rows_both_orders_with_the_graders_prompt() -> None:
    template = PairwisePromptTemplate()
    rows = build_pairwise_rows(_records(), template)
    assert [r.id for r in rows] == ["p1:ab", "p1:ba", "p2:ab", "p2:ba"]
    assert [r.verdict for r in rows] == ["a", "b", "tie", "tie"]
    assert rows[0].prompt == template.record_messages(_records()[0])
    assert rows[1].prompt == template.record_messages(_records()[0].swapped())
    assert rows[0].prompt != rows[1].prompt
    cpu = rows[1].cpu_row()
    assert cpu["completion"] == B and cpu["label"] == VERDICT_CODES["b"]
    assert cpu["ground_truth"] == "b" and is_pairwise_row(cpu["extra_info"])
    assert parse_verdict(cpu["completion"]).preference == "b"  # type: ignore[union-attr]
    verl = rows[0].verl_row()
    assert verl["reward_model"]["ground_truth"] == "a"
    assert not is_pairwise_row({"judgeforge": {"dimensions": {"q": [1, 5]}}})
    assert len(build_pairwise_rows(_records(), both_orders=False)) == 2
    twice = _records() + [_records()[0]]
    with pytest.raises(DataError, match="row 2: id: 'p1' repeats"):
        build_pairwise_rows(twice)
    with pytest.raises(ConfigError):
        build_pairwise_rows(_records(), tie_credit=2.0)


def test_compute_score_scores_pairwise_rows_on_their_verdict() -> None:
    rows = [r.cpu_row() for r in build_pairwise_rows(_records())]
    ab = rows[0]
    right = compute_score(ab["data_source"], "Paris is right.\n" + A, ab["ground_truth"],
                          ab["extra_info"])
    assert set(right) == set(REWARD_KEYS)
    assert right["score"] == 1.0 and right["accuracy"] == 1.0 and right["parsed"] == 1.0
    wrong = compute_score("unit", B, "a", ab["extra_info"])
    assert wrong["score"] == 0.0 and wrong["within1"] == 0.0
    near = compute_score("unit", TIE, "a", ab["extra_info"])
    assert near["score"] == 0.5 and near["within1"] == 1.0
    for text in ("A is better", "<verdict>C</verdict>", "<score>5</score>", ""):
        failed = compute_score("unit", text, "a", ab["extra_info"])
        assert failed["score"] == 0.0 and failed["parsed"] == 0.0, text
    assert compute_score("unit", TIE, "a", ab["extra_info"], tie_credit=0.25)["score"] == 0.25
    with pytest.raises(DataError, match="ground_truth"):
        compute_score("unit", A, 3, ab["extra_info"])
    # a pointwise row still takes the pointwise path
    point = compute_score("unit", "<score>4</score>", 4,
                          {"judgeforge": {"dimensions": {"quality": [1, 5]}}})
    assert point["score"] == 1.0


def test_compute_score_batch_pays_j1_credit_across_orders() -> None:
    rows = [r.cpu_row() for r in build_pairwise_rows(_records())]
    # p1 (gold a): consistent+right; p2 (gold tie): position-biased "A" in both orders
    texts = [A, B, A, A]
    got = compute_score_batch([r["data_source"] for r in rows], texts,
                              [r["ground_truth"] for r in rows], [r["extra_info"] for r in rows])
    assert [g["score"] for g in got] == [1.0, 1.0, 0.5, 0.5]
    biased = compute_score_batch(["u"] * 2, [A, A], ["a", "b"],
                                 [rows[0]["extra_info"], rows[1]["extra_info"]])
    assert [g["score"] for g in biased] == [0.0, 0.0]  # right once, wrong once: no credit
    single = [compute_score("u", A, "a", rows[0]["extra_info"])["score"]]
    alone = compute_score_batch(["u"], [A], ["a"], [rows[0]["extra_info"]])
    assert [g["score"] for g in alone] == single  # no partner in the batch: its own score
    mean = build_pairwise_rows(_records()[:1], consistency="mean")
    infos = [r.cpu_row()["extra_info"] for r in mean]
    assert [g["score"] for g in compute_score_batch(["u"] * 2, [A, A], ["a", "b"], infos)] \
        == [0.5, 0.5]


def test_pairwise_preset_loads_and_trains_on_derived_pairs() -> None:
    from judgeforge.train import TrainConfig
    from judgeforge.train.presets import preset_names, preset_path

    assert "cpu-pairwise" in preset_names()
    cfg = TrainConfig.from_yaml(preset_path("cpu-pairwise"))
    assert cfg.data.train_files == ["data/prometheus-pairs/train.parquet"]
    assert cfg.data.group_key == "group"
    text = preset_path("cpu-pairwise").read_text()
    assert "pairs-from-pointwise data/prometheus/train.parquet" in text
    for benchmark in ("pandalm", "hhh"):
        assert benchmark not in " ".join(cfg.data.train_files + cfg.data.val_files).lower()
