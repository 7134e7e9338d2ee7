"""The training mix's extra sets: human-labelled sets shipped with judgeforge, as pointwise files.

    python -m judgeforge.train.mix --out data/mix
    judgeforge train cpu-mix       # data/prometheus/train.parquet + data/mix/*.parquet

writes ``feedbackqa.parquet`` (FeedbackQA, 1,995 answers rated 0-3 by crowd raters; the four
shipped domain files) and ``lamp-r.parquet`` (LAMP-R, 130 paragraphs rated 1-10 by professional
writers) with the converters ``judgeforge data convert`` uses, each on its own scale. The
Prometheus part of the mix is the training side of the user's own split (the demo's and the
recipe's test rows stay out of it).

Both sets are also in the default benchmark suite (``benchmarks/suite/default.yaml``): a judge
trained on this mix is graded out of domain only on the suite's other sets, the JUDGE-BENCH
Newsroom and ROSCOE sets (``bench suite --sets`` with :data:`HELD_OUT_SUITE_SETS`).
HelpSteer2 is not in the mix: the package ships no HelpSteer2 rows (the shared folder holds 8,
a converter fixture).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MIX_SETS", "SUITE_SETS_IN_MIX", "HELD_OUT_SUITE_SETS", "write_mix", "main"]

#: set name -> (converter, shipped files)
MIX_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "feedbackqa": ("feedbackqa", tuple(f"feedbackqa/{d}_feedback_test.json.gz"
                                       for d in ("Australia", "CDC", "UK", "WHO"))),
    "lamp-r": ("lamp", ("lamp-r/test.jsonl.gz",)),
}
#: the default suite's sets a judge trained on the mix has seen (in domain for it)
SUITE_SETS_IN_MIX = ("feedbackqa", "lamp-r")
#: the default suite's sets the mix does not touch: its out-of-domain benchmark
HELD_OUT_SUITE_SETS = ("newsroom-informativeness", "newsroom-relevance", "newsroom-fluency",
                       "newsroom-coherence", "roscoe-cosmos", "roscoe-drop", "roscoe-esnli",
                       "roscoe-gsm8k")


def _convert(name: str) -> Any:
    from judgeforge.data.converters.base import merge_results
    from judgeforge.datasets import shipped_path

    converter, files = MIX_SETS[name]
    results = []
    for f in files:
        path = shipped_path(f)
        if converter == "feedbackqa":
            from judgeforge.data.converters.feedbackqa import convert_feedbackqa

            results.append(convert_feedbackqa(path))
        else:
            from judgeforge.data.converters.lamp import convert_lamp

            results.append(convert_lamp(path))
    return merge_results(results)


def write_mix(out_dir: str | Path, sets: Sequence[str] = tuple(MIX_SETS)) -> dict[str, Path]:
    """Convert each of ``sets`` (names in :data:`MIX_SETS`) to ``out_dir/<name>.parquet``."""
    from judgeforge.data.io import write_records
    from judgeforge.errors import ConfigError

    unknown = [s for s in sets if s not in MIX_SETS]
    if unknown:
        raise ConfigError(f"no mix set {unknown[0]!r} (sets: {', '.join(MIX_SETS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in sets:
        res = _convert(name)
        written[name] = Path(write_records(out / f"{name}.parquet", res.records, res.info))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m judgeforge.train.mix",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--out", default="data/mix", help="folder for <set>.parquet")
    p.add_argument("--sets", default=",".join(MIX_SETS),
                   help=f"comma list of sets to write ({', '.join(MIX_SETS)})")
    args = p.parse_args(argv)
    for name, path in write_mix(args.out, [s.strip() for s in args.sets.split(",")
                                           if s.strip()]).items():
        print(f"{name}: {path}")
    print("held-out suite sets (out of domain for a judge trained on the mix): "
          + ",".join(HELD_OUT_SUITE_SETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
