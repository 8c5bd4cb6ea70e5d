"""Bad input to ``voltx run trio`` is refused before the run directory exists (``PhaseSpec.check``
and the config's own checks): the message names the file or key and what to do, the error
carries the README's exit code, and no run directory is created."""

from __future__ import annotations

import json
import shutil

import pytest

from voltx.errors import EXIT_CONFIG, EXIT_DATA, EXIT_NO_INPUT, VoltxError

from trio_support import finished_run, run_trio  # noqa: F401 (finished_run: a fixture)


def refused(runs, **overrides) -> VoltxError:
    with pytest.raises(VoltxError) as err:
        run_trio(runs, **overrides)
    assert not runs.exists(), "a refused run left a run directory"
    return err.value


def test_instruction_jsonl_missing_output_names_file_line_and_field(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"input": "a", "output": "b"}) + "\n" + json.dumps({"input": "P→Q,P?Q"}) + "\n")
    err = refused(tmp_path / "runs", data=["gen:pure:0.5", f"{pairs}:0.5"])
    assert err.exit_code == EXIT_DATA
    assert f"{pairs}:2: field output: missing" in str(err)


def test_mix_weights_that_do_not_sum_to_one(tmp_path):
    err = refused(tmp_path / "runs", data=["gen:hybrid:0.6", "gen:pure:0.6"])
    assert err.exit_code == EXIT_CONFIG and "trio.data: the mix weights must sum to 1, got 0.6 + 0.6 = 1.2" in str(err)


def test_a_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "notamodel").mkdir()
    err = refused(tmp_path / "runs", base_model=str(tmp_path / "notamodel"))
    assert err.exit_code == EXIT_DATA
    assert f"{tmp_path / 'notamodel'} is not a Hugging Face model directory (it has no config.json)" in str(err)


def test_a_model_id_missing_from_the_cache_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    err = refused(tmp_path / "runs", base_model="voltx-tests/no-such-model")
    assert err.exit_code == EXIT_NO_INPUT and "huggingface-cli download voltx-tests/no-such-model" in str(err)


@pytest.mark.slow
def test_a_tokenizer_without_chat_template_when_chat_is_required(tmp_path, finished_run):
    base = tmp_path / "base"
    shutil.copytree(finished_run / "artifacts" / "base", base)
    for f in base.glob("chat_template.jinja"):
        f.unlink()
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    err = refused(tmp_path / "runs", base_model=str(base), prompt_format="chat")
    assert err.exit_code == EXIT_DATA and "has no chat template" in str(err) and 'prompt_format = "plain"' in str(err)
