"""verl's ``create_rl_dataset`` builds the project's dataset class from real Parquet files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgeforge.data.digest import DIGEST_KEY
from judgeforge.data.io import INFO_KEY, load_records
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, DataError
from judgeforge.prompt import PromptTemplate, query_of
from judgeforge.train.config import TrainConfig
from judgeforge.train.verl.overrides import build_overrides
from tests.parity_cases import parity_cases, prompt_overrides, trainer_messages

pytest.importorskip("verl", reason="the verl tests run in .venv-verl")


@pytest.fixture()
def build(compose: Callable[[list[str]], Any], model_dir: Path, tokenizer: Any,
          tmp_path: Path) -> Callable[..., tuple[Any, Any]]:
    """``build(train, val=None, *overrides)`` -> (verl config, train dataset); the run's output
    folder (where the judge card goes) is ``tmp_path / "run"``."""
    from verl.trainer.ppo.utils import create_rl_dataset

    def run(train: Path, *overrides: str, val: Path | None = None) -> tuple[Any, Any]:
        cfg = TrainConfig.for_gpu().with_overrides(
            [f"data.train_files=[{train}]", f"data.val_files=[{val or train}]",
             f"output_dir={tmp_path / 'run'}", *overrides])
        vc = compose(build_overrides(cfg, model_path=str(model_dir), experiment_name="t"))
        ds = create_rl_dataset(vc.data.train_files, vc.data, tokenizer, None, is_train=True,
                               max_samples=vc.data.train_max_samples)
        return vc, ds

    return run


def test_every_real_row_is_kept(build: Callable[..., tuple[Any, Any]], mt_bench_parquet: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.utils.dataset.rl_dataset import collate_fn

    from judgeforge.train.verl.dataset import PointwiseJudgeDataset

    records = load_records(mt_bench_parquet).records
    vc, ds = build(mt_bench_parquet)
    assert isinstance(ds, PointwiseJudgeDataset)
    assert len(ds) == len(records) == 320
    assert "over the limit: 0" in capsys.readouterr().out

    template = PromptTemplate(dimensions={"quality": load_records(mt_bench_parquet).info
                                          .dimensions["quality"]})
    for i in (0, 57, 319):
        row, rec = ds[i], records[i]
        assert row["prompt"] == row["raw_prompt"]
        expected = template.build(query_of([m.model_dump() for m in rec.input]), rec.response,
                                  rubric=rec.extra_info["rubric"],
                                  reference=rec.extra_info["reference"])
        assert row["prompt"] == expected
        assert row["data_source"] == rec.data_source == "prometheus/mt_bench"
        assert row["reward_model"]["ground_truth"] == {"quality": rec.label["quality"]}
        judge = row["extra_info"]["judgeforge"]
        assert judge == {"dimensions": {"quality": [1, 5]}, "reward": "exp_decay", "k": 2.0}
        assert row["extra_info"]["id"] == rec.id and row["index"] == i

    loader = StatefulDataLoader(ds, batch_size=8, collate_fn=collate_fn)
    batch = next(iter(loader))
    assert len(batch["raw_prompt"]) == 8 and batch["reward_model"][0]["ground_truth"]


def test_several_dimensions_and_one_chosen(build: Callable[..., tuple[Any, Any]],
                                           helpsteer_parquet: Path) -> None:
    records = load_records(helpsteer_parquet).records
    _, ds = build(helpsteer_parquet)
    assert len(ds) == 8
    text = ds[0]["prompt"][-1]["content"]
    assert "<helpfulness>X</helpfulness>" in text and "<verbosity>X</verbosity>" in text
    assert ds[3]["reward_model"]["ground_truth"] == records[3].label
    assert set(ds[0]["extra_info"]["judgeforge"]["dimensions"]) == set(records[0].label)

    _, one = build(helpsteer_parquet, "data.dimension=correctness", "reward.name=quadratic",
                   "prompt.system_prompt=You are a strict judge.")
    row = one[5]
    assert row["prompt"][0] == {"role": "system", "content": "You are a strict judge."}
    assert "<score>X</score>" in row["prompt"][-1]["content"]
    assert row["reward_model"]["ground_truth"] == {"correctness": records[5].label["correctness"]}
    assert row["extra_info"]["judgeforge"]["reward"] == "quadratic"

    with pytest.raises(ConfigError, match="not in the data"):
        build(helpsteer_parquet, "data.dimension=harmlessness")


def test_long_prompts_are_reported_not_dropped(build: Callable[..., tuple[Any, Any]],
                                               mt_bench_parquet: Path, tokenizer: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, full = build(mt_bench_parquet)
    lengths = [len(tokenizer.apply_chat_template(full[i]["prompt"], add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))
               for i in range(len(full))]
    limit = 1000
    n_long = sum(n > limit for n in lengths)
    assert 0 < n_long < len(lengths)

    with pytest.raises(DataError, match=rf"{n_long} of 320 prompts are longer than "
                                        rf"data.max_prompt_length={limit}"):
        build(mt_bench_parquet, f"grpo.max_prompt_length={limit}")

    _, kept = build(mt_bench_parquet, f"grpo.max_prompt_length={limit}",
                    "verl.extra_overrides=[data.filter_overlong_prompts=true]")
    assert len(kept) == len(lengths) - n_long
    assert f"dropped {n_long} over-long rows" in capsys.readouterr().out


def test_invalid_rows_fail_loudly(build: Callable[..., tuple[Any, Any]],
                                  mt_bench_parquet: Path, tmp_path: Path) -> None:
    table = pq.read_table(mt_bench_parquet)
    rows = table.to_pylist()
    rows[7]["output"]["label"]["quality"] = 9  # outside 1-5
    bad = tmp_path / "bad.parquet"
    # a file edited outside judgeforge: its dataset info kept, the records digest dropped (a file
    # that still carried judgeforge's digest would be refused as changed before any row is read)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != DIGEST_KEY}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema.with_metadata(meta)), bad)
    assert INFO_KEY in pq.read_schema(bad).metadata
    with pytest.raises(DataError, match="row 7"):
        build(bad)


def test_row_cap_and_label_balance(build: Callable[..., tuple[Any, Any]], mt_bench_parquet: Path,
                                   helpsteer_parquet: Path) -> None:
    _, capped = build(mt_bench_parquet, "data.max_train_rows=50")
    assert len(capped) == 50

    labels = Counter(r.label["quality"] for r in load_records(mt_bench_parquet).records)
    _, balanced = build(mt_bench_parquet, "data.balance_labels=true", val=helpsteer_parquet)
    counts = Counter(balanced[i]["reward_model"]["ground_truth"]["quality"]
                     for i in range(len(balanced)))
    assert counts == {label: max(labels.values()) for label in labels}


def test_prompt_length_limits_reach_the_verl_rows(build: Callable[..., tuple[Any, Any]],
                                                  mt_bench_parquet: Path) -> None:
    records = load_records(mt_bench_parquet).records
    _, ds = build(mt_bench_parquet, "prompt.max_response_chars=60", "prompt.max_query_chars=90",
                  "prompt.use_rubric=false", "prompt.use_reference=false")
    assert len(ds) == len(records)
    body = ds[0]["prompt"][-1]["content"]
    response = body.split("<response>\n", 1)[1].split("\n</response>", 1)[0]
    omitted = len(records[0].response) - 60
    assert f"[... {omitted} characters omitted ...]" in response
    assert "<rubric>" not in body and "<reference>" not in body


CASES = parity_cases()


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_verl_rows_are_the_cpu_trainers_messages_and_tokens(
        case: int, build: Callable[..., tuple[Any, Any]], tmp_path: Path,
        tokenizer: Any) -> None:
    """The parity cases of ``tests/test_prompt_parity.py`` (where every grading surface is
    compared with the trainers): verl's rows carry the CPU trainer's messages, and verl's
    tokenisation of them is the chat template's."""
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import DatasetInfo

    name, records, template = CASES[case]
    path = write_records(tmp_path / "case.parquet", records,
                         DatasetInfo(dimensions=dict(template.dimensions)))
    _, ds = build(path, *prompt_overrides(template))
    expected = trainer_messages(records, template)
    assert len(ds) == len(expected)
    for i, messages in enumerate(expected):
        row = ds[i]
        assert row["raw_prompt"] == messages, (name, i)
        ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))
        assert ds.prompt_lengths(ds.dataframe.select([i]))[0] == len(ids)
        if "input_ids" in row:  # verl versions that tokenise in __getitem__
            kept = row["input_ids"][row["attention_mask"].bool()].tolist()
            assert kept == ids, (name, i)


def test_training_dataset_writes_the_judge_card(build: Callable[..., tuple[Any, Any]],
                                                mt_bench_parquet: Path, tmp_path: Path,
                                                model_dir: Path) -> None:
    from judgeforge.card import JudgeCard, data_fingerprint

    build(mt_bench_parquet, "prompt.max_response_chars=300", "prompt.use_reference=false")
    card = JudgeCard.read(tmp_path / "run")
    assert card is not None
    template = card.template()
    assert dict(template.dimensions) == {"quality": Scale(min=1, max=5)}
    assert template.max_response_chars == 300 and not template.use_reference
    assert card.base_model == str(model_dir)
    assert card.data_fingerprint == data_fingerprint(load_records(mt_bench_parquet).records)
