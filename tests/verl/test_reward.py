"""verl's reward wiring scores real tokenised responses exactly like ``compute_score``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from judgeforge.train.config import TrainConfig
from judgeforge.train.reward import REWARD_KEYS, compute_score
from judgeforge.train.verl.overrides import build_overrides

pytest.importorskip("verl", reason="the verl tests run in .venv-verl")
import torch

# What judges really write: right, wrong, reasoned, off-scale, unparsable.
RESPONSES = [
    "<score>4</score>",
    "The response answers the question but misses the word limit.\n<score>2</score>",
    "Your response is not helpful. Your response is not helpful.",
    "<think>The limerick ignores the rubric.</think>\n<score>1</score>",
    "<score>7</score>",
    "<score>3.5</score>",
    "Feedback: solid. [RESULT] 5",
    "<score>5</score><score>3</score>",
]


@pytest.fixture(scope="module")
def setup(compose: Callable[[list[str]], Any], model_dir: Path, tokenizer: Any,
          mt_bench_parquet: Path,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(verl config, DataProto of 8 real prompts + tokenised responses, the dataset rows)."""
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.dataset.rl_dataset import collate_fn

    from verl import DataProto

    cfg = TrainConfig.for_gpu().with_overrides([f"data.train_files=[{mt_bench_parquet}]"])
    out = str(tmp_path_factory.mktemp("run"))  # the training dataset writes the judge card there
    vc = compose(build_overrides(cfg, model_path=str(model_dir), experiment_name="t",
                                 output_dir=out))
    ds = create_rl_dataset(vc.data.train_files, vc.data, tokenizer, None)
    rows = [ds[i] for i in range(len(RESPONSES))]
    batch = collate_fn(copy.deepcopy(rows))

    pad = tokenizer.pad_token_id
    prompts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True,
                                             tokenize=True, return_dict=False) for r in rows]
    answers = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
               for t in RESPONSES]
    p_len, r_len = max(map(len, prompts)), max(map(len, answers)) + 3
    prompt_ids = torch.full((len(rows), p_len), pad)
    response_ids = torch.full((len(rows), r_len), pad)
    mask = torch.zeros((len(rows), p_len + r_len), dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        prompt_ids[i, p_len - len(p):] = torch.tensor(p)  # left-padded prompt
        response_ids[i, :len(a)] = torch.tensor(a)  # right-padded response
        mask[i, p_len - len(p):p_len + len(a)] = 1
    tensors = {"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask,
               "input_ids": torch.cat([prompt_ids, response_ids], dim=1)}
    non_tensors = {k: v for k, v in batch.items() if not isinstance(v, torch.Tensor)}
    data = DataProto.from_single_dict({**tensors, **non_tensors})
    return vc, data, rows


def _expected(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [compute_score(r["data_source"], text, r["reward_model"]["ground_truth"],
                          r["extra_info"]) for r, text in zip(rows, RESPONSES)]


def test_custom_reward_fn_is_compute_score(setup: tuple[Any, Any, list[dict[str, Any]]]) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    vc, _, rows = setup
    fn = get_custom_reward_fn(vc)
    assert fn is not None
    r = rows[0]
    assert fn(data_source=r["data_source"], solution_str=RESPONSES[0],
              ground_truth=r["reward_model"]["ground_truth"],
              extra_info=r["extra_info"]) == _expected(rows)[0]


async def test_naive_reward_manager_matches(setup: tuple[Any, Any, list[dict[str, Any]]],
                                            tokenizer: Any) -> None:
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import load_reward_manager

    vc, data, rows = setup
    manager = load_reward_manager(vc, tokenizer)
    assert isinstance(manager, NaiveRewardManager)
    outs = [await manager.run_single(data[i:i + 1]) for i in range(len(data))]
    expected = _expected(rows)
    assert [o["reward_score"] for o in outs] == [e["score"] for e in expected]
    assert [o["reward_extra_info"] for o in outs] == expected
    assert all(set(o["reward_extra_info"]) == set(REWARD_KEYS) for o in outs)
    # sanity on the real outputs: right, wrong, unparsed, reasoned, out of range, not integer
    parsed = [e["parsed"] for e in expected]
    assert parsed[:4] == [1.0, 1.0, 0.0, 1.0] and parsed[4:6] == [0.0, 0.0]

    rm = manager.assemble_rm_scores(data, [o["reward_score"] for o in outs])
    p_len = data.batch["prompts"].shape[1]
    last = data.batch["attention_mask"][:, p_len:].sum(dim=1) - 1
    for i, e in enumerate(expected):
        assert rm[i, last[i]].item() == pytest.approx(e["score"])
        assert rm[i].sum().item() == pytest.approx(e["score"])


async def test_reward_loop_worker_matches(setup: tuple[Any, Any, list[dict[str, Any]]]) -> None:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    vc, data, rows = setup
    worker = RewardLoopWorker(vc, None)
    outs = await worker.compute_score_batch(data)
    assert [o["reward_score"] for o in outs] == [e["score"] for e in _expected(rows)]
