"""Command and environment construction for vLLM's OpenAI server (pure; CPU and GPU paths)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from judgeforge.cli.main import build_parser
from judgeforge.errors import ConfigError
from judgeforge.models.vllm_server import VLLMServer, build_vllm_command, build_vllm_env


def _opt(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "my-judge"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_cpu_defaults_are_bf16_eager_with_shutdown_timeout(hf_dir: Path) -> None:
    cmd = build_vllm_command(hf_dir, port=8123, device="cpu")
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert _opt(cmd, "--model") == str(hf_dir)
    assert _opt(cmd, "--served-model-name") == "my-judge"
    assert _opt(cmd, "--host") == "127.0.0.1"
    assert _opt(cmd, "--port") == "8123"
    assert _opt(cmd, "--dtype") == "bfloat16"
    assert _opt(cmd, "--shutdown-timeout") == "60"
    assert "--enforce-eager" in cmd
    for gpu_flag in ("--tensor-parallel-size", "--gpu-memory-utilization",
                     "--kv-cache-memory-bytes"):
        assert gpu_flag not in cmd


def test_cpu_options_pass_through(hf_dir: Path) -> None:
    cmd = build_vllm_command(hf_dir, port=9000, device="cpu", served_model_name="judge",
                             dtype="float32", max_model_len=2048, enforce_eager=False,
                             shutdown_timeout=5, extra_args=["--seed", "1"], python="/py")
    assert cmd[0] == "/py"
    assert _opt(cmd, "--served-model-name") == "judge"
    assert _opt(cmd, "--dtype") == "float32"
    assert _opt(cmd, "--max-model-len") == "2048"
    assert _opt(cmd, "--shutdown-timeout") == "5"
    assert "--no-enforce-eager" in cmd and "--enforce-eager" not in cmd
    assert cmd[-2:] == ["--seed", "1"]


def test_gpu_passes_tensor_parallel_and_memory_options(hf_dir: Path) -> None:
    cmd = build_vllm_command(hf_dir, port=8000, device="cuda", tensor_parallel_size=4,
                             gpu_memory_utilization=0.85, kv_cache_gib=2.5)
    assert _opt(cmd, "--tensor-parallel-size") == "4"
    assert _opt(cmd, "--gpu-memory-utilization") == "0.85"
    assert _opt(cmd, "--kv-cache-memory-bytes") == str(int(2.5 * 2**30))
    assert _opt(cmd, "--dtype") == "auto"
    assert "--no-enforce-eager" in cmd  # CUDA graphs by default on GPUs


@pytest.mark.parametrize("kw", [
    {"tensor_parallel_size": 2},
    {"gpu_memory_utilization": 0.5},
])
def test_gpu_only_options_are_rejected_on_cpu(hf_dir: Path, kw: dict) -> None:
    with pytest.raises(ConfigError):
        build_vllm_command(hf_dir, port=8000, device="cpu", **kw)


@pytest.mark.parametrize("kw", [
    {"device": "tpu"}, {"port": 0}, {"port": 70000}, {"max_model_len": 0},
    {"shutdown_timeout": -1}, {"device": "cuda", "gpu_memory_utilization": 1.5},
    {"device": "cuda", "tensor_parallel_size": 0}, {"device": "cuda", "kv_cache_gib": 0},
])
def test_invalid_options_raise_config_error(hf_dir: Path, kw: dict) -> None:
    kw = {"port": 8000, **kw}
    with pytest.raises(ConfigError):
        build_vllm_command(hf_dir, **kw)


def test_cpu_env_sets_kv_cache_caches_and_offline(tmp_path: Path) -> None:
    env = build_vllm_env(device="cpu", kv_cache_gib=2, home=tmp_path, base_env={"KEEP": "1"},
                         overrides={"VLLM_CPU_OMP_THREADS_BIND": "0"})
    assert env["KEEP"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"
    for key in ("TMPDIR", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert env[key].startswith(str(tmp_path))
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0"
    assert build_vllm_env(device="cpu", home=tmp_path, base_env={})["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_cpu_kv_cache_must_be_whole_gib(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        build_vllm_env(device="cpu", kv_cache_gib=0.5, home=tmp_path, base_env={})


def test_gpu_env_has_no_cpu_kv_cache(tmp_path: Path) -> None:
    env = build_vllm_env(device="cuda", kv_cache_gib=4, home=tmp_path, base_env={})
    assert "VLLM_CPU_KVCACHE_SPACE" not in env


def test_server_validates_folder_and_options_up_front(hf_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        VLLMServer(tmp_path / "missing")
    with pytest.raises(ConfigError):
        VLLMServer(hf_dir, device="cpu", tensor_parallel_size=2)
    srv = VLLMServer(hf_dir, device="cuda", tensor_parallel_size=2, gpu_memory_utilization=0.9,
                     served_model_name="j")
    cmd = srv.build_command(8001)
    assert _opt(cmd, "--tensor-parallel-size") == "2"
    assert _opt(cmd, "--served-model-name") == "j"
    assert srv.pid is None and not srv.is_running()
    srv.stop()  # stopping a server that never started is a no-op


def test_serve_model_cli_builds_the_gpu_command(hf_dir: Path) -> None:
    from judgeforge.models.cli_model import server_from_args

    args = build_parser().parse_args([
        "serve-model", str(hf_dir), "--device", "cuda", "--tensor-parallel-size", "8",
        "--gpu-memory-utilization", "0.7", "--port", "8500", "--served-model-name", "judge",
        "--no-eager", "--max-model-len", "8192"])
    cmd = server_from_args(args).build_command(args.port)
    assert _opt(cmd, "--tensor-parallel-size") == "8"
    assert _opt(cmd, "--gpu-memory-utilization") == "0.7"
    assert _opt(cmd, "--port") == "8500"
    assert _opt(cmd, "--max-model-len") == "8192"
    assert "--no-enforce-eager" in cmd


def test_serve_model_cli_cpu_defaults(hf_dir: Path) -> None:
    from judgeforge.models.cli_model import server_from_args

    args = build_parser().parse_args(["serve-model", str(hf_dir), "--device", "cpu"])
    srv = server_from_args(args)
    cmd = srv.build_command(8600)
    assert "--enforce-eager" in cmd and _opt(cmd, "--dtype") == "bfloat16"
    assert srv.requested_port is None  # a free port is picked at start


def test_cpu_env_binds_both_cores_of_a_2_core_machine(tmp_path: Path) -> None:
    # vLLM's default "auto" would reserve one of the two CPUs and compute on the other
    env = build_vllm_env(device="cpu", home=tmp_path, base_env={}, cpus=[0, 1])
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    assert build_vllm_env(device="cpu", home=tmp_path, base_env={},
                          cpus=[2, 3, 5])["VLLM_CPU_OMP_THREADS_BIND"] == "2-3,5"
    big = build_vllm_env(device="cpu", home=tmp_path, base_env={}, cpus=range(16))
    assert big["VLLM_CPU_OMP_THREADS_BIND"] == "auto"  # many cores: vLLM's own choice
    assert "VLLM_CPU_OMP_THREADS_BIND" not in build_vllm_env(device="cuda", home=tmp_path,
                                                             base_env={}, cpus=[0, 1])


def test_cpu_bind_user_env_and_option_win_over_the_rule(tmp_path: Path) -> None:
    user = {"VLLM_CPU_OMP_THREADS_BIND": "1"}
    env = build_vllm_env(device="cpu", home=tmp_path, base_env=user, cpus=[0, 1])
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "1"
    env = build_vllm_env(device="cpu", home=tmp_path, base_env=user, cpus=[0, 1],
                         cpu_threads_bind="nobind")
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"


def test_serve_model_cli_cpu_threads_bind(hf_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from judgeforge.models.cli_model import server_from_args

    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    args = build_parser().parse_args(["serve-model", str(hf_dir), "--device", "cpu"])
    srv = server_from_args(args)
    assert srv.build_env(cpus=[0, 1])["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    args = build_parser().parse_args(["serve-model", str(hf_dir), "--device", "cpu",
                                      "--cpu-threads-bind", "0"])
    assert server_from_args(args).build_env(cpus=[0, 1])["VLLM_CPU_OMP_THREADS_BIND"] == "0"
