"""``judgeforge grade``: grade a dataset with a served judge, crash-safely.

    judgeforge grade --data test.parquet --model http://localhost:8000/v1 \\
        --grader helpfulness --mode expected --output results.jsonl

``--model`` is an OpenAI-compatible base URL, a local Hugging Face folder (served by a managed
vLLM server) or ``default`` (the prepared default model, also what no ``--model`` means): the
parser every command shares (:mod:`judgeforge.models.spec`). A trained judge's folder carries
its judge card (``judge_config.json``): the grader, scale, prompt limits, scoring mode and
calibration come from it, and explicit options (``--grader``, ``--scale``, ``--mode``...)
override it. A pairwise file (``response_a``/``response_b``) is graded with the pairwise judge
(both orders, ``<verdict>``; ``--compare pointwise`` scores each response instead). ``--data``
reads the project's pointwise files (rendered exactly as the trainers
render them: :func:`judgeforge.prompt.record_inputs`) and plain JSONL/JSON with
``query``/``response`` columns. With ``--output`` results are appended as they finish;
rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, DataError
from judgeforge.graders.results import is_score, to_dict
from judgeforge.graders.runner.config import plain_mapper

if TYPE_CHECKING:
    from judgeforge.card import JudgeCard
    from judgeforge.models.spec import ModelSpec

__all__ = ["register", "read_rows", "plain_mapper", "run_grade"]


def read_rows(path: str | Path, limit: int | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Rows of ``path`` and the mapper that feeds graders from them.

    Pointwise files (Parquet, or JSON/JSONL whose first row has ``input`` and ``output``) are
    validated by :func:`judgeforge.data.io.load_records`; other JSON/JSONL rows are plain.
    """
    from judgeforge.data.io import detect_format, iter_raw_rows, load_records
    from judgeforge.graders.runner.config import record_mapper

    kind = detect_format(path)
    pointwise = kind == "parquet"
    plain: list[dict[str, Any]] = []
    if kind in ("jsonl", "json"):
        bad = []
        for raw in iter_raw_rows(path):
            if raw.error is not None or not isinstance(raw.data, dict):
                bad.append(f"row {raw.index} (line {raw.line}): {raw.error or 'not an object'}")
                continue
            if not plain and not bad and "input" in raw.data and "output" in raw.data:
                pointwise = True
                break
            plain.append(raw.data)
            if limit is not None and len(plain) >= limit:
                break
        if bad and not pointwise:
            raise DataError(f"{path}: {len(bad)} unreadable row(s):\n" + "\n".join(bad[:20]),
                            bad)
    elif kind != "parquet":
        raise ConfigError(f"{path}: grade reads Parquet, JSONL or JSON (got {kind})")
    if not pointwise:
        return plain, plain_mapper
    records = load_records(path).records
    if limit is not None:
        records = records[:limit]
    return [r.to_dict() for r in records], record_mapper


def _build_model(args: argparse.Namespace, spec: ModelSpec) -> Any:
    from judgeforge.models.openai_chat import OpenAIChatModel

    common: dict[str, Any] = {"max_concurrency": args.concurrency, "timeout": args.timeout,
                              "api_key": args.api_key}
    if spec.kind == "url":
        return OpenAIChatModel(model=args.model_name, base_url=spec.target, **common)
    options = {"served_model_name": args.model_name} if args.model_name else None
    if spec.kind == "default":
        return OpenAIChatModel(server_options=options, **common)
    return OpenAIChatModel(model=spec.target, is_local=True, server_options=options, **common)


def _build_grader(args: argparse.Namespace, model: Any, card: JudgeCard | None) -> Any:
    """The card's grader with the explicit options on top; without a card (or with
    ``--grader``), a built-in grader with the options' defaults."""
    from judgeforge.graders.builtin import get_grader
    from judgeforge.graders.llm_grader import LLMGrader

    given = {k: v for k, v in (("mode", args.mode), ("constrained", args.constrained),
                                ("n", args.votes), ("vote", args.vote_method),
                                ("temperature", args.temperature),
                                ("max_tokens", args.max_tokens), ("thinking", args.thinking))
             if v is not None}
    if args.scale is not None:
        given["scale"] = Scale.parse(args.scale)
    if card is not None and args.grader is None:
        return LLMGrader.from_card(card, model, **given)
    opts: dict[str, Any] = {"mode": "sample", "scale": Scale.parse("0-4"), **given}
    name = args.grader or "helpfulness"
    if name == "multi" and args.dimensions:
        opts["dimensions"] = [d.strip() for d in args.dimensions.split(",") if d.strip()]
    return get_grader(name, model, **opts)


