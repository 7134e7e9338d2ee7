"""Real FSDP checkpoints (CPU, gloo, 2 ranks) -> verl's model merger -> loadable HF folders."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from judgeforge.train.config import TrainConfig
from judgeforge.train.verl.checkpoints import MERGE_MARKER, latest_checkpoint, merge_checkpoint
from judgeforge.train.verl.launch import launch
from judgeforge.train.verl.servable import resolve_servable

pytest.importorskip("verl", reason="the verl tests run in .venv-verl")
import torch

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """A run folder with global_step_1 and global_step_2 written by 2 FSDP2 ranks over gloo."""
    run = tmp_path_factory.mktemp("verl_run")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([str(torchrun), "--nproc_per_node=2", f"--master_port={_free_port()}",
                           str(HERE / "fsdp_checkpoint_writer.py"), str(run), str(model_dir)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run


@pytest.fixture()
def run_copy(fsdp_run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(fsdp_run, dest, ignore=shutil.ignore_patterns("optim_*"))
    return dest


def _assert_matches_reference(hf_dir: Path, reference: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir))
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    ref = torch.load(reference, map_location="cpu", weights_only=True)
    got = model.state_dict()
    for name, tensor in ref.items():
        assert torch.equal(got[name].to(torch.bfloat16), tensor.to(torch.bfloat16)), name
    assert model.config.tie_word_embeddings
    inputs = tok("<score>", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]  # it generated


def test_latest_checkpoint(run_copy: Path) -> None:
    assert latest_checkpoint(run_copy) == run_copy / "global_step_2" / "actor"
    (run_copy / "latest_checkpointed_iteration.txt").write_text("1")
    assert latest_checkpoint(run_copy) == run_copy / "global_step_1" / "actor"
    (run_copy / "latest_checkpointed_iteration.txt").unlink()
    shutil.rmtree(run_copy / "global_step_2" / "actor" / "huggingface")
    (run_copy / "global_step_2" / "actor" / "fsdp_config.json").unlink()  # half-written step
    assert latest_checkpoint(run_copy) == run_copy / "global_step_1" / "actor"
    assert latest_checkpoint(run_copy / "global_step_1") is None


def test_resolve_servable_merges_once(run_copy: Path) -> None:
    from judgeforge.card import JudgeCard
    from judgeforge.data.schema import Scale
    from judgeforge.prompt import PromptTemplate

    trained = PromptTemplate({"quality": Scale(min=1, max=5)}, max_response_chars=300)
    JudgeCard.from_template(trained, base_model="base").write(run_copy)  # the dataset's draft
    hf = resolve_servable(run_copy)
    assert hf == run_copy / "hf"
    card = JudgeCard.read(hf)  # the merged folder carries the run's judge card
    assert card is not None and card.template() == trained and card.metrics["step"] == 2
    marker = json.loads((hf / MERGE_MARKER).read_text())
    assert marker["step"] == 2 and marker["source"].endswith("global_step_2/actor")
    _assert_matches_reference(hf, run_copy / "reference.pt")
    stamp = (hf / MERGE_MARKER).stat().st_mtime_ns
    assert resolve_servable(str(run_copy)) == hf  # cached: no second merge
    assert (hf / MERGE_MARKER).stat().st_mtime_ns == stamp
    assert resolve_servable(hf) == hf  # an HF folder comes back unchanged

    step1 = resolve_servable(run_copy / "global_step_1" / "actor" / "huggingface")
    assert step1 == run_copy / "global_step_1" / "huggingface_merged"
    assert json.loads((step1 / MERGE_MARKER).read_text())["step"] == 1


def test_merge_failure_is_reported(tmp_path: Path, run_copy: Path) -> None:
    actor = run_copy / "global_step_1" / "actor"
    (actor / "model_world_size_2_rank_1.pt").write_bytes(b"not a checkpoint")
    from judgeforge.errors import JudgeforgeError

    with pytest.raises(JudgeforgeError, match="model merger failed"):
        merge_checkpoint(actor, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_launch_local_stub_trainer_then_merge(fsdp_run: Path, tmp_path: Path, model_dir: Path,
                                             mt_bench_parquet: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """main_ppo cannot run without GPUs: a stub stands in for it (it copies the real
    checkpoint into trainer.default_local_dir); launch() then merges it for real."""
    stub = tmp_path / "verl-python"
    stub.write_text(f"""#!/bin/sh
if [ "$2" = "verl.trainer.main_ppo" ]; then
  shift 2
  for arg in "$@"; do case "$arg" in trainer.default_local_dir=*) out="${{arg#*=}}";; esac; done
  mkdir -p "$out" && cp -r {fsdp_run}/global_step_1 {fsdp_run}/global_step_2 \\
     {fsdp_run}/latest_checkpointed_iteration.txt "$out"/
  echo "$TENSORBOARD_DIR" > "$out/tensorboard_dir.txt"
  exit 0
fi
exec {sys.executable} "$@"
""")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JUDGEFORGE_VERL_PYTHON", str(stub))
    out = tmp_path / "ckpt"
    cfg = TrainConfig.for_gpu().merged({"data": {"train_files": [str(mt_bench_parquet)]},
                                        "model": {"path": str(model_dir)},
                                        "output_dir": str(out)})
    assert launch(cfg) == 0
    assert (out / "tensorboard_dir.txt").read_text().strip() == str(out / "tensorboard")
    assert json.loads((out / "hf" / MERGE_MARKER).read_text())["step"] == 2


def test_serving_resolves_a_verl_checkpoint_through_the_entry_point(run_copy: Path) -> None:
    """The sdk's serving path (VLLMServer) finds the verl resolver by entry point, never by
    importing judgeforge.train; a verl actor folder becomes the merged HF folder it serves."""
    from judgeforge.models.resolve import resolve_model_path
    from judgeforge.models.vllm_server import VLLMServer

    actor = latest_checkpoint(run_copy)
    assert actor is not None and actor.name == "actor"
    merged = resolve_model_path(actor)
    assert merged != actor and (merged / "config.json").is_file()
    server = VLLMServer(actor)          # not started: construction resolves the path
    assert server.model_path == merged.resolve()
