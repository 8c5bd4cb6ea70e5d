"""Training code of the codebook phase (imported only when the phase runs).

Texts come from ``.py``/``.txt`` files or JSONL (``content``/``code`` field), 50-50,000
characters each, as for the tokenizer. Each text becomes slot vectors in one of two ways:

* with ``encoder`` and ``tokenizer`` set: the trained CNN code encoder's frame, one R0
  vector per active slot (the JA.1 plan: cluster the D1 encoder's embeddings);
* otherwise the original's stub translator: every lower-cased, whitespace-separated
  word is ``seeded_unit_vector(fnv1a64(word))``. (The stub put only the first 16 words
  of a text into its one frame; here every word counts, i.e. the text is read as
  consecutive 16-word frames, so a big corpus is not reduced to its files' first lines.)

At most ``sample + holdout`` vectors are kept (a uniform reservoir sample of all that
were produced); ``holdout`` of them (at most a tenth) are held out, k-means runs on the
rest, and the quantization error (mean ``1 - cos`` to the nearest entry, through the
codebook's own index) on the held-out vectors is the deliverable: < 0.15 (Phase F2), and
past the error of a single-entry codebook (the vectors' mean), which needs no k-means
(:mod:`voltx.engine.codebook_baselines`; a random codebook is the ablation).

k-means has no per-step state worth checkpointing: a preempted run stops between
epochs and ``--resume`` starts it again from the corpus.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch

from voltx.engine.cnn_frame_encoder import ENCODER_KINDS, CnnFrameEncoder
from voltx.engine.codebook import Codebook, kmeans
from voltx.engine.codebook_baselines import reference_errors
from voltx.engine.seeded import fnv1a64, seeded_unit_vector
from voltx.engine.tokenizer import corpus_texts, encode_batch, load_tokenizer
from voltx.errors import ConfigError, DataError, MissingInputError, Preempted
from voltx_phases.codebook import ARTIFACT, CodebookConfig
from voltx_phases.translator_train import load_weights


def check_settings(cfg: CodebookConfig) -> None:
    """Config mistakes, found before any corpus is read."""
    if not 1 <= cfg.k <= 65_536:
        raise ConfigError(f"codebook.k must be between 1 and 65,536 (u16 ids), got {cfg.k}")
    for name in ("iters", "batch", "init_sample", "max_files", "max_seq_len", "encode_batch"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"codebook.{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.sample < 0 or cfg.holdout < 0:
        raise ConfigError("codebook.sample and codebook.holdout must be >= 0")
    if bool(cfg.encoder) != bool(cfg.tokenizer):
        raise ConfigError("codebook.encoder and codebook.tokenizer go together: set both (learned encoder) or neither (stub word vectors).")
    for path in cfg.corpus:
        if not Path(path).exists():
            raise MissingInputError(f"{path}: corpus path not found")


def run(ctx) -> None:
    cfg: CodebookConfig = ctx.settings
    check_settings(cfg)
    corpus = cfg.corpus or stdlib_corpus()
    source = ", ".join(corpus) if cfg.corpus else f"Python standard library ({sysconfig.get_paths()['stdlib']})"
    gen = torch.Generator().manual_seed(cfg.seed)
    vectors, files, seen = encode_corpus(ctx, cfg, corpus, source, gen)

    # hold out, then k-means on the rest
    n_hold = min(cfg.holdout, vectors.shape[0] // 10)
    order = torch.randperm(vectors.shape[0], generator=gen)
    held, train = vectors[order[:n_hold]], vectors[order[n_hold:]]
    if train.shape[0] < cfg.k:
        raise DataError(
            f"corpus ({source}) gave {train.shape[0]:,} vectors for k-means (after holding out {n_hold:,}); "
            f"k={cfg.k:,} needs at least that many. Use a bigger corpus or a smaller --k."
        )
    ctx.run.event("data", source=source, files=files, vectors=seen, kmeans_vectors=int(train.shape[0]), holdout=n_hold,
                  encoder=cfg.encoder or "stub")
    ctx.mark_stage_done("encode")
    centroids, moved = cluster(ctx, cfg, train)

    # the codebook, its files, its evaluation
    codebook = Codebook(centroids)
    path = codebook.save(ctx.artifact(ARTIFACT))
    ctx.run.event("artifact", name=ARTIFACT, path=str(path), step=ctx.global_step)
    ctx.say(f"[codebook-init] Saved codebook ({codebook.k:,} entries, {codebook.index_kind} index) to {path}")
    if cfg.output:
        out = codebook.save_vxcb(cfg.output) if cfg.output.endswith(".bin") else codebook.save(cfg.output)
        ctx.say(f"[codebook-init] Saved codebook to {out}")
    n_fit = n_hold or train.shape[0]
    fit = codebook.cosines(train[:n_fit])  # the k-means vectors themselves, as many as were held out
    cos = codebook.cosines(held) if n_hold else fit
    metrics = {
        "quantization_error": float((1 - cos).mean()),
        "l2_error": float((2 * (1 - cos)).clamp_min(0).sqrt().mean()),
        "train_quantization_error": float((1 - fit).mean()),
        # the same error without k-means: one entry (the mean), k random entries; and how bunched the vectors are
        **reference_errors(train, held if n_hold else train[:n_fit], cfg.k, cfg.seed),
        "heldout_vectors": float(n_hold),
        "kmeans_epochs": float(len(moved)),
        "final_movement": moved[-1] if moved else 0.0,
    }
    if not n_hold:
        ctx.say("[codebook-init] too few vectors to hold any out: the quantization error is measured on k-means vectors")
    ctx.record_evaluation("codebook", ctx.global_step, len(moved), metrics)
    ctx.say(f"[codebook-init] Quantization error (mean 1 - cos, {n_hold:,} held-out vectors): {metrics['quantization_error']:.4f}; "
            f"mean L2: {metrics['l2_error']:.4f}; on k-means vectors: {metrics['train_quantization_error']:.4f}")
    ctx.say(f"[codebook-init] Without k-means: one entry (the mean) {metrics['quantization_error_k1']:.4f}, "
            f"{cfg.k:,} random entries {metrics['random_error']:.4f}; spread: mean pairwise cosine "
            f"{metrics['mean_pairwise_cosine']:.4f}, mean cosine to the centroid {metrics['mean_cosine_to_centroid']:.4f}")
    ctx.mark_stage_done("evaluate")


def encode_corpus(ctx, cfg: CodebookConfig, corpus: list[str], source: str, gen: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """(slot vectors: a reservoir sample of all the corpus gave, files read, vectors seen)."""
    ctx.run.event("stage_start", stage="encode", step=ctx.global_step)
    ctx.say(f"[codebook-init] Reading corpus from {source}")
    encoder = _LearnedEncoder(ctx, cfg) if cfg.encoder else _StubEncoder()
    reservoir = Reservoir((cfg.sample + cfg.holdout) if cfg.sample else None, gen)
    files = 0
    for chunk in _chunks(corpus_texts(corpus, max_files=cfg.max_files), cfg.encode_batch):
        if ctx.stop.requested:
            _preempt(ctx, "encode")
        reservoir.add(encoder.encode(chunk))
        files += len(chunk)
        if files % 10_000 < len(chunk):
            ctx.say(f"[codebook-init] Encoded {files} files ({reservoir.seen} vectors)")
    if files == 0 or reservoir.seen == 0:
        what = "texts of 50-50,000 characters" if files == 0 else "slot vectors"
        raise DataError(f"corpus ({source}) has no {what}; point --corpus at .py/.txt/.jsonl files.")
    vectors = encoder.vectors(reservoir.rows())
    ctx.say(f"[codebook-init] Encoding complete: {files} files, {reservoir.seen} vectors ({'learned encoder' if cfg.encoder else 'stub word vectors'})")
    return vectors, files, reservoir.seen


def cluster(ctx, cfg: CodebookConfig, train: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Spherical mini-batch k-means on ``train``, one logged step per epoch: (centroids, movement per epoch)."""
    ctx.run.event("stage_start", stage="kmeans", step=ctx.global_step, k=cfg.k, vectors=int(train.shape[0]))
    ctx.run.update_manifest(total_steps=cfg.iters, stage="kmeans")
    ctx.say(f"[kmeans] k={cfg.k:,} on {train.shape[0]:,} vectors (batch {cfg.batch}, at most {cfg.iters} epochs, device {ctx.device})")
    ctx.reporter.start("kmeans", cfg.iters)
    moved: list[float] = []

    def on_epoch(epoch: int, movement: float) -> None:
        ctx.global_step = epoch
        moved.append(movement)
        ctx.hub.log({"step": epoch, "stage": "kmeans", "epoch": epoch, "losses": {"movement": movement}})
        ctx.say(f"[kmeans] Iteration {epoch}/{cfg.iters}, mean centroid movement: {movement:.8f}")
        ctx.reporter.update(epoch, f"movement {movement:.2e}")
        if ctx.stop.requested:
            _preempt(ctx, "kmeans")

    centroids = kmeans(train.to(ctx.device), cfg.k, iters=cfg.iters, batch=cfg.batch, seed=cfg.seed, tol=cfg.tol,
                       init_sample=cfg.init_sample, on_epoch=on_epoch).cpu()
    ctx.reporter.stop()
    ctx.mark_stage_done("kmeans")
    return centroids, moved


