"""Crash-safe checkpoints: round trip, pruning, leftovers, and processes killed mid-save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from voltx.errors import EXIT_CANT_CREATE, CantCreateError, DataError
from voltx.runs.checkpoints import (
    COMMITTED,
    Checkpoint,
    committed,
    damage,
    newest_intact,
    save_checkpoint,
    set_aside,
)


def tensors(step: int) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(step)
    return {
        "model": {"w": torch.randn(4, 3, generator=g), "b": torch.arange(3, dtype=torch.float32) + step},
        "extra": {"rng": torch.randint(0, 255, (16,), dtype=torch.uint8, generator=g)},
    }


def assert_tensors_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype
        assert torch.equal(got[k], want[k]), k


def test_save_and_latest_round_trip(tmp_path):
    root = tmp_path / "checkpoints"
    t = tensors(7)
    path = save_checkpoint(root, 7, t, {"epoch": 2, "sampler": {"position": 99}, "rng": [1, 2, 3]})
    assert path == root / "step-7"
    assert (path / COMMITTED).is_file()
    ckpt = newest_intact(root)[0]
    assert ckpt is not None and ckpt.path == path and ckpt.step == 7
    assert ckpt.state == {"step": 7, "epoch": 2, "sampler": {"position": 99}, "rng": [1, 2, 3]}
    assert_tensors_equal(ckpt.tensors("model"), t["model"])
    assert_tensors_equal(ckpt.tensors("extra"), t["extra"])
    assert not list(root.glob(".tmp-*"))


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    # tied weights (one tensor under two names), a contiguous row view and a transposed view
    tied = {"a": base, "b": base, "row": base[1], "t": base.t()}
    save_checkpoint(tmp_path, 1, {"model": tied}, {})
    got = newest_intact(tmp_path)[0].tensors("model")
    assert_tensors_equal(got, {"a": base, "b": base, "row": base[1], "t": base.t()})


def test_no_checkpoint_is_none(tmp_path):
    assert newest_intact(tmp_path / "absent")[0] is None
    (tmp_path / "empty").mkdir()
    assert newest_intact(tmp_path / "empty")[0] is None


def test_pruning_keeps_the_newest(tmp_path):
    for step in (10, 20, 30, 40, 50):
        save_checkpoint(tmp_path, step, tensors(step), {}, keep=2)
    assert [p.name for p in committed(tmp_path)] == ["step-40", "step-50"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-40", "step-50"]
    save_checkpoint(tmp_path, 60, tensors(60), {}, keep=3)
    assert [p.name for p in committed(tmp_path)] == ["step-40", "step-50", "step-60"]
    save_checkpoint(tmp_path, 70, tensors(70), {}, keep=0)  # never prunes the one just written
    assert [p.name for p in committed(tmp_path)] == ["step-70"]


def test_steps_sort_numerically(tmp_path):
    for step in (9, 10, 100):
        save_checkpoint(tmp_path, step, tensors(step), {}, keep=5)
    assert newest_intact(tmp_path)[0].step == 100


def test_same_step_saved_again_replaces_it(tmp_path):
    save_checkpoint(tmp_path, 5, tensors(5), {"v": 1})
    save_checkpoint(tmp_path, 5, tensors(6), {"v": 2})
    ckpt = newest_intact(tmp_path)[0]
    assert ckpt.step == 5 and ckpt.state["v"] == 2
    assert_tensors_equal(ckpt.tensors("model"), tensors(6)["model"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-5"]


def test_uncommitted_and_temp_dirs_are_ignored_then_cleaned(tmp_path):
    save_checkpoint(tmp_path, 1, tensors(1), {})
    half = tmp_path / "step-2"  # renamed but never marked committed
    half.mkdir()
    (half / "state.json").write_text(json.dumps({"step": 2}))
    tmp = tmp_path / ".tmp-step-3-999999"  # a process that died mid-write
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"\x00" * 10)
    assert newest_intact(tmp_path)[0].step == 1
    save_checkpoint(tmp_path, 4, tensors(4), {}, keep=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-1", "step-4"]
    assert newest_intact(tmp_path)[0].step == 4


def test_unreadable_state_falls_back_to_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 1, tensors(1), {}, keep=5)
    save_checkpoint(tmp_path, 2, tensors(2), {}, keep=5)
    (tmp_path / "step-2" / "state.json").write_text("{trunc")
    assert newest_intact(tmp_path)[0].step == 1


def test_corrupt_tensor_file_is_a_data_error(tmp_path):
    save_checkpoint(tmp_path, 1, tensors(1), {})
    (tmp_path / "step-1" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="model.safetensors"):
        Checkpoint(tmp_path / "step-1", 1, {}).tensors("model")


# --- a process killed while it writes a checkpoint -----------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys, pathlib
    sys.path.insert(0, {tests_dir!r})
    from test_checkpoints import tensors
    from voltx.runs.checkpoints import save_checkpoint

    root = pathlib.Path({root!r})
    save_checkpoint(root, 1, tensors(1), {{"epoch": 1}})
    {patch}
    save_checkpoint(root, 2, tensors(2), {{"epoch": 2}})
    print("not killed")
    """
)

