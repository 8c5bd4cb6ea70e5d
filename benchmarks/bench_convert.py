"""Converter throughput: the ``voltx data`` streaming core vs reading the same file with ``datasets``.

A 200k-row JSONL file and the same rows as parquet are generated in a temp dir. For each:

* batched   - ``load_dataset(kind, data_files=..., streaming=True).iter(batch_size=1000)``,
              counting rows: the reference (what any reader pays).
* rowwise   - ``for row in ds`` over the same streaming dataset: row-by-row iteration.
* voltx     - ``voltx.data.stream.stream`` with a trivial converter (row -> triples dict)
              that has the Arrow fast path (``convert_arrow``: column selection): the default
              ``read_hub_arrow`` (``stream_hf_arrow``: the same ``load_dataset`` stream as the
              Hub, as Arrow batches of 1000), every record validated column-wise with
              pyarrow.compute and its JSONL encoded vectorised, written atomically. HEADLINE.
* voltx_columns - the same converter with only ``convert_batch`` (Python columns, orjson).
* voltx_rows - the same converter with neither: the per-row path
              (RawRow -> convert -> validate -> encode), reported separately.

Variants run in rotated order over a few repeats (median rows/s reported). Goal: voltx ≥ 0.8×
the batched read.

    python benchmarks/bench_convert.py            # 200000 rows, 3 repeats
    python benchmarks/bench_convert.py --quick    # 50000 rows, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, median  # noqa: E402

from voltx.data.converter import Converter  # noqa: E402
from voltx.data.stream import stream  # noqa: E402


class Trivial(Converter):
    name = "bench"
    formats = ("triples",)

    def convert(self, row, fmt, language):
        d = row.data
        yield {"head": d["head"], "relation": d["relation"], "tail": d["tail"]}


class TrivialBatch(Trivial):
    """The same converter with the Python-columns fast path (``convert_batch``)."""

    def convert_batch(self, columns, fmt, language):
        return {"head": columns["head"], "relation": columns["relation"], "tail": columns["tail"]}


class TrivialArrow(Trivial):
    """The same converter with the Arrow fast path (``convert_arrow``)."""

    def convert_arrow(self, table, fmt, language):
        return table.select(["head", "relation", "tail"])


def make_files(directory: Path, n: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    heads = [f"entity {i}" for i in range(n)]
    rels = [("IsA", "PartOf", "UsedFor", "AtLocation")[i % 4] for i in range(n)]
    tails = [f"thing {i * 7 % 1000}" for i in range(n)]
    jsonl = directory / "rows.jsonl"
    with open(jsonl, "w", encoding="utf-8") as fh:
        for h, r, t in zip(heads, rels, tails):
            fh.write(json.dumps({"head": h, "relation": r, "tail": t}) + "\n")
    parquet = directory / "rows.parquet"
    pq.write_table(pa.table({"head": heads, "relation": rels, "tail": tails}), parquet, row_group_size=10_000)
    return {"json": jsonl, "parquet": parquet}


def load(kind: str, path: Path):
    import datasets

    return datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)


def run_batched(kind: str, path: Path, out: Path) -> int:
    n = 0
    for batch in load(kind, path).iter(batch_size=1000):
        n += len(batch["head"])
    return n


def run_rowwise(kind: str, path: Path, out: Path) -> int:
    n = 0
    for _row in load(kind, path):
        n += 1
    return n


def _run_stream(conv: Converter, kind: str, path: Path, out: Path) -> int:
    conv.hub_name, conv.hub_data_files = kind, str(path)
    return stream(conv, "triples", out, progress=False).written


def run_voltx(kind: str, path: Path, out: Path) -> int:
    return _run_stream(TrivialArrow(), kind, path, out)


def run_voltx_columns(kind: str, path: Path, out: Path) -> int:
    return _run_stream(TrivialBatch(), kind, path, out)


def run_voltx_rows(kind: str, path: Path, out: Path) -> int:
    return _run_stream(Trivial(), kind, path, out)


VARIANTS = {"batched": run_batched, "rowwise": run_rowwise, "voltx": run_voltx, "voltx_columns": run_voltx_columns,
            "voltx_rows": run_voltx_rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", "-n", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="50k rows, 1 repeat")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.repeats = 50_000, 1
    figures: dict = {"rows": args.rows, "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        files = make_files(tmpdir, args.rows)
        for kind, path in files.items():
            load(kind, path)  # warm: builder resolution, file listing
            rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
            names = list(VARIANTS)
            for rep in range(args.repeats):
                order = names[rep % len(names):] + names[: rep % len(names)]
                for name in order:
                    t0 = time.perf_counter()
                    n = VARIANTS[name](kind, path, tmpdir / f"out-{kind}.jsonl")
                    dt = time.perf_counter() - t0
                    assert n == args.rows, (name, n)
                    rates[name].append(n / dt)
            # The fast paths must write what the per-row path writes: checked, not assumed.
            outs = {name: tmpdir / f"check-{name}.jsonl" for name in ("voltx", "voltx_columns", "voltx_rows")}
            for name, out in outs.items():
                VARIANTS[name](kind, path, out)
            same = len({out.read_bytes() for out in outs.values()}) == 1
            assert same, f"{kind}: the fast paths' output differs from the per-row path's"
            med = {name: median(r) for name, r in rates.items()}
            ratio_batched = med["voltx"] / med["batched"]
            ratio_rowwise = med["voltx"] / med["rowwise"]
            ratio_rows = med["voltx_rows"] / med["batched"]
            ratio_columns = med["voltx_columns"] / med["batched"]
            print(f"{kind:8s} batched {med['batched']:>10,.0f} rows/s   rowwise {med['rowwise']:>10,.0f} rows/s   "
                  f"voltx {med['voltx']:>10,.0f} rows/s   voltx columns converter {med['voltx_columns']:>10,.0f} rows/s   "
                  f"voltx per-row converter {med['voltx_rows']:>10,.0f} rows/s")
            print(f"RESULT {kind}: voltx/batched = {ratio_batched:.2f} (goal >= 0.8), voltx/rowwise = {ratio_rowwise:.2f}, "
                  f"voltx columns converter/batched = {ratio_columns:.2f}, voltx per-row converter/batched = {ratio_rows:.2f}; "
                  f"output byte-identical across voltx paths: {same}")
            figures[kind] = {
                "batched_rows_per_s": round(med["batched"]),
                "rowwise_rows_per_s": round(med["rowwise"]),
                "voltx_rows_per_s": round(med["voltx"]),
                "voltx_over_batched": round(ratio_batched, 3),
                "outputs_identical": same,
                "voltx_over_rowwise": round(ratio_rowwise, 3),
                "voltx_columns_converter_rows_per_s": round(med["voltx_columns"]),
                "voltx_columns_converter_over_batched": round(ratio_columns, 3),
                "voltx_rows_converter_rows_per_s": round(med["voltx_rows"]),
                "voltx_rows_converter_over_batched": round(ratio_rows, 3),
            }
    emit_json("convert", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