def _read_pairs(path: str | Path, limit: int | None) -> list[dict[str, Any]] | None:
    """A pairwise file's records as dicts (None: not a pairwise file)."""
    from judgeforge.data.pairwise import is_pairwise_file, read_pairwise

    if not is_pairwise_file(path):
        return None
    records = read_pairwise(path)
    return [r.to_dict() for r in records[:limit]]


def _build_comparer(args: argparse.Namespace, model: Any, card: JudgeCard | None) -> Any:
    """The grader for pairwise rows: the pairwise judge (``--compare pairwise``, its card's
    settings when it has them) or the pointwise grader's scores compared."""
    from judgeforge.graders.pairwise import PairwiseGrader, PointwisePreferenceGrader

    if args.compare == "pointwise":
        if args.mode is None:
            args.mode = "expected"
        return PointwisePreferenceGrader(_build_grader(args, model, card),
                                         margin=args.margin or 0.0, name="preference")
    if args.mode == "vote":
        raise ConfigError("--mode vote is for pointwise grading; a pairwise judge takes "
                          "expected or sample")
    if args.margin is not None:
        raise ConfigError("--margin is the pointwise tie margin (--compare pointwise)")
    given = {k: v for k, v in (("mode", args.mode), ("constrained", args.constrained),
                                ("temperature", args.temperature),
                                ("max_tokens", args.max_tokens),
                                ("both_orders", args.both_orders)) if v is not None}
    if card is not None and getattr(card, "pairwise", None) is not None:
        return PairwiseGrader.from_card(card, model, **given)
    return PairwiseGrader(model, **given)


