"""`voltx doctor`: every check reported, failures set the exit code."""

from __future__ import annotations

import json


def test_doctor_reports_every_check(cli):
    done = cli("doctor", "--json")
    assert done.returncode == 0, done.stderr
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert set(checks) == {"python", "torch", "cuda", "nvml", "sandbox", "disk", "plugins"}
    assert checks["torch"]["status"] == "ok"
    assert checks["plugins"]["status"] == "ok" and "translator" in checks["plugins"]["detail"]
    assert all(c["status"] in ("ok", "warn", "fail") for c in checks.values())


def test_doctor_fails_on_a_full_disk(monkeypatch, capsys):
    import shutil

    from voltx.cli.main import main

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100 * 1024**2))
    assert main(["doctor"]) == 1
    assert "fail  disk" in capsys.readouterr().out