KILL_IN_SAVE_FILE = """
import safetensors.torch
def dying_save_file(tensors, filename, metadata=None):
    with open(filename, "wb") as fh:
        fh.write(b"\\x00" * 64)  # half a file
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
safetensors.torch.save_file = dying_save_file
"""

KILL_AT_COMMIT_MARKER = """
_write_text = pathlib.Path.write_text
def dying_write_text(self, *args, **kwargs):
    if self.name == "COMMITTED":  # step-2 is renamed into place; die before marking it
        os.kill(os.getpid(), signal.SIGKILL)
    return _write_text(self, *args, **kwargs)
pathlib.Path.write_text = dying_write_text
"""


def kill_mid_save(tmp_path, patch: str) -> subprocess.CompletedProcess:
    root = tmp_path / "checkpoints"
    script = CHILD.format(tests_dir=str(Path(__file__).parent), root=str(root), patch=patch.strip())
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def assert_step_1_survives(root):
    ckpt = newest_intact(root)[0]
    assert ckpt is not None and ckpt.step == 1
    assert ckpt.state == {"step": 1, "epoch": 1}
    assert_tensors_equal(ckpt.tensors("model"), tensors(1)["model"])
    assert_tensors_equal(ckpt.tensors("extra"), tensors(1)["extra"])


def test_killed_while_writing_tensors_keeps_the_previous_checkpoint(tmp_path):
    proc = kill_mid_save(tmp_path, KILL_IN_SAVE_FILE)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "not killed" not in proc.stdout
    root = tmp_path / "checkpoints"
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".tmp-step-2-")]
    assert leftovers  # the kill really happened mid-write
    assert_step_1_survives(root)
    save_checkpoint(root, 3, tensors(3), {}, keep=5)  # the next save cleans up after the dead writer
    assert sorted(p.name for p in root.iterdir()) == ["step-1", "step-3"]


def test_killed_before_the_commit_marker_keeps_the_previous_checkpoint(tmp_path):
    proc = kill_mid_save(tmp_path, KILL_AT_COMMIT_MARKER)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    root = tmp_path / "checkpoints"
    assert (root / "step-2" / "model.safetensors").is_file()  # renamed into place, not committed
    assert_step_1_survives(root)
    save_checkpoint(root, 3, tensors(3), {}, keep=5)
    assert sorted(p.name for p in root.iterdir()) == ["step-1", "step-3"]


# --- damaged after commit, and a full disk ------------------------------------------------------


@pytest.mark.parametrize("spoil, why", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-9]), "model.safetensors has"),
    (lambda d: (d / "extra.safetensors").unlink(), "extra.safetensors is missing"),
    (lambda d: (d / "state.json").write_text('{"step": 2'), "state.json or COMMITTED is not valid"),
])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_newest_intact_one(tmp_path, spoil, why):
    save_checkpoint(tmp_path, 1, tensors(1), {}, keep=5)
    save_checkpoint(tmp_path, 2, tensors(2), {}, keep=5)
    spoil(tmp_path / "step-2")
    found, damaged = newest_intact(tmp_path)
    assert found.step == 1 and [p.name for p, _ in damaged] == ["step-2"] and why in damaged[0][1]
    assert_tensors_equal(found.tensors("model"), tensors(1)["model"])


def test_a_truncated_file_of_a_checkpoint_from_before_the_file_list_is_found_by_its_header(tmp_path):
    save_checkpoint(tmp_path, 1, tensors(1), {})
    marker = tmp_path / "step-1" / COMMITTED
    marker.write_text(json.dumps({"step": 1, "time": 0}))  # older markers list no files
    assert damage(tmp_path / "step-1") is None
    model = tmp_path / "step-1" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-4])
    assert "model.safetensors is truncated" in damage(tmp_path / "step-1")


def test_a_set_aside_checkpoint_is_never_loaded_nor_kept_by_pruning(tmp_path):
    for step in (1, 2):
        save_checkpoint(tmp_path, step, tensors(step), {}, keep=2)
    (tmp_path / "step-2" / "model.safetensors").write_bytes(b"\0" * 16)
    found, damaged = newest_intact(tmp_path)
    set_aside(*damaged[0])
    assert committed(tmp_path) == [tmp_path / "step-1"] and "DAMAGED" in os.listdir(tmp_path / "step-2")
    save_checkpoint(tmp_path, 3, tensors(3), {}, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-1", "step-3"]


def test_disk_full_while_saving_removes_the_partial_checkpoint_and_keeps_the_previous(tmp_path, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    save_checkpoint(tmp_path, 1, tensors(1), {})
    real = safetensors.torch.save_file

    def full(tensors_, filename, metadata=None):
        if filename.endswith("extra.safetensors"):
            Path(filename).write_bytes(b"\0" * 10)
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors_, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(CantCreateError) as err:
        save_checkpoint(tmp_path, 2, tensors(2), {})
    assert err.value.exit_code == EXIT_CANT_CREATE == 73
    message = str(err.value)
    assert "No space left on device" in message and ".tmp-step-2-" in message and "MiB free" in message
    assert f"{tmp_path / 'step-1'} is kept" in message and "keep_checkpoints" in message
    assert os.listdir(tmp_path) == ["step-1"] and newest_intact(tmp_path)[0].step == 1

