"""Data sets shipped inside the package (as package data), found the same way from a wheel or a
checkout.

Each set is a folder ``<set>/`` beside this file holding its (gzip-compressed) files, the source's
``LICENSE`` and a ``PROVENANCE.md`` (source repository @ commit, path, licence, who made the
labels)::

    from judgeforge.datasets import shipped_path
    from judgeforge.data.converters.prometheus import convert_prometheus

    loaded = convert_prometheus(shipped_path("prometheus-absolute/vicuna_eval.json.gz"))
"""

from __future__ import annotations

from pathlib import Path

from judgeforge._resources import package_dir
from judgeforge.errors import DataError

__all__ = ["PANDALM_VERDICT_FILES", "PREFERENCE_FILES", "PROMETHEUS_FILES", "prometheus_files",
           "shipped_path", "shipped_sets"]

#: The demo's and the CPU recipe's default data: the Prometheus absolute-grading sets.
PROMETHEUS_FILES = ("prometheus-absolute/mt_bench_eval.json.gz",
                    "prometheus-absolute/vicuna_eval.json.gz")

#: The human-labelled pairwise benchmark sets (``judgeforge bench preference``'s defaults):
#: name -> shipped file, converted by ``judgeforge.data.converters.<name>.convert_<name>``.
PREFERENCE_FILES = {"pandalm": "pandalm/testset-v1.json.gz",
                    "hhh": "hhh-alignment/hhh_alignment_eval.json.gz"}
#: Published judges' verdicts on PandaLM's items (read with
#: ``judgeforge.data.converters.pandalm.published_verdicts``).
PANDALM_VERDICT_FILES = {"GPT-3.5": "pandalm/gpt-3.5-turbo-testset-v1.json.gz",
                         "PandaLM-7B": "pandalm/pandalm-7b-testset-v1.json.gz"}


def _root() -> Path:
    return package_dir(__name__, "the shipped data sets", DataError)


def shipped_sets() -> list[str]:
    """The names of the shipped sets (folders beside this module)."""
    return sorted(p.name for p in _root().iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")))


def shipped_path(relative: str) -> Path:
    """The file or folder ``relative`` (e.g. ``"prometheus-absolute/vicuna_eval.json.gz"``)
    among the shipped data sets; DataError naming the shipped sets when it is not there."""
    root = _root()
    path = root.joinpath(*Path(relative).parts)
    if ".." in Path(relative).parts or Path(relative).is_absolute() or not path.exists():
        raise DataError(f"no shipped data {relative!r} in {root} (sets: "
                        f"{', '.join(shipped_sets()) or 'none'})")
    return path


def prometheus_files() -> list[Path]:
    """The shipped Prometheus MT-Bench and Vicuna files (320 + 320 rows, GPT-4 labels)."""
    return [shipped_path(name) for name in PROMETHEUS_FILES]
