"""Bad input to ``voltx run lvm`` is refused before the run directory exists (``PhaseSpec.check``):
the error names the file and key, carries the README's exit code, and nothing is written."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from lvm_support import TINY, voltx_cmd, voltx_env, isolated  # noqa: F401 (autouse)

from voltx.errors import EXIT_CONFIG, EXIT_DATA, VoltxError
from voltx.plugins import load_plugins
from voltx.train.runner import RunRequest, execute

OBJECTS = np.array([[0.1, 0.2]] * 8, dtype=object)
BAD = {
    "pickled": ({"vectors": OBJECTS, "article_ids": np.zeros(8, dtype=np.int64)}, "key 'vectors' holds Python objects"),
    "shape": ({"context_sequences": np.zeros((4, 5)), "target_vectors": np.zeros((4, 5))},
              "key 'context_sequences' has shape [4, 5]; expected a non-empty [N, k, d]"),
    "d-mismatch": ({"context_sequences": np.ones((4, 5, 8)), "target_vectors": np.ones((4, 6))}, "d = 8 but 'target_vectors' have d = 6"),
    "nan": ({"vectors": np.array([[0.0, 1.0]] * 3 + [[np.nan, 1.0]]), "article_ids": np.zeros(4, dtype=np.int64)},
            "key 'vectors' has NaN or infinite values in 1 row(s), first at index 3"),
    "empty-split": ({"vectors": np.ones((7, 2)), "article_ids": np.zeros(7, dtype=np.int64)},
                    "2 windows leave the training part empty"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_npz_is_refused_before_the_run_exists(tmp_path, case):
    arrays, needle = BAD[case]
    bad = tmp_path / f"{case}.npz"
    np.savez(bad, **arrays)
    req = RunRequest(phase="lvm", runs_dir=str(tmp_path / "runs"), progress="plain", overrides={"data": str(bad), **TINY})
    with pytest.raises(VoltxError) as err:
        execute(req, plugins=load_plugins(refresh=True), restore_signals=True)
    assert err.value.exit_code == EXIT_DATA
    assert str(bad) in str(err.value) and needle in str(err.value)
    assert not (tmp_path / "runs").exists()  # no run directory, nothing written


def test_the_command_exits_65_with_the_message_and_no_run(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, **BAD["pickled"][0])
    proc = subprocess.run(voltx_cmd("run", "lvm", f"data={str(bad)!r}".replace("'", '"')), capture_output=True, text=True,
                          timeout=120, env=voltx_env(tmp_path / "runs"))
    assert proc.returncode == EXIT_DATA, proc.stderr[-2000:]
    assert "holds Python objects" in proc.stderr and str(bad) in proc.stderr and "np.savez(" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_settings_are_config_errors_before_the_run(tmp_path):
    req = RunRequest(phase="lvm", runs_dir=str(tmp_path / "runs"), overrides={"model": "transformer", "hidden": 30, "heads": 4})
    with pytest.raises(VoltxError, match=r"lvm\.hidden \(30\) must be a multiple of lvm\.heads \(4\)") as err:
        execute(req, plugins=load_plugins(refresh=True), restore_signals=True)
    assert err.value.exit_code == EXIT_CONFIG and not (tmp_path / "runs").exists()