async def run_grade(args: argparse.Namespace) -> int:
    """The command's body (async): build model, grader and runner; grade; report."""
    from judgeforge.graders.runner import GraderConfig, GradingRunner
    from judgeforge.models.spec import parse_model_spec

    if isinstance(args.model, list):  # repeated --model: replicas, for --engine ray only
        if len(args.model) > 1:
            raise ConfigError("several --model URLs need --engine ray")
        args.model = args.model[0]
    spec = parse_model_spec(args.model)
    card = spec.card()
    pairs = _read_pairs(args.data, args.limit)
    if pairs is not None:
        from judgeforge.graders.pairwise import pairwise_mapper

        rows, mapper = pairs, pairwise_mapper
    else:
        rows, mapper = read_rows(args.data, args.limit)
    model = _build_model(args, spec)
    async with model:
        grader = (_build_comparer(args, model, card) if pairs is not None
                  else _build_grader(args, model, card))
        column_name = args.grader or grader.name
        if card is not None and pairs is None:
            dims = ", ".join(f"{d} {s.min}-{s.max}" for d, s in grader.dimensions.items())
            print(f"judgeforge grade: judge card of {spec.target}: {dims}, mode {grader.mode}"
                  f"{', calibrated' if grader.calibration else ''}", file=sys.stderr)
        runner = GradingRunner({column_name: GraderConfig(grader, mapper)},
                               max_concurrency=args.concurrency,
                               show_progress=not args.no_progress, output=args.output,
                               retry_errors=not args.no_retry_errors,
                               on_stale="refuse" if args.refuse_stale else "regrade")
        results = await runner.arun(rows)
    column = results[column_name]
    if args.output is None:
        for i, result in enumerate(column):
            print(json.dumps({"index": i, "grader": column_name, "result": to_dict(result)},
                             ensure_ascii=False))
    scores = [r.score for r in column if is_score(r)]
    summary = runner.summary
    print(f"judgeforge grade: {summary}", file=sys.stderr)
    verdicts = Counter(str(r.preference) for r in column
                       if is_score(r) and getattr(r, "preference", None) is not None)
    if verdicts:
        print(f"judgeforge grade: verdicts a {verdicts['a']}, b {verdicts['b']}, tie "
              f"{verdicts['tie']}; {len(column) - len(scores)} without a verdict",
              file=sys.stderr)
    elif scores:
        print(f"judgeforge grade: mean score {sum(scores) / len(scores):.3f} over {len(scores)} "
              f"scored row(s), {len(column) - len(scores)} without a score", file=sys.stderr)
    return 1 if args.strict and len(scores) < len(column) else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``grade`` to the judgeforge CLI."""
    p = subparsers.add_parser(
        "grade", help="grade a dataset with a judge model (crash-safe, resumable)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="pointwise Parquet/JSONL file, or JSONL/JSON with query/response columns")
    p.add_argument("--model", default=None, action="append",
                   help="OpenAI-compatible base URL (http://host:port/v1; repeat it with "
                        "--engine ray for replicas of one judge), a local HF model "
                        "folder to serve with vLLM (its judge card sets the grader), or "
                        "'default'; default: the prepared default model")
    p.add_argument("--model-name", default=None,
                   help="served model name (default: the server's first model / the folder name)")
    p.add_argument("--api-key", default=None,
                   help="API key for the server (default: $OPENAI_API_KEY or 'EMPTY')")
    p.add_argument("--grader", default=None,
                   help="helpfulness, correctness, relevance, multi, or any dimension name "
                        "(default: the judge card's, else helpfulness)")
    p.add_argument("--dimensions", default=None,
                   help="comma-separated dimensions for --grader multi "
                        "(default: helpfulness,correctness,relevance)")
    p.add_argument("--scale", default=None,
                   help="score scale MIN-MAX (default: the judge card's, else 0-4)")
    p.add_argument("--mode", choices=("sample", "expected", "vote"), default=None,
                   help="sample: parse one output; expected: probability-weighted score from "
                        "the score token's logprobs; vote: several samples (default: the judge "
                        "card's, else sample)")
    p.add_argument("--votes", type=_positive, default=None,
                   help="samples per row in vote mode (default: the card's, else 5)")
    p.add_argument("--vote-method", choices=("mean", "majority"), default=None,
                   help="how vote mode combines samples (default: the card's, else mean)")
    p.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=None,
                   help="constrain decoding to the <score>X</score> format (vLLM servers; "
                        "default: the card's, else off)")
    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="ask the judge to reason in <think>...</think> before the score "
                        "(default: the card's, else off)")
    p.add_argument("--compare", choices=("pairwise", "pointwise"), default="pairwise",
                   help="for a pairwise file (response_a/response_b): judge both responses "
                        "together (pairwise) or score each with the pointwise grader and "
                        "prefer the higher (pointwise)")
    p.add_argument("--both-orders", action=argparse.BooleanOptionalAction, default=None,
                   help="pairwise files: judge (a, b) and (b, a) and average (default: on)")
    p.add_argument("--margin", type=float, default=None,
                   help="--compare pointwise: a score difference within this margin is a tie "
                        "(default: 0)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: 0 for sample, 1 for vote)")
    p.add_argument("--max-tokens", type=_positive, default=None,
                   help="max generated tokens per call (default: 256, 1024 with --thinking)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per model request attempt (default: 120)")
    p.add_argument("--concurrency", type=_positive, default=8,
                   help="rows graded at once (default: 8)")
    p.add_argument("--limit", type=_positive, default=None, help="grade only the first N rows")
    p.add_argument("--output", default=None,
                   help="results JSONL, appended as rows finish; rerunning resumes "
                        "(default: print results to stdout)")
    p.add_argument("--no-retry-errors", action="store_true",
                   help="on rerun, keep stored transport errors instead of grading those rows "
                        "again (parse failures are always kept)")
    p.add_argument("--refuse-stale", action="store_true",
                   help="stop with an error when --output holds results made from other row "
                        "text or another grading configuration (default: grade those rows "
                        "again)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 if any row has no score")
    from judgeforge.graders.distributed.cli import add_ray_arguments, run_grade_ray

    add_ray_arguments(p, positive=_positive)
    p.set_defaults(func=lambda a: run_grade_ray(a, _build_grader) if _ray(a)
                   else asyncio.run(run_grade(a)))


def _ray(args: argparse.Namespace) -> bool:
    """Whether to grade on Ray (pointwise files only: a pairwise file is a ConfigError)."""
    if args.engine != "ray":
        return False
    from judgeforge.data.pairwise import is_pairwise_file

    if is_pairwise_file(args.data):
        raise ConfigError(f"{args.data} is a pairwise file: --engine ray grades pointwise "
                          "files; grade it with the default engine")
    return True
