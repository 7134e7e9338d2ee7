"""What a benchmark suite is: named sets of human-labelled data, each with how to convert it,
which dimension to grade, the task description for the prompt and the published anchors.

A suite is a small YAML file::

    name: my-suite
    description: optional text
    headline_anchors: [gpt-4o, Meta-Llama-3.1-8B-Instruct]   # anchors in the summary table
    sets:
      - name: newsroom-relevance            # unique, used as a folder name
        converter: judge-bench              # judge-bench | feedbackqa | lamp | prometheus | records
        files: [judge-bench/newsroom.json.gz]
        metric: Relevance                   # judge-bench: which graded metric
        dimension: relevance                # optional: the label dimension (default: the data's)
        task: "..."                         # optional: PromptTemplate(task=...)
        max_query_chars: 6000               # optional prompt limits
        max_response_chars: 4000
        anchors:
          judge_bench: judge-bench/results/newsroom.json.gz   # published correlations (file)
          published:                                           # or typed with their citation
            - {judge: Prometheus-2-7B, spearman: 0.643, source: "Kim et al. 2024"}

A relative path is looked up beside the YAML file first, then among the data sets shipped with
the package (:func:`judgeforge.datasets.shipped_path`). ``default`` names the suite shipped with
judgeforge (``default.yaml`` beside this module).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeforge.errors import ConfigError

__all__ = ["CONVERTERS", "SuiteSet", "Suite", "load_suite", "shipped_suites"]

CONVERTERS = ("judge-bench", "feedbackqa", "lamp", "prometheus", "records")
_SET_KEYS = {"name", "converter", "files", "metric", "dimension", "task", "max_query_chars",
             "max_response_chars", "anchors", "description"}
_ANCHOR_KEYS = {"judge_bench", "published"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SuiteSet:
    """One set of a suite (see the module docstring for the fields)."""

    name: str
    converter: str
    files: tuple[Path, ...]
    metric: str | None = None
    dimension: str | None = None
    task: str | None = None
    max_query_chars: int | None = None
    max_response_chars: int | None = None
    anchors_file: Path | None = None
    published: tuple[Mapping[str, Any], ...] = ()
    description: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings (files as paths relative to where they were found)."""
        return {"name": self.name, "converter": self.converter,
                "files": [str(f) for f in self.files], "metric": self.metric,
                "dimension": self.dimension, "task": self.task,
                "max_query_chars": self.max_query_chars,
                "max_response_chars": self.max_response_chars,
                "anchors_file": str(self.anchors_file) if self.anchors_file else None,
                "published": [dict(p) for p in self.published],
                "description": self.description}


@dataclass(frozen=True)
class Suite:
    """A named list of sets, read from a YAML file."""

    name: str
    path: Path
    sets: tuple[SuiteSet, ...]
    description: str | None = None
    headline_anchors: tuple[str, ...] = field(default_factory=tuple)

    def select(self, names: list[str] | None) -> Suite:
        """The suite restricted to ``names`` (in the suite's order); ConfigError for unknown."""
        if not names:
            return self
        known = {s.name for s in self.sets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"suite {self.name!r} has no set {unknown} (sets: "
                              f"{', '.join(sorted(known))})")
        return Suite(self.name, self.path, tuple(s for s in self.sets if s.name in names),
                     self.description, self.headline_anchors)


