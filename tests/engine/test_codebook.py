"""The codebook: build, exact and HNSW search, quantization error, files (safetensors, VXCB),
and the spherical mini-batch k-means that initialises it."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from voltx.engine.codebook import EXACT_BELOW, MAX_ENTRIES, Codebook, CodebookError, kmeans
from voltx.errors import DataError, MissingInputError


def unit_rows(n: int, seed: int, dim: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, dim, generator=g), dim=1)


# --- build and search --------------------------------------------------------------------------


def test_entries_are_normalised_and_quantize_to_themselves():
    g = torch.Generator().manual_seed(1)
    raw = torch.randn(300, 256, generator=g) * torch.rand(300, 1, generator=g).add(0.1) * 7
    cb = Codebook(raw)
    assert cb.index_kind == "flat" and cb.k == len(cb) == 300
    assert torch.allclose(cb.entries.norm(dim=1), torch.ones(300), atol=1e-6)
    assert torch.allclose(cb.entries, F.normalize(raw, dim=1), atol=1e-6)
    ids, vectors = cb.quantize(raw * 3.0)  # any positive multiple of an entry finds that entry
    assert torch.equal(ids, torch.arange(300))
    assert torch.equal(vectors, cb.entries)
    # leading dims are kept; ids are int64
    ids, vectors = cb.quantize(cb.entries[:6].reshape(2, 3, 256))
    assert ids.dtype == torch.int64 and ids.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert vectors.shape == (2, 3, 256)


def test_quantize_finds_the_exact_nearest_entry_for_small_codebooks():
    cb = Codebook(unit_rows(500, 2))
    q = torch.randn(200, 256, generator=torch.Generator().manual_seed(3))
    ids, _ = cb.quantize(q)
    assert torch.equal(ids, (q @ cb.entries.T).argmax(dim=1))


@pytest.mark.parametrize(
    "entries, needle",
    [
        (torch.zeros(3, 128), "dim 128"),
        (torch.zeros(3, 256, 1), "[K, 256]"),
        (torch.cat([unit_rows(2, 0), torch.zeros(1, 256)]), "entry 2 is a zero vector"),
        (torch.cat([unit_rows(1, 0), torch.full((1, 256), float("nan"))]), "entry 1 contains NaN"),
        (torch.ones(MAX_ENTRIES + 1, 256), "65,536 entries"),
        (torch.zeros(0, 256), "1 to 65,536"),
    ],
)
def test_bad_entries_are_refused(entries, needle):
    with pytest.raises(CodebookError) as err:
        Codebook(entries)
    assert needle in str(err.value)


def test_hnsw_recall_against_exact_search():
    k = EXACT_BELOW  # the smallest size "auto" indexes with HNSW (M=24, efConstruction=200, efSearch=32)
    entries = unit_rows(k, 4)
    cb = Codebook(entries)
    assert cb.index_kind == "hnsw"
    g = torch.Generator().manual_seed(5)
    src = torch.randint(k, (3000,), generator=g)
    # queries at cosine ~0.8 from an entry: what a codebook meeting "error < 0.15" gets asked
    q = entries[src] + 0.75 * F.normalize(torch.randn(3000, 256, generator=g), dim=1)
    ids, _ = cb.quantize(q)
    exact = (q @ cb.entries.T).argmax(dim=1)
    assert (ids == exact).float().mean() >= 0.95
    # the flat index on the same entries is exact
    flat_ids, _ = Codebook(entries, index="flat").quantize(q)
    assert torch.equal(flat_ids, exact)


def test_quantization_error_is_mean_one_minus_cosine():
    cb = Codebook(torch.eye(256)[:2])  # entries e0, e1
    x = torch.zeros(4, 256)
    x[0, 0] = 2.0                        # on e0: cos 1
    x[1, 0], x[1, 1] = 3.0, 3.0          # between e0 and e1: cos 1/sqrt(2)
    x[2, 1], x[2, 5] = 1.0, math.sqrt(3)  # cos 1/2 with e1
    # x[3] is a zero row: cosine 0, error 1
    expected = (0.0 + (1 - 1 / math.sqrt(2)) + 0.5 + 1.0) / 4
    assert cb.quantization_error(x) == pytest.approx(expected, abs=1e-6)
    assert cb.quantization_error(cb.entries) == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(cb.cosines(x), torch.tensor([1.0, 1 / math.sqrt(2), 0.5, 0.0]), atol=1e-6)


# --- files -------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    cb = Codebook(unit_rows(100, 6))
    path = cb.save(tmp_path / "sub" / "codebook.safetensors")
    back = Codebook.load(path)
    assert torch.equal(back.entries, cb.entries)
    q = unit_rows(50, 7)
    assert torch.equal(back.quantize(q)[0], cb.quantize(q)[0])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["voltx"]) == {"kind": "codebook", "version": 1, "k": 100, "dim": 256}
    assert not [p for p in path.parent.iterdir() if p.name != "codebook.safetensors"]  # no temp file left


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(MissingInputError, match="nope.safetensors"):
        Codebook.load(tmp_path / "nope.safetensors")
    text = tmp_path / "notes.safetensors"
    text.write_text("not a codebook at all")
    with pytest.raises(DataError, match="notes.safetensors is not a safetensors codebook"):
        Codebook.load(text)
    save_file({"weights": torch.zeros(2, 256)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DataError, match=r"other\.safetensors: not a codebook: it has no 'entries'"):
        Codebook.load(tmp_path / "other.safetensors")
    save_file({"entries": unit_rows(4, 0, dim=128)}, str(tmp_path / "small.safetensors"))
    with pytest.raises(DataError, match=r"small\.safetensors: codebook entries have dim 128, expected 256"):
        Codebook.load(tmp_path / "small.safetensors")
    save_file({"entries": unit_rows(4, 0)}, str(tmp_path / "lying.safetensors"), metadata={"voltx": json.dumps({"kind": "codebook", "k": 5})})
    with pytest.raises(DataError, match="k=5 but 'entries' has 4 rows"):
        Codebook.load(tmp_path / "lying.safetensors")


def vxcb_bytes(rows: torch.Tensor, *, magic=b"VXCB", version=1, count=None, dim=256) -> bytes:
    header = struct.pack("<4sIII", magic, version, rows.shape[0] if count is None else count, dim)
    return header + struct.pack(f"<{rows.numel()}f", *rows.flatten().tolist())


def test_vxcb_read_and_write(tmp_path):
    rows = torch.zeros(3, 256)
    rows[0, 0], rows[1, 1], rows[2, 0], rows[2, 2] = 1.0, -2.0, 3.0, 4.0
    path = tmp_path / "codebook_code.bin"
    path.write_bytes(vxcb_bytes(rows))
    cb = Codebook.load_vxcb(path)
    assert cb.k == 3
    assert torch.allclose(cb.entries[2, :3], torch.tensor([0.6, 0.0, 0.8]))
    assert cb.entries[1, 1] == -1.0
    out = cb.save_vxcb(tmp_path / "again.bin")
    assert out.read_bytes() == vxcb_bytes(cb.entries)
    assert torch.equal(Codebook.load_vxcb(out).entries, cb.entries)


def test_vxcb_errors(tmp_path):
    rows = unit_rows(3, 8)
    good = vxcb_bytes(rows)
    cases = {
        "short.bin": (good[:-4], f"file has {len(good) - 4} bytes, expected {len(good)} for count 3"),
        "long.bin": (good + b"\0" * 8, f"file has {len(good) + 8} bytes, expected {len(good)} for count 3"),
        "magic.bin": (vxcb_bytes(rows, magic=b"VXCC"), "not a VXCB codebook"),
        "version.bin": (vxcb_bytes(rows, version=2), "VXCB version 2 is not supported"),
        "dim.bin": (vxcb_bytes(rows, dim=128), "VXCB dim is 128, expected 256"),
        "count.bin": (vxcb_bytes(rows, count=70_000), "VXCB count is 70,000"),
        "tiny.bin": (b"VXCB", "too short"),
    }
    for name, (data, needle) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as err:
            Codebook.load_vxcb(tmp_path / name)
        assert name in str(err.value) and needle in str(err.value), (name, str(err.value))


# --- k-means -----------------------------------------------------------------------------------


def clusters(n_clusters: int, per: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(n_clusters, 256, generator=g), dim=1)
    labels = torch.arange(n_clusters).repeat_interleave(per)
    points = centers[labels] + noise * F.normalize(torch.randn(len(labels), 256, generator=g), dim=1)
    return points, labels, centers


def test_kmeans_recovers_well_separated_clusters():
    points, labels, centers = clusters(8, 60, 0.25, seed=9)  # each point at cosine ~0.97 from its center
    seen = []
    cents = kmeans(points, 8, iters=20, batch=128, seed=42, init_sample=300, on_epoch=lambda e, m: seen.append((e, m)))
    assert cents.shape == (8, 256)
    assert torch.allclose(cents.norm(dim=1), torch.ones(8), atol=1e-5)
    match = centers @ cents.T  # every true center has its own centroid, very close
    assert match.max(dim=1).values.min() > 0.97
    assert sorted(match.argmax(dim=1).tolist()) == list(range(8))
    assigned = (F.normalize(points, dim=1) @ cents.T).argmax(dim=1)
    for c in range(8):  # clusters are pure
        assert assigned[labels == c].unique().numel() == 1
    assert seen and seen[0][0] == 1 and len(seen) <= 20
    assert seen[-1][1] < seen[0][1]
    again = kmeans(points, 8, iters=20, batch=128, seed=42, init_sample=300)
    assert torch.equal(cents, again)  # deterministic for a seed


def test_kmeans_stops_at_tolerance_and_validates_input():
    points, _, _ = clusters(4, 30, 0.2, seed=10)
    epochs = []
    kmeans(points, 4, iters=50, batch=512, tol=1e-3, on_epoch=lambda e, m: epochs.append(m))
    assert len(epochs) < 50 and epochs[-1] < 1e-3 and all(m >= 1e-3 for m in epochs[:-1])
    with pytest.raises(DataError, match="need at least k=10 vectors, got 5"):
        kmeans(points[:5], 10)
    with pytest.raises(DataError, match="row 1 is a zero vector"):
        kmeans(torch.cat([points[:1], torch.zeros(1, 256), points[2:]]), 2)
    with pytest.raises(DataError, match="NaN or inf"):
        kmeans(torch.full((4, 256), float("inf")), 2)