def stdlib_corpus() -> list[str]:
    """This Python's standard library: its .py files and packages, without the third-party
    packages installed inside it (site-packages / dist-packages)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return [str(p) for p in sorted(root.iterdir())
            if (p.is_dir() and p.name not in ("site-packages", "dist-packages") and not p.name.startswith("."))
            or p.suffix == ".py"]


def _preempt(ctx, stage: str) -> None:
    ctx.run.event("preempted", signal=ctx.stop.signal_name, step=ctx.global_step, stage=stage)
    raise Preempted(f"stopped by {ctx.stop.signal_name} during {stage}; k-means keeps no checkpoint, so "
                    f"`voltx run codebook --resume {ctx.run.dir}` starts it again from the corpus")


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Reservoir:
    """A uniform sample of at most ``capacity`` rows from a stream of row batches
    (Algorithm R, vectorised per batch; ``capacity=None`` keeps every row)."""

    def __init__(self, capacity: int | None, generator):
        self.capacity, self.gen = capacity, generator
        self.parts: list = []
        self.buffer = None
        self.seen = 0

    def add(self, rows) -> None:
        n = rows.shape[0]
        if n == 0:
            return
        if self.capacity is None:
            self.parts.append(rows)
            self.seen += n
            return
        if self.buffer is None:
            self.buffer = rows.new_empty((self.capacity, *rows.shape[1:]))
        fill = max(0, min(n, self.capacity - self.seen))
        self.buffer[self.seen : self.seen + fill] = rows[:fill]
        if fill < n:  # row i of the stream replaces a random slot with probability capacity / (i + 1)
            index = torch.arange(self.seen + fill, self.seen + n)
            slot = (torch.rand(n - fill, generator=self.gen, dtype=torch.float64) * (index + 1)).long()
            keep = slot < self.capacity
            src, dst = torch.nonzero(keep).squeeze(1).flip(0), slot[keep].flip(0)
            dst, first = _first_occurrence(dst)  # the last write to a slot wins, as in the sequential algorithm
            self.buffer[dst] = rows[fill:][src[first]]
        self.seen += n

    def rows(self):
        if self.capacity is None:
            return torch.cat(self.parts) if self.parts else torch.empty(0)
        return self.buffer[: min(self.seen, self.capacity)] if self.buffer is not None else torch.empty(0)


def _first_occurrence(values):
    unique, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((unique.shape[0],), values.shape[0], dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(values.shape[0]), reduce="amin")
    return unique, first


class _StubEncoder:
    """Texts -> word ids (``encode``); ids -> seeded unit word vectors (``vectors``).

    The reservoir holds ids, not 1 KB vectors, and only the sampled words' vectors are
    ever computed, so memory follows the sample, not the corpus."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, texts: list[str]):
        row = []
        for text in texts:
            for word in text.lower().split():
                i = self.ids.get(word)
                if i is None:
                    i = self.ids[word] = len(self.words)
                    self.words.append(word)
                row.append(i)
        return torch.tensor(row, dtype=torch.long)

    def vectors(self, rows):
        unique, inverse = torch.unique(rows, return_inverse=True)
        table = torch.stack([seeded_unit_vector(fnv1a64(self.words[i])) for i in unique.tolist()])
        return table[inverse]


class _LearnedEncoder:
    """Texts -> the R0 vectors of the active slots of the trained encoder's frames."""

    def __init__(self, ctx, cfg: CodebookConfig):
        self.cfg, self.device = cfg, ctx.device
        self.tok = load_tokenizer(cfg.tokenizer)
        self.model = CnnFrameEncoder(vocab_size=self.tok.get_vocab_size(), max_seq_len=cfg.max_seq_len)
        load_weights(self.model, cfg.encoder, ENCODER_KINDS, "Train one with `voltx train-encoder` (same --tokenizer).")
        self.model.to(ctx.device).eval()
        params = sum(p.numel() for p in self.model.parameters())
        ctx.say(f"[codebook-init] Encoder {cfg.encoder} (vocab {self.tok.get_vocab_size()}, {params:,} params)")

    def encode(self, texts: list[str]):
        ids, mask = encode_batch(self.tok, texts, max_len=self.cfg.max_seq_len)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.no_grad():
            frame = self.model.to_frame(self.model(ids, mask), mask)
        return frame.r0()[frame.active_slots()].float().cpu()

    def vectors(self, rows):
        return rows


