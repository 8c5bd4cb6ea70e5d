"""voltx.artifacts: the one artifact format, its atomic write, its errors and its shape check;
and artifacts written by the code before it (both older metadata formats) still load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from voltx import artifacts
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import save_tokenizer, train_bpe
from voltx.errors import EXIT_CANT_CREATE, EXIT_DATA, EXIT_NO_INPUT, CantCreateError, DataError, MissingInputError

HOW = "Run `voltx run f1`."


def meta_of(path: Path) -> dict:
    with safe_open(str(path), "pt") as fh:
        return json.loads(fh.metadata()["voltx"])


@pytest.fixture(scope="module")
def tok():
    return train_bpe([f"the cat number {i} sat on the mat {i * 7}" for i in range(200)], vocab_size=300)


def test_save_read_load_round_trip_records_kind_and_args(tmp_path):
    torch.manual_seed(0)
    dec = SlotDecoder(vocab_size=300, model_dim=64, ffn_dim=128, max_len=16)
    path = artifacts.save(tmp_path / "sub" / "d.safetensors", dec.state_dict(), "lang_decoder", dec.init_args(), phase="f1")
    assert meta_of(path) == {"kind": "lang_decoder", "args": dec.init_args(), "phase": "f1"}
    art = artifacts.read(path, "lang_decoder", HOW)
    again = artifacts.load_into(SlotDecoder(**art.args), art, HOW)
    assert all(torch.equal(a, b) for a, b in zip(dec.state_dict().values(), again.state_dict().values()))
    assert os.listdir(path.parent) == ["d.safetensors"]  # no temp file left behind


def test_shared_and_non_contiguous_tensors_are_written(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tied = {"a": base, "b": base, "row": base[1], "t": base.t()}  # tied weights, a row view, a transposed view
    artifacts.write_safetensors(tied, tmp_path / "tied.safetensors")
    got = artifacts.read(tmp_path / "tied.safetensors", "x", untagged=True).tensors
    assert got.keys() == tied.keys() and all(torch.equal(got[k], v) for k, v in tied.items())


def test_a_full_disk_removes_the_temp_file_and_exits_73(tmp_path, monkeypatch):
    out = tmp_path / "artifacts" / "x.safetensors"
    monkeypatch.setattr(artifacts, "save_tensors", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(CantCreateError, match="cannot write .*x.safetensors: No space left on device") as err:
        artifacts.save(out, {"w": torch.ones(2)}, "x")
    assert err.value.exit_code == EXIT_CANT_CREATE and os.listdir(out.parent) == []


def test_errors_name_the_file_what_was_found_and_what_to_do(tmp_path):
    with pytest.raises(MissingInputError, match=r"nope.safetensors: lang_encoder file not found. Run `voltx run f1`") as err:
        artifacts.read(tmp_path / "nope.safetensors", "lang_encoder", HOW)
    assert err.value.exit_code == EXIT_NO_INPUT
    (tmp_path / "notes.safetensors").write_text("hello")
    with pytest.raises(DataError, match=r"notes.safetensors is not a safetensors lang_encoder file \(.*\). Run") as err:
        artifacts.read(tmp_path / "notes.safetensors", "lang_encoder", HOW)
    assert err.value.exit_code == EXIT_DATA
    with pytest.raises(DataError, match="is a directory"):
        artifacts.read(tmp_path, "lang_encoder", HOW)
    artifacts.save(tmp_path / "cb.safetensors", {"entries": torch.ones(2, 3)}, "codebook")
    with pytest.raises(DataError, match=r"cb.safetensors: expected a lang_encoder file, but its metadata says 'codebook'. Run"):
        artifacts.read(tmp_path / "cb.safetensors", "lang_encoder", HOW)
    save_file({"w": torch.ones(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(DataError, match="records no kind"):
        artifacts.read(tmp_path / "bare.safetensors", "lang_encoder", HOW)
    assert artifacts.read(tmp_path / "bare.safetensors", "lang_encoder", HOW, untagged=True).kind is None
    save_file({"w": torch.ones(2)}, str(tmp_path / "bad.safetensors"), metadata={"voltx": "{oops"})
    with pytest.raises(DataError, match="metadata is not JSON"):
        artifacts.read(tmp_path / "bad.safetensors", "lang_encoder", HOW, untagged=True)


def test_the_shape_check_names_tensor_found_and_expected_shapes(tmp_path):
    small = SlotDecoder(vocab_size=300, model_dim=64, ffn_dim=128, max_len=16)
    path = artifacts.save(tmp_path / "d.safetensors", small.state_dict(), "lang_decoder", small.init_args())
    art = artifacts.read(path, "lang_decoder", HOW)
    with pytest.raises(DataError, match=r"d.safetensors: tensor 'token_embed.weight' has shape \[300, 128\], expected \[500, 128\] "
                                        r"\(was it trained with a different tokenizer or size\?\). Run") as err:
        artifacts.load_into(SlotDecoder(vocab_size=500, model_dim=64, ffn_dim=128, max_len=16), art, HOW)
    assert err.value.exit_code == EXIT_DATA
    with pytest.raises(DataError, match=r"d.safetensors: tensors .* are missing; not the weights of this CnnFrameEncoder"):
        artifacts.load_into(CnnFrameEncoder(vocab_size=300), art, HOW)


def test_run_artifacts_finds_a_run_directorys_artifacts(tmp_path):
    assert artifacts.run_artifacts(tmp_path) == tmp_path
    (tmp_path / "run.json").write_text("{}")
    assert artifacts.run_artifacts(tmp_path) == tmp_path / "artifacts"


# --- files written by the code before voltx.artifacts ------------------------------------------


def test_an_f1_stack_written_the_old_way_still_loads(tmp_path, tok):
    """foundation.save_module wrote {"kind", "args", "phase"} plus extras (F3: RAR settings as a string)."""
    from voltx_phases.lang_stack import load_lang_stack

    save_tokenizer(tok, tmp_path / "lang_tokenizer.json")
    vocab = tok.get_vocab_size()
    enc = CnnFrameEncoder(vocab_size=vocab, max_seq_len=6)
    dec = SlotDecoder(vocab_size=vocab, model_dim=64, ffn_dim=128, max_len=16)
    enc_args = {"vocab_size": vocab, "embed_dim": 128, "hidden_dim": 256, "slot_dim": 256, "max_seq_len": 6, "role_threshold": 0.05}
    dec_args = {"vocab_size": vocab, "embed_dim": 128, "model_dim": 64, "ffn_dim": 128, "max_len": 16}
    for name, kind, module, args in (("lang_encoder", "lang_encoder", enc, enc_args), ("lang_decoder", "lang_decoder", dec, dec_args)):
        meta = {"voltx": json.dumps({"kind": kind, "args": args, "phase": "f1"})}
        state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        save_file(state, str(tmp_path / f"{name}.safetensors"), metadata=meta)
    stack = load_lang_stack(tmp_path, torch.device("cpu"), need_decoder=True, phase="f2")
    assert stack.encoder.max_seq_len == 6 and stack.decoder.model_dim == 64
    assert torch.equal(stack.decoder.pos, dec.pos) and torch.equal(stack.encoder.embedding.weight, enc.embedding.weight)

    rar = {"max_iterations": 6, "dt": 0.1, "beta": 0.5, "epsilon": 0.01}
    meta = {"voltx": json.dumps({"kind": "vfn_foundation", "args": {"dim": 256}, "phase": "f3", "rar": json.dumps(rar)})}
    save_file({"w": torch.ones(1)}, str(tmp_path / "vfn_foundation.safetensors"), metadata=meta)
    art = artifacts.read(tmp_path / "vfn_foundation.safetensors", "vfn_foundation", HOW)
    assert art.args == {"dim": 256} and json.loads(art.meta["rar"]) == rar


def test_translator_files_written_the_old_way_still_load(tmp_path, tok):
    """The translator wrote {"vocab_size", "config"} without a kind; epoch and --output files had no metadata."""
    from voltx.engine.learned_translator import LearnedTranslator
    from voltx_phases.translator_train import load_weights

    save_tokenizer(tok, tmp_path / "code_tokenizer.json")
    vocab = tok.get_vocab_size()
    torch.manual_seed(0)
    enc, dec = CnnFrameEncoder(vocab_size=vocab, max_seq_len=64), SlotDecoder(vocab_size=vocab, max_len=48)
    meta = {"voltx": json.dumps({"vocab_size": vocab, "config": {"encoder": {"max_seq_len": 64}, "decoder": {"max_len": 48}}})}
    save_file(enc.state_dict(), str(tmp_path / "code_encoder.safetensors"), metadata=meta)
    save_file(dec.state_dict(), str(tmp_path / "code_decoder.safetensors"), metadata=meta)
    translator = LearnedTranslator.load(tmp_path)
    assert translator.max_len == 64 and translator.decoder.max_len == 48
    assert torch.equal(translator.decoder.pos, dec.pos)

    save_file(enc.state_dict(), str(tmp_path / "code_encoder_epoch_1.safetensors"))  # an epoch file: no metadata
    again = CnnFrameEncoder(vocab_size=vocab, max_seq_len=64)
    load_weights(again, str(tmp_path / "code_encoder_epoch_1.safetensors"), "code_encoder", HOW)
    assert torch.equal(again.role_head.weight, enc.role_head.weight)


def test_the_translator_refuses_files_from_different_runs(tmp_path, tok):
    from voltx.engine.learned_translator import LearnedTranslator

    save_tokenizer(tok, tmp_path / "code_tokenizer.json")
    enc, dec = CnnFrameEncoder(vocab_size=999), SlotDecoder(vocab_size=999, max_len=16)
    artifacts.save(tmp_path / "code_encoder.safetensors", enc.state_dict(), "code_encoder", enc.init_args())
    artifacts.save(tmp_path / "code_decoder.safetensors", dec.state_dict(), "code_decoder", dec.init_args())
    with pytest.raises(DataError, match=r"code_encoder.safetensors: vocab 999 but .*code_tokenizer.json has \d+: the files come from different runs"):
        LearnedTranslator.load(tmp_path)


def test_think_refuses_f3s_vfn_by_kind_and_loads_a_bare_small_vfn(tmp_path):
    from voltx.engine.pipeline import ThinkPipeline
    from voltx.engine.vfn import Vfn

    artifacts.save(tmp_path / "vfn_foundation.safetensors", {"w": torch.ones(1)}, "vfn_foundation", {"dim": 256})
    with pytest.raises(DataError, match="expected a vfn file, but its metadata says 'vfn_foundation'. --vfn takes"):
        ThinkPipeline.load_vfn(tmp_path / "vfn_foundation.safetensors")
    torch.manual_seed(1)
    vfn = Vfn()
    save_file(vfn.state_dict(), str(tmp_path / "small.safetensors"))
    loaded = ThinkPipeline.load_vfn(tmp_path / "small.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(vfn.state_dict().values(), loaded.state_dict().values()))
