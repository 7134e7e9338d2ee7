"""The CPU recipe's pieces on the real Prometheus files: the GPT-4 feedback kept by the converter,
reason SFT targets, the question-level split of the recipe benchmark, the base-model registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeforge.data.converters.prometheus import convert_prometheus
from judgeforge.errors import ConfigError

DATA = Path(__file__).resolve().parents[2] / "shared/data/prometheus-absolute"


def _records(name: str = "vicuna_eval.json") -> list:
    path = DATA / name
    if not path.exists():
        from judgeforge.datasets import shipped_path

        path = Path(shipped_path(f"prometheus-absolute/{name}.gz"))
    return convert_prometheus(path).records


def test_converter_keeps_the_feedback_closest_to_the_label() -> None:
    raw = json.loads((DATA / "vicuna_eval.json").read_text()) if (DATA / "vicuna_eval.json"
                                                                   ).exists() else None
    records = _records()
    assert all(isinstance(r.extra_info.get("feedback"), str) and r.extra_info["feedback"]
               for r in records)
    if raw is None:
        pytest.skip("raw file not available to cross-check")
    for rec, row in zip(records, raw):
        scores = rec.extra_info["gpt4_scores"]
        label = rec.label["quality"]
        best = min(abs(s - label) for s in scores)
        chosen = [f.strip() for f, s in zip(row["gpt4_feedback"], scores)
                  if abs(s - label) == best]
        assert rec.extra_info["feedback"] == chosen[0]


def test_short_reason_keeps_whole_sentences_within_the_limit() -> None:
    from judgeforge.train.cpu.sft import short_reason

    text = "First point here.  Second one\nfollows! Third sentence is long enough to overflow."
    assert short_reason(text, 40) == "First point here. Second one follows!"
    assert short_reason(text, 20) == "First point here."
    cut = short_reason("A single sentence that goes on and on without a stop", 20)
    assert cut.endswith("...") and len(cut) <= 23 and " " in cut


def test_reason_targets_put_the_feedback_before_the_score() -> None:
    from judgeforge.train import TrainConfig
    from judgeforge.train.cpu.data import make_rows
    from judgeforge.train.cpu.sft import _batches, reason_completion

    records = _records()[:12]
    cfg = TrainConfig.from_yaml("cpu", ["sft.target=reason", "sft.steps=2", "sft.batch_size=4",
                                        "sft.balance_labels=false"], backend="cpu")
    rows = make_rows(records, cfg, "quality", convert_prometheus.__globals__["PROMETHEUS_SCALE"])
    batch = _batches(rows, cfg)[0]
    for row in batch:
        reason, _, tag = row["completion"].rpartition("\n")
        assert tag == f"<score>{row['label']}</score>"
        assert 0 < len(reason) <= cfg.sft.reason_chars + 3
    plain = dict(rows[0], extra_info={})
    assert reason_completion(plain, 200, False) == rows[0]["completion"]
    think = reason_completion(rows[0], 200, True)
    assert think.startswith("<think>") and think.endswith(f"</think>\n{rows[0]['completion']}")


def test_recipe_split_keeps_every_question_on_one_side() -> None:
    from judgeforge.train.recipe import default_data_dir, split_prometheus

    train, val, test, _ = split_prometheus(default_data_dir(), 128, 96, 0)
    assert (len(train), len(val), len(test)) == (416, 96, 128)
    ids = [{r.extra_info["idx"] for r in part} for part in (train, val, test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == 160


def test_model_registry_names_both_models_and_rejects_others() -> None:
    from judgeforge.models.default_model import MODELS, model_names, prepare_model

    assert model_names()[0] == "smollm2-135m-instruct" and "gemma3-270m" in model_names()
    assert "Gemma Terms of Use" in (MODELS["gemma3-270m"].terms or "")
    with pytest.raises(ConfigError, match="unknown model"):
        prepare_model("no-such-model")
    # "default" (the spelling --model uses) and no name are the default judge's folder
    assert prepare_model("default") == prepare_model(None) == prepare_model(model_names()[0])


def test_gemma_chat_template_starts_with_bos_and_opens_the_model_turn() -> None:
    jinja2 = pytest.importorskip("jinja2")
    from judgeforge.models.default_model import GEMMA_CHAT_TEMPLATE

    text = jinja2.Environment().from_string(GEMMA_CHAT_TEMPLATE).render(
        bos_token="<bos>", add_generation_prompt=True,
        messages=[{"role": "user", "content": "Rate this."},
                  {"role": "assistant", "content": "<score>3</score>"},
                  {"role": "user", "content": "Again"}])
    assert text == ("<bos><start_of_turn>user\nRate this.<end_of_turn>\n<start_of_turn>model\n"
                    "<score>3</score><end_of_turn>\n<start_of_turn>user\nAgain<end_of_turn>\n"
                    "<start_of_turn>model\n")


def test_recipe_reads_an_sft_only_run_once(tmp_path: Path) -> None:
    from judgeforge.train.cpu.export import TRAIN_MARKER
    from judgeforge.train.recipe import trained_folders

    for name, step in (("sft", None), ("final", 0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / TRAIN_MARKER).write_text(json.dumps({"stage": name, "step": step}))
    # grpo.max_steps=0: final/ holds the SFT weights, so only sft/ is evaluated
    assert [f[1].name for f in trained_folders(tmp_path, 35, 5.0, 0.0)] == ["sft"]
    (tmp_path / "final" / TRAIN_MARKER).write_text(json.dumps({"stage": "final", "step": 16}))
    found = trained_folders(tmp_path, 35, 5.0, 9.0)
    assert [(f[1].name, f[2]) for f in found] == [("sft", 35), ("final", 51)]
