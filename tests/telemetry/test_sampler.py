"""The system.jsonl record: schema and values, the watched process, and read_latest_sample."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import fake_pynvml_gpus as fake_nvml
from voltx.telemetry import Sampler, read_latest_sample

SCHEMA = {"time", "host", "cpu_percent", "ram_used", "ram_total", "disk_path", "disk_free", "disk_total", "proc", "gpus", "gpu_error"}
GPU_SCHEMA = {"index", "name", "util", "mem_used", "mem_total", "temp", "power_w", "power_limit_w", "processes"}


def test_record_schema_and_types(tmp_path):
    sampler = Sampler(tmp_path, os.getpid(), nvml=fake_nvml.make())
    rec = sampler.sample()
    sampler.close()
    assert set(rec) == SCHEMA
    assert rec["host"] == socket.gethostname() and isinstance(rec["time"], float)
    assert isinstance(rec["cpu_percent"], float) and 0 <= rec["cpu_percent"] <= 100 * os.cpu_count()
    assert 0 < rec["ram_used"] <= rec["ram_total"] and 0 < rec["disk_free"] <= rec["disk_total"]
    assert rec["disk_path"] == str(tmp_path)
    assert rec["proc"]["pid"] == os.getpid() and rec["proc"]["rss"] > 10 * 1024**2  # this pytest process
    assert all(set(g) == GPU_SCHEMA for g in rec["gpus"]) and len(rec["gpus"]) == 2
    assert rec["gpu_error"] is None
    json.dumps(rec, allow_nan=False)  # a valid JSONL line


def test_runs_root_that_does_not_exist_yet_uses_its_parent_disk(tmp_path):
    rec = Sampler(tmp_path / "not" / "yet", nvml=fake_nvml.make()).sample()
    assert rec["disk_path"] == str(tmp_path / "not" / "yet") and rec["disk_total"] > 0 and rec["proc"] is None


def test_watched_process_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    sampler = Sampler(".", child.pid, nvml=fake_nvml.make(init_error=fake_nvml.NVMLError_LibraryNotFound("x")))
    child.wait()
    assert not sampler.watched_alive()
    rec = sampler.sample()
    assert rec["proc"] is None and rec["gpus"] == [] and "no NVIDIA driver" in rec["gpu_error"]


def test_read_latest_sample_skips_a_half_written_last_line(tmp_path):
    assert read_latest_sample(tmp_path) is None  # no system.jsonl yet
    path = tmp_path / "system.jsonl"
    path.write_text('{"time": 1.0}\n{"time": 2.0}\n{"time": 3', encoding="utf-8")
    assert read_latest_sample(tmp_path) == {"time": 2.0}
    path.write_text('{"time": 1.0}\nnot json\n', encoding="utf-8")
    assert read_latest_sample(tmp_path) == {"time": 1.0}
    # Only the tail is read: a long file still gives its last record.
    path.write_text("".join(json.dumps({"time": float(i), "pad": "x" * 200}) + "\n" for i in range(2000)), encoding="utf-8")
    assert read_latest_sample(tmp_path, tail_bytes=1000)["time"] == 1999.0
