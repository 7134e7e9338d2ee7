"""verl's reward managers score pairwise training rows (issue 24) with judgeforge's functions:
the configured ``compute_score`` on each row's verdict, and verl's batch manager with
``compute_score_batch`` paying J1's both-orders credit across the two orders of a pair."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judgeforge.data import PairwiseRecord
from judgeforge.train.config import TrainConfig
from judgeforge.train.pairwise_rows import build_pairwise_rows
from judgeforge.train.reward import REWARD_KEYS, compute_score, compute_score_batch
from judgeforge.train.verl.overrides import build_overrides

pytest.importorskip("verl", reason="the verl tests run in .venv-verl")
import torch

A, B, TIE = "<verdict>A</verdict>", "<verdict>B</verdict>", "<verdict>TIE</verdict>"
# p1 (gold a): right in both orders; p2 (gold b): "A" in both orders (position bias);
# p3 (gold tie): a near miss, then no verdict at all
TEXTS = [A, "Response B misses Paris.\n" + B, A, A, "<verdict>A</verdict>", "I cannot decide."]


def _rows() -> list[dict[str, Any]]:
    base = {"input": [{"role": "user", "content": "Capital of France?"}],
            "data_source": "unit"}
    records = [
        PairwiseRecord.model_validate({**base, "response_a": "Paris", "response_b": "Rome",
                                       "preference": "a", "id": "p1"}),
        PairwiseRecord.model_validate({**base, "response_a": "Rome", "response_b": "Paris",
                                       "preference": "b", "id": "p2"}),
        PairwiseRecord.model_validate({**base, "response_a": "Paris.", "response_b": "Paris",
                                       "preference": "tie", "id": "p3"}),
    ]
    return [r.verl_row() for r in build_pairwise_rows(records)]


def _data_proto(tokenizer: Any, rows: list[dict[str, Any]]) -> Any:
    from verl import DataProto

    pad = tokenizer.pad_token_id
    prompts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True,
                                             tokenize=True, return_dict=False) for r in rows]
    answers = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
               for t in TEXTS]
    p_len, r_len = max(map(len, prompts)), max(map(len, answers)) + 2
    prompt_ids = torch.full((len(rows), p_len), pad)
    response_ids = torch.full((len(rows), r_len), pad)
    mask = torch.zeros((len(rows), p_len + r_len), dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        prompt_ids[i, p_len - len(p):] = torch.tensor(p)
        response_ids[i, :len(a)] = torch.tensor(a)
        mask[i, p_len - len(p):p_len + len(a)] = 1
    tensors = {"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask,
               "input_ids": torch.cat([prompt_ids, response_ids], dim=1)}
    non_tensors = {key: np.array([r[key] for r in rows], dtype=object)
                   for key in ("data_source", "reward_model", "extra_info")}
    return DataProto.from_single_dict({**tensors, **non_tensors})


def test_configured_compute_score_reads_the_verdict(compose: Callable[[list[str]], Any],
                                                    model_dir: Path, tmp_path: Path) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = TrainConfig.for_gpu().with_overrides(["data.train_files=[unused.parquet]"])
    vc = compose(build_overrides(cfg, model_path=str(model_dir), experiment_name="t",
                                 output_dir=str(tmp_path)))
    fn = get_custom_reward_fn(vc)
    assert fn is not None
    rows = _rows()
    got = [fn(data_source=r["data_source"], solution_str=t,
              ground_truth=r["reward_model"]["ground_truth"], extra_info=r["extra_info"])
           for r, t in zip(rows, TEXTS)]
    assert all(set(g) == set(REWARD_KEYS) for g in got)
    assert [g["score"] for g in got] == [1.0, 1.0, 0.0, 1.0, 0.5, 0.0]
    assert [g["parsed"] for g in got] == [1.0] * 5 + [0.0]  # no verdict: a failure, no winner


def test_batch_manager_pays_both_orders_credit(tokenizer: Any) -> None:
    from verl.workers.reward_manager.batch import BatchRewardManager

    rows = _rows()
    data = _data_proto(tokenizer, rows)
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=compute_score_batch)
    out = manager(data, return_dict=True)
    p_len = data.batch["prompts"].shape[1]
    last = data.batch["attention_mask"][:, p_len:].sum(dim=1) - 1
    paid = [out["reward_tensor"][i, last[i]].item() for i in range(len(rows))]
    # p1 right twice: 1, 1; p2 biased (right once, wrong once): 0, 0; p3 failure in one order: 0
    assert paid == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert [out["reward_tensor"][i].sum().item() for i in range(len(rows))] == paid
    per_row = [compute_score(r["data_source"], t, r["reward_model"]["ground_truth"],
                             r["extra_info"])["score"] for r, t in zip(rows, TEXTS)]
    assert per_row == [1.0, 1.0, 0.0, 1.0, 0.5, 0.0]  # what the naive manager would pay
    assert set(out["reward_extra_info"]) == set(REWARD_KEYS)
