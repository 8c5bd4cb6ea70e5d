"""`voltx doctor`: every check reported; a failed check exits 84 (not 1, which means a bug);
a runs folder runs cannot write to and a broken ./training_config.toml are failed checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from voltx.errors import EXIT_CHECK_FAILED, EXIT_CODES


def test_doctor_reports_every_check(cli_in_process):
    done = cli_in_process("doctor", "--json")
    assert done.returncode == 0, done.stderr
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert set(checks) == {"python", "torch", "cuda", "gpus", "nvml", "sandbox", "disk", "runs", "config", "plugins"}
    assert checks["torch"]["status"] == "ok"
    import torch

    if not torch.cuda.is_available():  # what --nproc-per-node would use here
        assert "--nproc-per-node N starts N CPU processes with gloo" in checks["gpus"]["detail"]
    assert checks["plugins"]["status"] == "ok" and "translator" in checks["plugins"]["detail"]
    assert checks["runs"]["status"] == "ok" and checks["config"]["status"] == "ok"
    assert all(c["status"] in ("ok", "warn", "fail") for c in checks.values())


def test_doctor_fails_on_a_full_disk_with_its_documented_code(monkeypatch, capsys):
    from voltx.cli.main import main

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100 * 1024**2))
    assert main(["doctor"]) == EXIT_CHECK_FAILED != 1
    assert "fail  disk" in capsys.readouterr().out
    assert "doctor" in EXIT_CODES[EXIT_CHECK_FAILED]


def checks_of(proc) -> dict:
    return {c["check"]: c for c in json.loads(proc.stdout)["checks"]}


def test_doctor_fails_on_a_read_only_runs_folder(tmp_path):
    runs = tmp_path / "ro-runs"
    runs.mkdir()
    doctor = [sys.executable, "-m", "voltx", "doctor", "--json", "--runs-dir", str(runs)]
    if os.geteuid() != 0:
        runs.chmod(0o555)
        proc = subprocess.run(doctor, capture_output=True, text=True, timeout=300)
    else:  # root writes through permission bits: make the folder a read-only mount, as a real one is
        if not shutil.which("unshare"):
            pytest.skip("running as root without unshare: cannot make a read-only folder")
        script = f'mount -t tmpfs -o ro voltx-ro {runs} && exec "$@"'
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *doctor], capture_output=True, text=True, timeout=300)
        if "mount" in proc.stderr and not proc.stdout:
            pytest.skip(f"cannot mount a read-only tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == EXIT_CHECK_FAILED, proc.stderr
    check = checks_of(proc)["runs"]
    assert check["status"] == "fail"
    assert str(runs) in check["detail"] and "not writable" in check["detail"] and "--runs-dir" in check["detail"]


def test_doctor_fails_when_the_runs_folder_cannot_be_created(cli_in_process, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    proc = cli_in_process("doctor", "--json", "--runs-dir", str(blocker / "runs"))
    assert proc.returncode == EXIT_CHECK_FAILED
    assert checks_of(proc)["runs"]["status"] == "fail" and "cannot be created" in checks_of(proc)["runs"]["detail"]
    proc = cli_in_process("doctor", "--json", "--runs-dir", str(blocker))
    assert "is not a directory" in checks_of(proc)["runs"]["detail"]


def test_doctor_reports_a_broken_training_config(cli_in_process, tmp_path):
    (tmp_path / "training_config.toml").write_text('[run]\nseed = "one"\n\n[translator.encoder]\nbatchsize = 8\n')
    proc = cli_in_process("doctor", "--json", cwd=tmp_path)
    assert proc.returncode == EXIT_CHECK_FAILED, proc.stderr
    check = checks_of(proc)["config"]
    assert check["status"] == "fail"
    assert "training_config.toml:2" in check["detail"] and "run.seed" in check["detail"]
    assert "training_config.toml:5" in check["detail"] and "did you mean 'batch_size'" in check["detail"]
    assert "Traceback" not in proc.stderr


def test_doctor_reports_a_config_that_is_not_toml(cli_in_process, tmp_path):
    (tmp_path / "training_config.toml").write_text("[run\nseed = 1\n")
    proc = cli_in_process("doctor", cwd=tmp_path)
    assert proc.returncode == EXIT_CHECK_FAILED
    assert "fail  config" in proc.stdout and "line 1" in proc.stdout