def shipped_suites() -> list[str]:
    """Names of the suites shipped with judgeforge (``<name>.yaml`` beside this module)."""
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def _resolve(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a file path, got {value!r}")
    p = Path(value).expanduser()
    if p.is_absolute():
        if not p.exists():
            raise ConfigError(f"{where}: {p} does not exist")
        return p
    if (base / p).exists():
        return (base / p).resolve()
    from judgeforge.datasets import shipped_path
    from judgeforge.errors import DataError

    try:
        return Path(shipped_path(value))
    except DataError:
        raise ConfigError(f"{where}: {value!r} is neither beside the suite ({base}) nor among "
                          "the shipped data sets") from None


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value.strip()


def _published(value: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of {{judge, spearman, ...}}")
    out = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("judge"), str):
            raise ConfigError(f"{w}: expected a mapping with a 'judge' name")
        for key in ("spearman", "pearson", "kendall"):
            v = item.get(key)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                                  or not -1 <= v <= 1):
                raise ConfigError(f"{w}.{key}: expected a correlation in [-1, 1], got {v!r}")
        if not any(item.get(k) is not None for k in ("spearman", "pearson", "kendall")):
            raise ConfigError(f"{w}: give at least one of spearman, pearson, kendall")
        if not isinstance(item.get("source"), str):
            raise ConfigError(f"{w}.source: cite where the number was published")
        out.append(dict(item))
    return tuple(out)


def _parse_set(raw: Any, base: Path, where: str) -> SuiteSet:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - _SET_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (known: "
                          f"{', '.join(sorted(_SET_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name: expected a file-name-safe name, got {name!r}")
    where = f"{where} ({name})"
    converter = raw.get("converter")
    if converter not in CONVERTERS:
        raise ConfigError(f"{where}.converter: one of {', '.join(CONVERTERS)}, got {converter!r}")
    files = raw.get("files")
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not files:
        raise ConfigError(f"{where}.files: expected one or more paths")
    paths = tuple(_resolve(f, base, f"{where}.files[{i}]") for i, f in enumerate(files))
    anchors = raw.get("anchors") or {}
    if not isinstance(anchors, Mapping) or set(anchors) - _ANCHOR_KEYS:
        raise ConfigError(f"{where}.anchors: a mapping with judge_bench and/or published")
    anchors_file = (_resolve(anchors["judge_bench"], base, f"{where}.anchors.judge_bench")
                    if anchors.get("judge_bench") else None)
    metric = _opt_str(raw.get("metric"), f"{where}.metric")
    if anchors_file is not None and converter == "judge-bench" and metric is None:
        raise ConfigError(f"{where}: anchors.judge_bench needs the set's metric")
    return SuiteSet(
        name=name, converter=str(converter), files=paths, metric=metric,
        dimension=_opt_str(raw.get("dimension"), f"{where}.dimension"),
        task=_opt_str(raw.get("task"), f"{where}.task"),
        max_query_chars=_opt_int(raw.get("max_query_chars"), f"{where}.max_query_chars"),
        max_response_chars=_opt_int(raw.get("max_response_chars"),
                                    f"{where}.max_response_chars"),
        anchors_file=anchors_file,
        published=_published(anchors.get("published"), f"{where}.anchors.published"),
        description=_opt_str(raw.get("description"), f"{where}.description"),
    )


def load_suite(name_or_path: str | os.PathLike[str]) -> Suite:
    """A shipped suite by name (``default``) or a suite YAML file; ConfigError if invalid."""
    import yaml

    text = str(name_or_path)
    path = Path(text).expanduser()
    if not path.is_file():
        if text in shipped_suites():
            path = _HERE / f"{text}.yaml"
        else:
            raise ConfigError(f"no suite {text!r}: not a file, nor a shipped suite "
                              f"({', '.join(shipped_suites())})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sets"), list) or not raw["sets"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'sets' list")
    base = path.resolve().parent
    sets = tuple(_parse_set(s, base, f"{path.name}: sets[{i}]")
                 for i, s in enumerate(raw["sets"]))
    names = [s.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{path}: set names must be unique: {repeated}")
    headline = raw.get("headline_anchors") or []
    if not isinstance(headline, list) or not all(isinstance(h, str) for h in headline):
        raise ConfigError(f"{path}: headline_anchors: expected a list of judge names")
    return Suite(name=str(raw.get("name") or path.stem), path=path.resolve(), sets=sets,
                 description=_opt_str(raw.get("description"), f"{path.name}: description"),
                 headline_anchors=tuple(headline))
