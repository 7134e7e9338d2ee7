"""Crash-safe JSONL results: appended as they finish, resumed by row key.

One line per (row, grader)::

    {"key": "<row key>", "grader": "<config key>", "index": 3, "row_fp": "<16 hex>",
     "config_fp": "<16 hex>", "result": {...}}

``row_fp`` fingerprints what was graded (:func:`content_fingerprint` of the grader's inputs) and
``config_fp`` how (:func:`grader_fingerprint`: grader name, mode, dimensions and
scales, prompt settings, decoding options, model name and URL). A stored result is reused only
when both match; otherwise the runner grades the row again (or refuses, see the runner).

``result`` is :func:`judgeforge.graders.results.to_dict` of the score or error. Each line is
written as soon as its result exists, with one ``write`` on an ``O_APPEND`` descriptor, so it
survives a kill of the process at once. Durability against a machine crash comes from ``fsync``:
``fsync="batch"`` (default) runs it on a background thread that covers every line written
before it started (group commit: the event loop never waits on the disk, and no line is left
unsynced for longer than one fsync); ``fsync="line"`` fsyncs each line before going on (~ms per
row on ordinary disks); ``fsync="off"`` leaves it to the OS.

On open, a torn last line (no trailing newline) is cut off and its row is graded again; a line
that is not valid JSON elsewhere, or whose result is unusable (no score and no error, a score
that is not a finite number, metadata that is not an object), is reported in ``bad_lines``/
``bad_reasons`` and ignored, so its row is graded again (and it is dropped when the file is
compacted). An exclusive ``flock`` stops two runs from writing the same file.

A failed write (disk full) is a :class:`~judgeforge.errors.StorageError` naming the file; a
short write is completed or reported, and compaction leaves no temporary file behind.

Row keys (:func:`row_key`): the row's ``id`` when present, else
:func:`judgeforge.data.keys.record_key`'s content hash for pointwise records, else a sha1 of the
row's canonical JSON. An id that several rows share gets ``#`` and 16 hex digits of the row's
content (so reordering rows never swaps their results, and two different rows with one id are
both graded and kept); rows identical in content too get ``-2``, ``-3``... suffixes, in file
order (:func:`keys_from_parts`).

Resume rules (:func:`resume_decision`): a stored line is reused when its ``row_fp`` and
``config_fp`` match and it is final; a retryable error is graded again (unless
``retry_errors=False``); a mismatch is stale (graded again, or refused: :func:`stale_error`).
``GradingRunner`` (``judgeforge grade``) and the Ray job (``--engine ray``) both key, fingerprint
and decide with these functions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from judgeforge.data.keys import canonical_json, record_key, unique_ids
from judgeforge.errors import ConfigError, DataError, StateError, StorageError, UsageError
from judgeforge.graders.results import from_dict
from judgeforge.parsing import finite_score

__all__ = ["Checkpoint", "CheckpointEntry", "FsyncMode", "row_key", "row_keys",
           "content_fingerprint", "grader_fingerprint", "keys_from_parts", "row_content",
           "row_fingerprint", "resume_decision", "stale_error"]

FsyncMode = Literal["batch", "line", "off"]

log = logging.getLogger(__name__)


def row_key(row: Any) -> str:
    """A stable key for one dataset row (see the module docstring)."""
    if isinstance(row, Mapping):
        rid = row.get("id")
        if rid is not None and not isinstance(rid, bool) and str(rid) != "":
            return str(rid)
        if "input" in row and "output" in row:
            return record_key(row)
        payload = canonical_json(dict(row))
        return hashlib.sha1(payload.encode("utf-8", "surrogatepass")).hexdigest()
    if hasattr(row, "model_dump"):
        return record_key(row) if hasattr(row, "input") else row_key(row.model_dump(mode="json"))
    raise UsageError(f"cannot key a row of type {type(row).__name__}")


def row_content(row: Any) -> Any:
    """A row as its content fingerprint sees it (a record's dict form)."""
    return _row_content(row)


def _row_content(row: Any) -> Any:
    if hasattr(row, "to_dict"):
        return row.to_dict()
    if hasattr(row, "model_dump"):
        return row.model_dump(mode="json")
    return row


def content_fingerprint(value: Any) -> str:
    """16 hex digits of the sha1 of ``value``'s canonical JSON (stable across runs)."""
    payload = canonical_json(value)
    return hashlib.sha1(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def row_keys(rows: Sequence[Any]) -> list[str]:
    """Keys for every row, unique within the dataset (see the module docstring)."""
    bases = [row_key(r) for r in rows]
    counts = Counter(bases)
    return keys_from_parts([(b, content_fingerprint(_row_content(r)) if counts[b] > 1 else "")
                            for b, r in zip(bases, rows)])


def keys_from_parts(parts: Sequence[tuple[str, str]]) -> list[str]:
    """Unique keys from each row's ``(row_key, content fingerprint)``, in dataset order: the
    base key when no other row has it, else ``base#fingerprint``; exact repeats get ``-2``..."""
    counts = Counter(base for base, _ in parts)
    return unique_ids([f"{base}#{fp}" if counts[base] > 1 else base for base, fp in parts])


def row_fingerprint(row: Any, mapper: Any) -> str:
    """What a grader is given for ``row`` (its mapped inputs), fingerprinted: a stored line's
    ``row_fp``."""
    from judgeforge.graders.runner.config import apply_mapper

    try:
        return content_fingerprint(apply_mapper(row, mapper))
    except Exception:  # a row the mapper cannot read: fingerprint the row itself
        return content_fingerprint(_row_content(row))


def resume_decision(stored: Any, current: tuple[str, str], retry_errors: bool
                    ) -> tuple[str, str | None]:
    """What a rerun does with one (row, grader): ``("new", None)`` (nothing stored),
    ``("stale", what changed)``, ``("retry", None)`` or ``("reuse", None)``.

    ``stored``: None or a stored line with ``row_fp``, ``config_fp`` and ``retryable``;
    ``current``: the row's ``(row_fp, config_fp)`` now.
    """
    if stored is None:
        return "new", None
    if (stored.row_fp, stored.config_fp) != current:
        what = "grading configuration" if stored.row_fp == current[0] else "row content"
        return "stale", what
    if retry_errors and stored.retryable:
        return "retry", None
    return "reuse", None


def stale_error(where: Any, stale: Sequence[str]) -> ConfigError:
    """The error ``on_stale="refuse"`` raises for ``stale`` ("row 'k' x 'g': the ... changed")."""
    return ConfigError(
        f"{where}: {len(stale)} stored result(s) were made from other row content or another "
        f"grading configuration ({'; '.join(stale[:3])}); grade into another output, or let the "
        "rerun regrade them (on_stale='regrade')")


_GRADER_OPTIONS = ("mode", "constrained", "n", "vote", "temperature", "max_tokens",
                   "top_logprobs", "seed")


def grader_fingerprint(grader: Any, *, url: bool = True) -> str:
    """16 hex digits naming how ``grader`` grades: its name, scoring options, dimensions and
    scales, prompt settings, and its model's name and URL (not its Python class: moving code
    must not make every stored result stale). ``url=False`` leaves the URL out: the Ray job's
    endpoints are interchangeable replicas of one judge, so a rerun on other replicas grades
    the same way.

    A grader may define ``fingerprint_data()`` (a JSON-ready dict) to say it itself.
    """
    own = getattr(grader, "fingerprint_data", None)
    if callable(own):
        return content_fingerprint(own())
    data: dict[str, Any] = {"name": getattr(grader, "name", None)}
    data.update({o: getattr(grader, o) for o in _GRADER_OPTIONS if hasattr(grader, o)})
    template = getattr(grader, "template", None)
    if template is not None:
        dims = getattr(template, "dimensions", {}) or {}
        data["dimensions"] = {d: [getattr(s, "min", None), getattr(s, "max", None)]
                              for d, s in dict(dims).items()}
        settings = getattr(template, "settings", None)
        data["prompt"] = settings() if callable(settings) else repr(template)
    calibration = getattr(grader, "calibration", None)
    if calibration is not None:  # a changed map changes every calibrated score
        data["calibration"] = calibration.to_dict()
    model = getattr(grader, "model", None)
    if model is not None:
        # a managed server's URL (a free port) changes every run; its model folder does not
        where = "managed" if getattr(model, "managed", False) else getattr(model, "base_url", "")
        data["model"] = {"name": getattr(model, "name", None),
                         "model": str(getattr(model, "model", "") or ""),
                         "base_url": str(where or "") if url else "replicas"}
    return content_fingerprint(data)


def check_result(result: Any) -> dict[str, Any]:
    """``result`` when it is a usable stored result, else ``DataError`` saying why."""
    if not isinstance(result, dict):
        raise DataError(f"result is a {type(result).__name__}, not an object")
    meta = result.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise DataError(f"metadata is a {type(meta).__name__}, not an object")
    if result.get("error") is None:
        try:
            finite_score(result.get("score"), what="score")
        except DataError as exc:
            raise DataError(str(exc)) from None
    from_dict(result)
    return result


def _without_non_finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _without_non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_non_finite(v) for v in value]
    return value


@dataclass
class CheckpointEntry:
    """One stored result line."""

    key: str
    grader: str
    index: int | None
    result: dict[str, Any]
    row_fp: str | None = None
    config_fp: str | None = None

    @property
    def retryable(self) -> bool:
        """An error value marked retryable (a transport failure)."""
        r = self.result
        return r.get("error") is not None and bool((r.get("metadata") or {}).get("retryable"))

    def line(self) -> bytes:
        data = {"key": self.key, "grader": self.grader, "index": self.index,
                "row_fp": self.row_fp, "config_fp": self.config_fp, "result": self.result}
        try:
            text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
        except ValueError:  # a NaN in metadata (the score itself is checked by the runner)
            data["result"] = _without_non_finite(self.result)
            text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
        return (text + "\n").encode("utf-8", "surrogatepass")


class Checkpoint:
    """An append-only JSONL results file that a rerun resumes from."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: FsyncMode | bool = "batch"
                 ) -> None:
        self.path = Path(path)
        mode = "batch" if fsync is True else "off" if fsync is False else fsync
        if mode not in ("batch", "line", "off"):
            raise ConfigError(f"fsync must be 'batch', 'line' or 'off', not {fsync!r}")
        self.fsync: FsyncMode = mode
        self._wake = threading.Event()
        self._stop = False
        self._syncer: threading.Thread | None = None
        self.sync_error: OSError | None = None
        self.entries: dict[tuple[str, str], CheckpointEntry] = {}
        self.torn_lines = 0
        self.bad_lines = 0
        self.bad_reasons: list[str] = []
        self.superseded = 0
        self.appended = 0
        self._fd: int | None = None

    # -- opening and reading -------------------------------------------------------------------
    def open(self) -> dict[tuple[str, str], CheckpointEntry]:
        """Lock the file, cut a torn last line, and read what is already done."""
        if self.path.is_dir():
            raise ConfigError(f"{self.path} is a folder: the results file is a JSONL file "
                              "(a folder of shards is for --engine ray)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot open the results file "
                               f"({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{self.path} is being written by another run") from None
        self._fd = fd
        data = self._read_all(fd)
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a kill mid-write left a partial line: drop it, redo its row
            self.torn_lines = 1
            os.ftruncate(fd, end)
            log.warning("%s: dropped a torn last line (%d bytes)", self.path, len(data) - end)
            data = data[:end]
        for number, raw in enumerate(data.splitlines(), 1):
            self._load_line(raw, number)
        if self.bad_lines:
            log.warning("%s: %d unusable result line(s) ignored, their rows are graded again "
                        "(%s)", self.path, self.bad_lines, "; ".join(self.bad_reasons[:5]))
        if self.fsync == "batch":
            self._syncer = threading.Thread(target=self._sync_loop, name="checkpoint-fsync",
                                            daemon=True)
            self._syncer.start()
        return self.entries

    def _sync_loop(self) -> None:
        """Group commit: each fsync covers every line written before it started."""
        while True:
            self._wake.wait()
            self._wake.clear()
            fd = self._fd
            if fd is not None:
                try:
                    os.fsync(fd)
                except OSError as exc:  # reported by close(); the lines themselves are written
                    self.sync_error = exc
            if self._stop:
                return

    @staticmethod
    def _read_all(fd: int) -> bytes:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def _load_line(self, raw: bytes, number: int = 0) -> None:
        if not raw.strip():
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            fps = [data.get(f) for f in ("row_fp", "config_fp")]
            entry = CheckpointEntry(str(data["key"]), str(data["grader"]), data.get("index"),
                                    check_result(data["result"]),
                                    *(str(f) if f is not None else None for f in fps))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # deep nesting too
            self.bad_lines += 1
            self.bad_reasons.append(f"line {number}: {type(exc).__name__}: {str(exc)[:80]}")
            return
        ident = (entry.key, entry.grader)
        if ident in self.entries:
            self.superseded += 1
        self.entries[ident] = entry  # the last line for a (row, grader) wins

    # -- writing -------------------------------------------------------------------------------
    def append(self, key: str, grader: str, index: int | None, result: dict[str, Any], *,
               row_fp: str | None = None, config_fp: str | None = None) -> None:
        """Append one result line (one write, then fsync)."""
        if self._fd is None:
            raise StateError("checkpoint is not open")
        entry = CheckpointEntry(key, grader, index, result, row_fp, config_fp)
        line = entry.line()
        self._write(line)
        if (key, grader) in self.entries:
            self.superseded += 1
        self.entries[(key, grader)] = entry
        if self.fsync == "line":
            os.fsync(self._fd)
        elif self.fsync == "batch":
            self._wake.set()
        self.appended += 1

    def _write(self, line: bytes) -> None:
        """Write all of ``line``: a short write is continued, a failed one is a StorageError
        (the partial line is a torn line that the next open cuts off)."""
        assert self._fd is not None
        view = memoryview(line)
        try:
            while view:
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(0, "the write wrote nothing")
                view = view[written:]
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise StorageError(f"{self.path}: cannot write the results file ({why}); the "
                               "results so far are kept and a rerun resumes from them") from exc

    @property
    def needs_compaction(self) -> bool:
        return bool(self.torn_lines or self.bad_lines or self.superseded or self.appended)

    def compact(self, order: Iterable[tuple[str, str]]) -> None:
        """Rewrite the file atomically: one line per (row, grader), ``order`` first.

        Entries not named in ``order`` (rows of another dataset) are kept after them.
        """
        ordered: list[CheckpointEntry] = []
        seen: set[tuple[str, str]] = set()
        for ident in order:
            entry = self.entries.get(ident)
            if entry is not None and ident not in seen:
                ordered.append(entry)
                seen.add(ident)
        ordered += [e for i, e in self.entries.items() if i not in seen]
        tmp = self.path.with_name(f".{self.path.name}.compact-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                fh.writelines(e.line() for e in ordered)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            why = exc.strerror or str(exc)
            raise StorageError(f"{self.path}: cannot compact the results file ({why}); the "
                               "file is unchanged and complete") from exc
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        """Finish the last fsync, then release the lock and the descriptor."""
        if self._syncer is not None:
            self._stop = True
            self._wake.set()
            self._syncer.join()
            self._syncer = None
            if self._fd is not None:  # lines written while the last background fsync ran
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self.sync_error = exc
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing releases the flock
        if self.sync_error is not None:
            log.warning("%s: fsync failed: %s", self.path, self.sync_error)

    def __enter__(self) -> Checkpoint:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
