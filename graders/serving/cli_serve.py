"""``judgeforge serve``: a judge as an HTTP scoring service.

    judgeforge serve ./checkpoints/judge --grader helpfulness --port 8080
    judgeforge serve http://127.0.0.1:8000/v1 --api-key "$KEY"

Starts (for a local Hugging Face folder, or the default model when none is given) or connects
to (for an ``http(s)://.../v1`` URL) vLLM's OpenAI server, then the scoring API. A trained
judge's folder carries its judge card (``judge_config.json``): the offered graders, their
scales and prompt, the default mode and the calibration come from it; ``--grader``,
``--scale``, ``--mode`` and ``--constrained`` override it. The API:
``POST /v1/score``, ``POST /v1/score/batch``, ``GET /v1/graders``, ``GET /healthz`` and the
OpenAPI docs at ``/docs``. Ctrl-C or SIGTERM stops both.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from judgeforge.errors import ConfigError

__all__ = ["register", "settings_from_args"]

# settings fields exposed as --options (name, type); help text comes from ServiceSettings
_SETTING_OPTIONS: tuple[tuple[str, type], ...] = (
    ("max_body_bytes", int), ("max_batch", int), ("max_text_chars", int), ("max_messages", int),
    ("max_concurrency", int), ("max_queue", int), ("queue_timeout_s", float),
    ("request_timeout_s", float), ("health_timeout_s", float), ("health_cache_s", float),
    ("max_connections", int), ("keep_alive_timeout_s", float), ("request_read_timeout_s", float),
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_from_args(args: argparse.Namespace, card: Any = None) -> Any:
    """The :class:`ServiceSettings` the parsed options describe, on top of the judge ``card``'s
    graders, scales and scoring defaults when there is one (ConfigError if invalid)."""
    from pydantic import ValidationError

    from judgeforge.graders.serving.settings import ServiceSettings

    values: dict[str, Any] = {"host": args.host, "port": args.port, "api_key": args.api_key,
                              "default_mode": "expected", "constrained": False}
    if card is not None:
        values.update(graders=tuple(card.dimensions), default_mode=card.scoring.mode,
                      constrained=card.scoring.constrained,
                      scales={d: f"{s.min}-{s.max}" for d, s in card.dimensions.items()})
    for name, value in (("default_mode", args.mode), ("constrained", args.constrained)):
        if value is not None:
            values[name] = value
    if args.grader:
        values["graders"] = tuple(args.grader)
    if args.scale:
        scales = dict(values.get("scales") or {})
        for item in args.scale:
            name, sep, text = item.partition("=")
            if not sep:
                raise ConfigError(f"--scale {item!r} must look like NAME=MIN-MAX "
                                  "(e.g. quality=1-5)")
            scales[name.strip()] = text.strip()
        values["scales"] = scales
    for name, _ in _SETTING_OPTIONS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    try:
        return ServiceSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{_flag(str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid serve options: {problems}") from None


def _serve(args: argparse.Namespace) -> int:
    from judgeforge._extras import require

    require("fastapi", "api")
    require("uvicorn", "api")
    from judgeforge.graders.serving.server import run
    from judgeforge.models.spec import parse_model_spec

    card = parse_model_spec(args.target, what="the served model").card()
    settings = settings_from_args(args, card)
    vllm: dict[str, Any] = {k: v for k, v in (
        ("max_model_len", args.max_model_len), ("kv_cache_gib", args.kv_cache_gib),
        ("startup_timeout", args.startup_timeout)) if v is not None}
    return run(settings, args.target, model_name=args.model_name,
               model_api_key=args.model_api_key, server_kind=args.server_kind,
               vllm_options=vllm, shutdown_timeout_s=args.shutdown_timeout,
               access_log=args.access_log, card=card)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the judgeforge CLI."""
    from judgeforge.graders.serving.settings import SERVICE_MODES, ServiceSettings

    h = ServiceSettings.help
    p = subparsers.add_parser(
        "serve", help="serve a judge as an HTTP scoring API (starts or connects to vLLM)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", default=None, metavar="CHECKPOINT_OR_URL",
                   help="a Hugging Face model folder to serve with vLLM, or the http(s)://.../v1 "
                        "URL of a running OpenAI-compatible server (default: the prepared "
                        "default model)")
    p.add_argument("--grader", action="append", default=None, metavar="NAME",
                   help=h("graders") + " (repeat the option; default: the judge card's "
                        "dimensions, else helpfulness)")
    p.add_argument("--scale", action="append", default=None, metavar="NAME=MIN-MAX",
                   help=h("scales") + " (repeat the option)")
    p.add_argument("--mode", choices=SERVICE_MODES, default=None,
                   help=h("default_mode") + " (default: the judge card's, else expected)")
    p.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=None,
                   help=h("constrained") + " (default: the judge card's, else off)")
    p.add_argument("--host", default="127.0.0.1", help=h("host") + " (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help=h("port") + " (default: 8080)")
    p.add_argument("--api-key", default=os.environ.get("JUDGEFORGE_API_KEY") or None,
                   help=h("api_key") + " (default: $JUDGEFORGE_API_KEY)")
    for name, kind in _SETTING_OPTIONS:
        default = ServiceSettings.model_fields[name].default
        p.add_argument(_flag(name), type=kind, default=None, metavar="N",
                       help=f"{h(name)} (default: {default})")
    m = p.add_argument_group("model server")
    m.add_argument("--model-name", default=None,
                   help="served model name (URL: default the server's first model; folder: "
                        "default the folder's name)")
    m.add_argument("--model-api-key", default=os.environ.get("OPENAI_API_KEY") or None,
                   help="API key of the model server at a URL (default: $OPENAI_API_KEY)")
    m.add_argument("--server-kind", choices=("auto", "vllm", "openai"), default="auto",
                   help="what the server at a URL supports: vllm allows expected mode and "
                        "constrained decoding (default: auto, asks the server)")
    m.add_argument("--max-model-len", type=int, default=None,
                   help="context length for a managed vLLM server (default: the model's)")
    m.add_argument("--kv-cache-gib", type=float, default=None,
                   help="KV cache GiB for a managed vLLM server (CPU default: 1)")
    m.add_argument("--startup-timeout", type=float, default=None,
                   help="seconds to wait for a managed vLLM server's /health (default: 600)")
    p.add_argument("--shutdown-timeout", type=float, default=30.0,
                   help="seconds to finish requests in flight on Ctrl-C/SIGTERM (default: 30)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                   help="log every HTTP request (default: off)")
    p.set_defaults(func=_serve)
