"""The curriculum's full preset and preflight, F1's tokenizer corpus, F3's decoder sizing
(voltx_phases.curriculum_data, voltx_phases.lang_stack): in-process, no training."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.tokenizer import train_bpe
from voltx.errors import EXIT_OK, EXIT_PREFLIGHT, ConfigError, PreflightError
from voltx_phases import lang_stack
from voltx_phases.curriculum_data import PREPARE, preflight, tokenizer_corpus
from voltx_phases.f1 import F1Config
from voltx_phases.f2 import F2Config
from voltx_phases.f3 import F3Config
from voltx_phases.f3_data import GLUE

ROOT = Path(__file__).resolve().parents[2]


def test_full_preset_preflight_names_every_missing_file_and_its_command_before_any_phase(cli_in_process, tmp_path):
    done = cli_in_process("run", "curriculum", "--preset", "full", "--runs-dir", str(tmp_path / "runs"),
                          "run.telemetry_interval=0", cwd=tmp_path)
    assert done.returncode == EXIT_PREFLIGHT, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "no phase was started" in done.stderr
    presets = tomllib.loads((ROOT / "training_config.toml").read_text())
    files = {e for p in ("f1", "f2", "f3") for k, v in presets[p]["presets"]["full"].items() if k.endswith(("_data", "_eval")) for e in v}
    assert files == set(PREPARE)  # the full presets read exactly the files the preflight knows how to make
    for path, command in PREPARE.items():
        assert f": {path}\n" in done.stderr and f"  {command}\n" in done.stderr + "\n"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["curriculum"]  # f1 never started

    shown = cli_in_process("config", "show", "curriculum", "--preset", "full")
    assert shown.returncode == EXIT_OK and 'preset = "full"' in shown.stdout
    tables = tomllib.loads(shown.stdout)  # each phase as the curriculum will run it: the files the preflight checks
    assert {e for p in ("f1", "f2", "f3") for k, v in tables[p].items() if k.endswith(("_data", "_eval")) for e in v} == files


def test_the_docs_list_exactly_the_commands_of_the_preflight():
    text = (ROOT / "docs" / "foundation.md").read_text()
    section = text.split("### Preparing the real data")[1].split("```bash")[1].split("```")[0]
    documented = {" ".join(line.split()) for line in section.strip().splitlines()}
    assert documented == set(PREPARE.values())


def test_preflight_reads_files_as_their_lists_need_and_checks_generators(tmp_path):
    triples = tmp_path / "kb.jsonl"
    triples.write_text(json.dumps({"head": "dog", "relation": "IsA", "tail": "animal"}) + "\n")
    good = F2Config(triples_data=[str(triples), "gen:concepts_gen"], triples_eval=[])
    assert preflight({"f2": good}) == 2
    wrong = F3Config(reasoning_data=[str(triples), "gen:scan_length_gen?nope=1"], reasoning_eval=["data/scan_length_test.jsonl"])
    with pytest.raises(PreflightError) as err:
        preflight({"f2": good, "f3": wrong})
    message = str(err.value)
    assert f"{triples}:1" in message and "f3.reasoning_data needs reasoning records" in message  # the file, line and format
    assert "no option 'nope'" in message
    assert "f3.reasoning_eval: data/scan_length_test.jsonl" in message and PREPARE["data/scan_length_test.jsonl"] in message
    assert err.value.exit_code == EXIT_PREFLIGHT


def test_f1_tokenizer_corpus_is_the_later_phases_training_lists():
    phases = {"f1": F1Config(tokenizer_corpus=["extra.jsonl"]), "f2": F2Config(triples_data=["kb.jsonl"], triples_eval=["kb_test.jsonl"]),
              "f3": F3Config(reasoning_data=["gen:scan_length_gen", "kb.jsonl"])}
    assert tokenizer_corpus("f1", phases) == ["extra.jsonl", "kb.jsonl", "gen:scan_length_gen"]  # no eval lists, each once
    assert tokenizer_corpus("f2", phases) is None  # only a phase with the setting gets one


def test_corpus_texts_glue_underscore_words_and_a_tokenizer_trained_on_them_keeps_actions_whole(tmp_path):
    path = tmp_path / "kb.jsonl"
    path.write_text(json.dumps({"head": "ice_cream", "relation": "IsA", "tail": "food", "meta": {"source": "x"}}) + "\n")
    texts = lang_stack.corpus_texts(["gen:scan_length_gen?count=30", str(path)])
    assert f"ice{GLUE}cream" in texts and "IsA" in texts and "x" in texts
    assert any(f"I{GLUE}TURN{GLUE}LEFT" in t for t in texts) and not any("_" in t for t in texts)
    stack = tmp_path / "stack"
    stack.mkdir()
    train_bpe(texts * 3, vocab_size=400).save(str(stack / lang_stack.LANG_TOKENIZER))
    assert lang_stack.knows_glued_words(stack)
    train_bpe(["plain english words"] * 3, vocab_size=300).save(str(stack / lang_stack.LANG_TOKENIZER))
    assert not lang_stack.knows_glued_words(stack)


def test_decoder_is_extended_to_the_longest_answer_and_a_longer_one_than_the_limit_is_refused():
    answers = ["walk", "jump jump jump jump jump jump"]
    tok = train_bpe(answers * 4, vocab_size=300)
    need = len(tok.encode(answers[1], add_special_tokens=False).ids) + 1
    decoder = SlotDecoder(vocab_size=tok.get_vocab_size(), model_dim=16, ffn_dim=16, max_len=3)
    before = decoder.pos.detach().clone()
    stack = lang_stack.LangStack(tok, None, decoder, "test")
    said = []
    assert lang_stack.fit_decoder(stack, answers, need, "f3", said.append) == need == decoder.max_len == decoder.pos.shape[0]
    assert said == [f"Decoder: 3 positions extended to {need} (the longest answer, {need - 1} tokens + EOS); f3 trains the new ones"]
    assert decoder.init_args()["max_len"] == need and bool((decoder.pos[:3] == before).all())  # trained positions kept
    with pytest.raises(ConfigError, match=re.escape(f"set f3.decoder_max_len = {need} or more")) as err:
        lang_stack.fit_decoder(stack, answers, need - 1, "f3")
    assert "1 of 2 answers" in str(err.value) and "jump jump" in str(err.value)
