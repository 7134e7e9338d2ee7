"""``judgeforge data convert`` kinds that write pairwise records, and pairwise ``validate``.

    judgeforge data convert pandalm testset-v1.json --out p.parquet [--non-text refuse]
    judgeforge data convert hhh hhh_alignment_eval.json --out h.parquet [--seed 0]
    judgeforge data convert pairs FILE --out OUT [--prompt-col prompt --chosen-col chosen ...]
    judgeforge data convert pairs-from-pointwise train.parquet --out pairs.parquet

Each prints how many records it wrote, every row it refused (by row and field, on stderr) and
what it coerced or randomised.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

__all__ = ["add_pairwise_converters", "report_pairwise", "validate_pairwise"]


def report_pairwise(result: Any, out: str) -> None:
    """Write a converter's pairwise records to ``out`` and print what happened."""
    from judgeforge.data.pairwise import write_pairwise

    for err in result.errors:
        print(f"refused: {err}", file=sys.stderr)
    write_pairwise(result.records, out)
    spread = Counter(r.preference for r in result.records)
    print(f"wrote {len(result.records)} pairwise records to {out} (read {result.total}, "
          f"refused {result.skipped}; preference a {spread['a']}, b {spread['b']}, "
          f"tie {spread['tie']})")
    for note in result.notes:
        print(f"note: {note}")


def validate_pairwise(path: str, max_errors: int = 0) -> int:
    """``judgeforge data validate`` for a pairwise file: 0 when every row is valid."""
    from judgeforge.data.pairwise import read_pairwise

    records = read_pairwise(path)  # DataError (every bad row and field) -> exit 1 by the guard
    spread = Counter(r.preference for r in records)
    print(f"{path}: {len(records)} pairwise rows OK (preference a {spread['a']}, "
          f"b {spread['b']}, tie {spread['tie']})")
    return 0


def _cmd_pandalm(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.pandalm import convert_pandalm

    report_pairwise(convert_pandalm(args.file, non_text=args.non_text,
                                    skip_invalid=args.skip_invalid), args.out)
    return 0


def _cmd_hhh(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.hhh import convert_hhh

    report_pairwise(convert_hhh(args.file, seed=args.seed, skip_invalid=args.skip_invalid),
                    args.out)
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.chosen_rejected import convert_chosen_rejected

    result = convert_chosen_rejected(args.file, prompt=args.prompt_col, chosen=args.chosen_col,
                                     rejected=args.rejected_col, extra=args.extra or (),
                                     seed=args.seed, data_source=args.data_source,
                                     skip_invalid=args.skip_invalid)
    report_pairwise(result, args.out)
    return 0


def _cmd_from_pointwise(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.pointwise_pairs import pairs_from_pointwise_file

    result = pairs_from_pointwise_file(args.file, dimension=args.dimension,
                                       group_key=args.group_key, min_gap=args.min_gap,
                                       max_pairs_per_query=args.max_pairs_per_query,
                                       seed=args.seed, skip_invalid=args.skip_invalid)
    report_pairwise(result, args.out)
    return 0


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output file of pairwise records (.parquet or "
                                                ".jsonl)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out rows that cannot be converted (each is printed and counted) "
                        "instead of failing")


def _seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the coin that puts the preferred response on side a or b "
                        "(same seed, same file)")


def add_pairwise_converters(kinds: Any, guard: Any) -> None:
    """Add the pairwise kinds to ``judgeforge data convert`` (``guard`` wraps each command)."""
    pa = kinds.add_parser(
        "pandalm", help="PandaLM's human-annotated test set (pairwise, ties)",
        description="PandaLM testset-v1.json -> pairwise records: preference = the majority of "
                    "the three annotators (votes kept); an item without a majority is refused "
                    "by name, never made a tie; the six JSON-boolean responses (idx 157-164) "
                    "are turned into the text 'True' and counted, unless --non-text refuse.")
    pa.add_argument("file", help="PandaLM's data/testset-v1.json (.gz too)")
    pa.add_argument("--non-text", choices=["coerce", "refuse"], default="coerce",
                    help="a JSON-boolean response: coerce it to its text (default) or refuse "
                         "the row (other non-text values are always refused)")
    _out(pa)
    pa.set_defaults(func=guard(_cmd_pandalm))

    hh = kinds.add_parser(
        "hhh", help="HHH alignment chosen/rejected pairs (Prometheus format)",
        description="hhh_alignment_eval.json -> pairwise records: the instruction, both "
                    "responses and the rubric taken out of the Prometheus prompts; the criterion "
                    "(harmless/helpful/honest/other) in extra_info; the chosen response's side "
                    "is a seeded coin (else 'a' would always win).")
    hh.add_argument("file", help="prometheus-eval's hhh_alignment_eval.json (.gz too)")
    _seed(hh)
    _out(hh)
    hh.set_defaults(func=guard(_cmd_hhh))

    pr = kinds.add_parser(
        "pairs", help="a prompt/chosen/rejected preference table",
        description="A Parquet/JSONL/JSON table with prompt, chosen and rejected columns (text "
                    "or chat messages; without a prompt column chosen/rejected must be whole "
                    "conversations sharing their earlier turns) -> pairwise records, the chosen "
                    "side a seeded coin.")
    pr.add_argument("file", help="input table (.parquet, .jsonl or .json)")
    pr.add_argument("--prompt-col", default="prompt", help="column of the prompt")
    pr.add_argument("--chosen-col", default="chosen", help="column of the preferred response")
    pr.add_argument("--rejected-col", default="rejected",
                    help="column of the other response")
    pr.add_argument("--extra", action="append", metavar="COLUMN",
                    help="copy this column into extra_info (repeatable)")
    pr.add_argument("--data-source", default=None,
                    help="data_source of the records (default: the file's stem)")
    _seed(pr)
    _out(pr)
    pr.set_defaults(func=guard(_cmd_pairs))

    pp = kinds.add_parser(
        "pairs-from-pointwise", help="pairs of differently labelled responses to one query",
        description="A pointwise file -> pairwise records: two responses to the same query "
                    "(grouped as `data split` groups) whose labels differ; the higher label is "
                    "preferred; the group is kept in extra_info.group, so pairs from a split's "
                    "train file never hold a test query.")
    pp.add_argument("file", help="a pointwise .parquet or .jsonl file (e.g. a split's train)")
    pp.add_argument("--dimension", default=None,
                    help="label dimension to compare (default: the file's first)")
    pp.add_argument("--group-key", default=None, metavar="KEY",
                    help="group rows by extra_info[KEY], as `data split --group-key` (default: "
                         "by the query text)")
    pp.add_argument("--min-gap", type=int, default=1,
                    help="smallest label difference that makes a pair")
    pp.add_argument("--max-pairs-per-query", type=int, default=None,
                    help="keep at most this many pairs per query, the largest label gaps first")
    _seed(pp)
    _out(pp)
    pp.set_defaults(func=guard(_cmd_from_pointwise))
