"""The CPU backend for real: SFT then TRL GRPO on the default SmolLM2 model, a few steps.

Short synthetic prompts keep it to minutes on 2 cores. Checks: non-zero SFT loss, non-zero GRPO
gradients and changed weights after GRPO (vs the SFT model), the log/plot/folders, resuming from
the last checkpoint, and that the saved folder loads with transformers and is served by vllm-cpu.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.schema import DatasetInfo, PointwiseRecord
from judgeforge.train import TrainConfig

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

WORDS = ("useless", "weak", "fine", "good", "excellent")
OVERRIDES = [
    "sft.steps=3", "sft.batch_size=4", "sft.learning_rate=1e-4",
    "grpo.max_steps=2", "grpo.group_size=4", "grpo.train_batch_size=2",
    "grpo.micro_batch_size=8", "grpo.learning_rate=1e-5", "grpo.test_freq=1",
    "grpo.save_freq=1", "grpo.max_minutes=30", "cpu.eval_rows=6", "cpu.eval_batch_size=6",
]


def synthetic_records(n: int = 40) -> list[PointwiseRecord]:
    return [PointwiseRecord.model_validate({
        "input": [{"role": "user", "content": f"Name a colour ({i})."}],
        "output": {"content": f"Blue. This answer is {WORDS[i % 5]}.",
                   "label": {"helpfulness": i % 5}},
        "data_source": "synthetic", "id": str(i)}) for i in range(n)]


def _rows(path: Path, stage: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [r for r in rows if stage is None or r.get("stage") == stage]


def _run(out: Path, model_path: Path, extra: list[str] = ()) -> Any:
    from judgeforge.train.cpu import run_cpu

    cfg = TrainConfig.for_cpu().with_overrides(
        OVERRIDES + [f"output_dir={out}", f"model.path={model_path}", *extra])
    return run_cpu(cfg, train_records=synthetic_records(),
                   info=DatasetInfo(dimensions={"helpfulness": "0-4"}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Any:
    out = tmp_path_factory.mktemp("cpu-run")
    return _run(out, default_model_path)


def _tensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(next(path.glob("*.safetensors"))))


def test_sft_then_grpo_trains(trained: Any) -> None:
    sft = _rows(trained.log, "sft")
    assert len(sft) == 3 and all(r["loss"] > 0 for r in sft)
    grpo = _rows(trained.log, "grpo")
    assert [r["step"] for r in grpo] == [1, 2]
    for key in ("reward", "parse_rate", "accuracy", "mae", "kl", "entropy",
                "frac_reward_zero_std", "seconds_per_step"):
        assert all(key in r for r in grpo), key
    # The SFT warm-up makes the format appear, so rewards and gradients are not all zero.
    assert max(r["parse_rate"] for r in grpo) > 0
    assert max(r["reward"] for r in grpo) > 0
    assert max(r["grad_norm"] for r in grpo) > 0
    assert any(r["frac_reward_zero_std"] < 1 for r in grpo)
    sft_w, final_w = _tensors(trained.output_dir / "sft"), _tensors(trained.final)
    changed = [k for k in final_w if not (final_w[k] == sft_w[k]).all()]
    assert changed, "GRPO did not change any weight"
    evals = _rows(trained.log, "eval")
    assert [r["step"] for r in evals if not r.get("final")] == [0, 1, 2]
    assert trained.metrics["sft"]["parse_rate"] is not None
    assert trained.metrics["final"]["step"] == 2
    assert trained.curves and trained.curves.read_bytes()[:4] == b"\x89PNG"


def test_saved_folders_load_and_are_servable_shape(trained: Any) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    assert trained.best is not None and (trained.best / "config.json").is_file()
    for folder in (trained.final, trained.best):
        tok = AutoTokenizer.from_pretrained(str(folder))
        assert tok.eos_token == "<|im_end|>"
        assert tok.pad_token is not None and tok.pad_token != tok.eos_token
        assert tok.chat_template
        gen = GenerationConfig.from_pretrained(str(folder))
        assert gen.eos_token_id == tok.eos_token_id
        model = AutoModelForCausalLM.from_pretrained(str(folder))
        assert model.config.eos_token_id == tok.eos_token_id
        meta = json.loads((folder / "judgeforge-train.json").read_text())
        assert meta["dimension"] == "helpfulness" and meta["scale"] == [0, 4]


def test_final_calibration_is_fitted_on_what_the_saved_folder_computes(trained: Any) -> None:
    """The calibration in final/'s card was fitted on the expected scores of the in-memory model
    after GRPO; reloaded from disk, the folder must give the same scores (it did not while the
    model still carried accelerate's bf16 autocast wrapper: knots off by ~0.1)."""
    from judgeforge.card import JudgeCard
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.cpu.evaluate import expected_scores
    from judgeforge.train.cpu.weights import load_model

    cfg = TrainConfig.for_cpu().with_overrides(OVERRIDES)
    ds = load_dataset(cfg, train_records=synthetic_records(),
                      info=DatasetInfo(dimensions={"helpfulness": "0-4"}))
    card = JudgeCard.read(trained.final)
    assert card.calibration is not None
    model, tok = load_model(trained.final)
    raw = expected_scores(model, tok, ds.val, ds.scale, batch_size=cfg.cpu.eval_batch_size)
    assert min(raw) == pytest.approx(card.calibration.x[0], abs=1e-4)
    assert max(raw) == pytest.approx(card.calibration.x[-1], abs=1e-4)


def test_rerun_resumes_from_last_checkpoint(trained: Any, default_model_path: Path) -> None:
    before_sft = len(_rows(trained.log, "sft"))
    assert any(p.name.startswith("checkpoint-2") for p in (trained.output_dir / "grpo").iterdir())
    again = _run(trained.output_dir, default_model_path, ["grpo.max_steps=3"])
    assert len(_rows(again.log, "sft")) == before_sft  # the finished SFT stage is reused
    steps = [r["step"] for r in _rows(again.log, "grpo")]
    assert steps == [1, 2, 3]  # only step 3 is new: GRPO resumed from checkpoint-2
    assert again.metrics["final"]["step"] == 3


@pytest.mark.vllm
def test_trained_folder_is_served_by_vllm_cpu(trained: Any) -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    from openai import OpenAI

    from judgeforge.models.vllm_server import VLLMServer

    with VLLMServer(trained.final, kv_cache_gib=1, max_model_len=2048, enforce_eager=True,
                    dtype="bfloat16", startup_timeout=900.0) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="none", timeout=300.0)
        prompt = synthetic_records(1)[0]
        from judgeforge.prompt import PromptTemplate, build_record_messages

        msgs = build_record_messages(PromptTemplate(), prompt)
        out = client.chat.completions.create(model=srv.model_name, messages=msgs,
                                             max_tokens=10, temperature=0.0)
        text = out.choices[0].message.content
        assert isinstance(text, str) and text
        assert out.choices[0].finish_reason in ("stop", "length")
