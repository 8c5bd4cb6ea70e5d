"""Read back what the tracker sinks wrote, with the trackers' own record types.

- TensorBoard: event files are TFRecord files of ``Event`` protos (tensorboardX's own
  ``event_pb2``); :func:`tensorboard_scalars` applies TensorBoard's purge rule (a ``SessionLog
  START`` at step N drops the earlier files' events at steps >= N), as TensorBoard shows them.
- W&B: an offline ``.wandb`` file is W&B's transaction log (the LevelDB log format: a 7-byte
  header ``:W&B`` + magic 0xBEE1 + version, then 32 KiB blocks of crc32/length/type chunks) of
  ``wandb_internal_pb2.Record`` protos; wandb 0.31 keeps its reader in its Go core only, so the
  format's ~20 lines are here, and each chunk's checksum is checked.
- MLflow: its own client on the SQLite store.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path


def _tfrecords(path: Path):
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        yield data[pos + 12:pos + 12 + length]
        pos += 12 + length + 4  # length, its crc, the data, its crc


def tensorboard_events(logdir: Path) -> list:
    """Every Event of every event file directly in ``logdir``, file by file in name (time) order."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        for raw in _tfrecords(path):
            event = event_pb2.Event()
            event.ParseFromString(raw)
            events.append(event)
    return events


def tensorboard_scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` as TensorBoard shows it: a purge drops later steps written before it."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    for event in tensorboard_events(logdir):
        if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
            for series in out.values():
                for step in [s for s in series if s >= event.step]:
                    del series[step]
        for value in event.summary.value:
            if value.HasField("simple_value"):
                series = out.setdefault(value.tag, {})
                assert event.step not in series, f"{value.tag} step {event.step} shown twice"
                series[event.step] = value.simple_value
    return out


def tensorboard_texts(logdir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for event in tensorboard_events(logdir):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "text":
                out.setdefault(value.tag.removesuffix("/text_summary"), []).append(value.tensor.string_val[0].decode())
    return out


_BLOCK = 32768


def wandb_records(path: Path, wait: float = 30.0) -> list:
    """The ``Record`` protos of one offline ``run-*.wandb`` file, checksums checked. W&B's core
    process writes the file after ``run.finish()`` returns: wait (at most ``wait`` s) for its
    ``exit`` record, the last of a finished run."""
    deadline = time.monotonic() + wait
    while True:
        records = _wandb_records(Path(path))
        if (records and records[-1].WhichOneof("record_type") == "exit") or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's trailer too small for a chunk header
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if (kind == 0 and length == 0) or pos + 7 + length > len(data):  # the end, or a chunk still being written
            break
        chunk = data[pos + 7:pos + 7 + length]
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"bad checksum at byte {pos} of {path}"
        pending += chunk
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(records: list) -> list[dict]:
    """The logged rows: ``{key: value}`` per history record (values JSON-decoded)."""
    import json

    return [{"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def wandb_summary(records: list) -> dict:
    """The summary keys set explicitly (``run.summary[...]``), last value wins."""
    import json

    out = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for item in r.summary.update:
                if item.key:
                    out[item.key] = json.loads(item.value_json)
    return out
