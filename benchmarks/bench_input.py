"""Input pipeline: steps/s of a stage with inline collation vs the pipeline.

Workload (default): the translator phase's quick preset encoder stage (CnnFrameEncoder, vocab
4096, sequence 64, batch 64, its contrastive + role step) on the built-in stdlib corpus, trained
through ``voltx.train.loop.fit``, with two collates:

* ``pad``: the translator's own collate (rows tokenised up front, padding per batch);
* ``tokenise``: the collate tokenises the raw (code, docstring) texts with the BPE tokenizer,
  labels code roles and pads, per batch.

``--f3``: F3 quick's renderer stage (the stage that tokenised in its step: encoder + decoder read
each chain text back, vocab 2000, sequence 64, batch 64, on the quick preset's generated data):
``pad`` is F3's collate (texts tokenised once, cut and padded per batch); ``step`` is the old
design, each batch's texts tokenised inside the step on the training thread (whatever the feed,
so only its ``inline`` row is run).

Each collate is fed three ways, runs alternated, the median kept:

* ``inline``: collated on the training thread (``[hardware].prefetch = 0``);
* ``thread``: :mod:`voltx.train.input_pipeline`'s background thread, 2 batches ahead (what voltx uses);
* ``workers``: a ``torch.utils.data.DataLoader`` with 1 worker process and ``prefetch_factor=2``
  over the same batch indices (the alternative the pipeline was measured against).

Printed: steps/s of each (checkpoint time excluded), the ratios to inline, and how often and
how long the training thread waited for a batch (the first of each epoch excepted).

    python benchmarks/bench_input.py            # 40 steps x 2 repeats
    python benchmarks/bench_input.py --quick    # 15 steps x 1 repeat
    python benchmarks/bench_input.py --f3 --quick
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer runs in a forked worker too

import torch  # noqa: E402

from _common import emit_json, median  # noqa: E402
from voltx.config import build_config  # noqa: E402
from voltx.data.code_pairs import extract_stdlib_pairs  # noqa: E402
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder  # noqa: E402
from voltx.engine.tokenizer import train_bpe  # noqa: E402
from voltx.plugin_specs import PhaseSpec  # noqa: E402
from voltx.plugins import load_plugins  # noqa: E402
from voltx.runs.jsonl import read_jsonl  # noqa: E402
from voltx.runs.store import RunWriter  # noqa: E402
from voltx.train.batches import EpochBatches  # noqa: E402
from voltx.train.context import RunContext  # noqa: E402
from voltx.train.loop import Stage, fit  # noqa: E402
from voltx.train.metrics import MetricsHub  # noqa: E402
from voltx.train.progress import Reporter  # noqa: E402
from voltx.train.signals import StopFlag  # noqa: E402
from voltx_phases.translator_train import collate as pad_collate  # noqa: E402
from voltx_phases.translator_train import encoder_losses, tokenize  # noqa: E402

VOCAB, SEQ, BATCH, TAU = 4096, 64, 64, 0.07
DEVICE = torch.device("cpu")


@dataclass
class WorkerBatches:
    """EpochBatches' order, collated by DataLoader worker processes (the measured alternative)."""

    batches: EpochBatches
    workers: int = 1
    waits: int = 0
    wait_seconds: float = 0.0

    @property
    def per_epoch(self) -> int:
        return self.batches.per_epoch

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    def iterate(self, epoch: int, start: int = 0):
        jobs = list(self.batches.indices(epoch, start))
        items, collate = self.batches.items, self.batches.collate
        dataset = [jobs[i][1] for i in range(len(jobs))]
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=self.workers, prefetch_factor=2,
                                             collate_fn=lambda idx: collate([items[i] for i in idx]),
                                             multiprocessing_context="fork")
        it = iter(loader)
        for n, (b, _) in enumerate(jobs):
            began = time.perf_counter()
            batch = next(it)
            if n:
                self.waits += time.perf_counter() - began > 1e-3
                self.wait_seconds += time.perf_counter() - began
            yield b, batch


def translator_model():
    """The translator quick encoder and its step."""
    encoder = CnnFrameEncoder(vocab_size=VOCAB, max_seq_len=SEQ).to(DEVICE)

    def step(batch):
        out = encoder_losses(encoder, batch, DEVICE, TAU)
        return {"loss": 0.8 * out["contrastive"] + 0.2 * out["role"]}

    return encoder, step


def f3_workload(steps: int):
    """F3 quick's renderer: (model factory, {mode: (items, collate, encodes in the step)})."""
    from voltx_phases import lang_stack
    from voltx_phases.f3 import F3Config
    from voltx_phases.f3_data import encode, load_data, pad_tail, token_rows, training_texts
    from voltx_phases.f3_model import render_terms

    cfg = F3Config(reasoning_data=["gen:scan_simple_gen?count=1000", "gen:babi_qa1_gen?count=200", "gen:babi_qa2_gen?count=200",
                                   "gen:babi_qa3_gen?count=200"], vocab_size=2000, max_seq_len=64, batch_size=BATCH)
    texts = list(dict.fromkeys(training_texts(load_data(cfg, 42).train)))
    texts = (texts * (1 + steps * BATCH // len(texts)))[: steps * BATCH]
    tok = lang_stack.train_tokenizer(texts, cfg.vocab_size)
    enc_len, dec_len = cfg.max_seq_len, cfg.decoder_max_len

    def model():
        stack = torch.nn.ModuleDict({"encoder": lang_stack.new_encoder(tok.get_vocab_size(), enc_len, recency=True),
                                     "decoder": lang_stack.new_decoder(tok.get_vocab_size(), dec_len)}).to(DEVICE)

        def step(batch):
            if isinstance(batch, list):  # the old design: the step tokenises its texts
                batch = (*encode(tok, batch, enc_len, DEVICE, keep="tail"), *encode(tok, batch, dec_len - 1, DEVICE, keep="tail"))
            terms = render_terms(stack["encoder"], stack["decoder"], *(t.to(DEVICE) for t in batch))
            return {"loss": terms["render"] + cfg.resolution_weight * terms["resolution"] + cfg.spread_weight * terms["spread"]}

        return stack, step

    pad = lambda rows: (*pad_tail(rows, enc_len), *pad_tail(rows, dec_len - 1))  # noqa: E731 (F3's renderer collate)
    tokenise = lambda texts: (*encode(tok, texts, enc_len, DEVICE, keep="tail"), *encode(tok, texts, dec_len - 1, DEVICE, keep="tail"))  # noqa: E731
    return model, {"pad": (token_rows(tok, texts), pad), "step": (texts, list)}, {"pad": pad, "step": tokenise}


def one_run(workdir: Path, plugins, items: list, collate, feed: str, steps: int, model=translator_model) -> dict:
    cfg = build_config({})
    cfg.run.log_every, cfg.run.checkpoint_every = 10, 0
    cfg.hardware.prefetch = 2 if feed == "thread" else 0
    spec = PhaseSpec(name="bench", summary="input pipeline benchmark", runner=lambda ctx: None, config_class=type(cfg.run))
    writer = RunWriter.create(workdir / "runs", "bench", config_toml="", overrides=[], preset=None, argv=[])
    reporter = Reporter(stream=io.StringIO(), mode="plain", copy=writer.stdout)
    ctx = RunContext(config=cfg, phase=spec, run=writer, device=DEVICE, hub=MetricsHub(writer, plugins, [], reporter.line),
                     reporter=reporter, stop=StopFlag())
    torch.manual_seed(0)
    encoder, step = model()
    opt = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    batches = EpochBatches(items[: steps * BATCH], BATCH, 0, collate)
    source = WorkerBatches(batches) if feed == "workers" else batches

    stage = Stage(name="encoder", model=encoder, optimizer=opt, batches=source, epochs=1, step=step, lr_at=lambda s: 1e-3,
                  grad_clip=1.0, background_collate=feed == "thread")
    began = time.perf_counter()
    fit(ctx, stage)
    seconds = time.perf_counter() - began
    writer.close("finished", 0)
    events = read_jsonl(writer.paths.events).records
    seconds -= sum(e.get("seconds", 0.0) for e in events if e.get("kind") == "checkpoint")
    fed = next(e for e in events if e.get("kind") == "input")
    waits, waited = (source.waits, source.wait_seconds) if feed == "workers" else (fed["waits"], fed["wait_seconds"])
    return {"steps_per_s": steps / seconds, "waits": int(waits), "wait_seconds": waited, "batches": steps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="15 steps x 1 repeat")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--f3", action="store_true", help="F3 quick's renderer stage instead of the translator's encoder")
    args = ap.parse_args()
    steps, repeats = args.steps or (15 if args.quick else 40), args.repeats or (1 if args.quick else 2)
    if args.f3:
        return measure_f3(steps, repeats)
    pairs = extract_stdlib_pairs()[: steps * BATCH]
    tok = train_bpe([p.code for p in pairs], vocab_size=VOCAB, min_frequency=2)
    tokenised = tokenize(tok, pairs, SEQ)

    def tokenising_collate(raw):
        return pad_collate(tokenize(tok, raw, SEQ))

    plugins = load_plugins()
    print(f"input pipeline: translator quick encoder (vocab {VOCAB}, seq {SEQ}, batch {BATCH}), {steps} steps/run, "
          f"{repeats} repeat(s), torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="voltx-bench-input-") as tmp:
        for mode, items, collate in (("pad", tokenised, pad_collate), ("tokenise", pairs, tokenising_collate)):
            one_run(Path(tmp), plugins, items, collate, "inline", 3)  # warm-up
            rows: dict[str, list[dict]] = {"inline": [], "thread": [], "workers": []}
            for _ in range(repeats):
                for feed in rows:
                    rows[feed].append(one_run(Path(tmp), plugins, items, collate, feed, steps))
            figures[mode] = {feed: {"steps_per_s": round(median([r["steps_per_s"] for r in runs]), 3),
                                    "waits": median([r["waits"] for r in runs]),
                                    "wait_seconds": round(median([r["wait_seconds"] for r in runs]), 3)} for feed, runs in rows.items()}
            base = figures[mode]["inline"]["steps_per_s"]
            for feed, got in figures[mode].items():
                waited = "" if feed == "inline" else (f" | training thread waited for {got['waits']:g} of {steps - 1} batches "
                                                      f"({got['wait_seconds']:.2f} s)")
                print(f"  {mode:8s} {feed:7s}: {got['steps_per_s']:6.2f} steps/s | x{got['steps_per_s'] / base:.3f} vs inline{waited}",
                      flush=True)
    for mode in figures:
        f = figures[mode]
        print(f"RESULT {mode}: thread/inline = {f['thread']['steps_per_s'] / f['inline']['steps_per_s']:.3f}, "
              f"workers/inline = {f['workers']['steps_per_s'] / f['inline']['steps_per_s']:.3f}")
    emit_json("input_pipeline", {"steps": steps, "repeats": repeats, "batch": BATCH, "seq": SEQ, "vocab": VOCAB,
                                 "threads": torch.get_num_threads(), "torch": torch.__version__, **figures})
    return 0


def measure_f3(steps: int, repeats: int) -> int:
    model, modes, work = f3_workload(steps)
    per_batch = {}
    for mode, fn in work.items():  # the input work of one batch alone: what the training thread no longer does
        items = modes[mode][0]
        times = []
        for b in range(min(10, steps)):
            began = time.perf_counter()
            fn(items[b * BATCH: (b + 1) * BATCH])
            times.append(time.perf_counter() - began)
        per_batch[mode] = round(1000 * median(times), 2)
    plugins = load_plugins()
    print(f"input pipeline: F3 quick renderer (vocab 2000, seq 64, batch {BATCH}), {steps} steps/run, {repeats} repeat(s), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    runs: dict[str, list[dict]] = {"step inline": [], "pad inline": [], "pad thread": []}
    with tempfile.TemporaryDirectory(prefix="voltx-bench-input-") as tmp:
        one_run(Path(tmp), plugins, *modes["pad"], "inline", 2, model)  # warm-up
        for _ in range(repeats):
            for name in runs:
                mode, feed = name.split()
                runs[name].append(one_run(Path(tmp), plugins, *modes[mode], feed, steps, model))
    figures = {name: {"steps_per_s": round(median([r["steps_per_s"] for r in rs]), 3), "waits": median([r["waits"] for r in rs]),
                      "wait_seconds": round(median([r["wait_seconds"] for r in rs]), 3)} for name, rs in runs.items()}
    base = figures["step inline"]["steps_per_s"]
    for name, got in figures.items():
        waited = f" | training thread waited for {got['waits']:g} of {steps - 1} batches ({got['wait_seconds']:.2f} s)" if "thread" in name else ""
        print(f"  {name:11s}: {got['steps_per_s']:6.3f} steps/s | x{got['steps_per_s'] / base:.3f} vs tokenising in the step{waited}", flush=True)
    print(f"  input work per batch alone: {per_batch['step']} ms tokenising (the old step's), {per_batch['pad']} ms padding (F3's collate)")
    print(f"RESULT f3: pad thread/step inline = {figures['pad thread']['steps_per_s'] / base:.3f}, "
          f"pad thread/pad inline = {figures['pad thread']['steps_per_s'] / figures['pad inline']['steps_per_s']:.3f}")
    emit_json("input_pipeline_f3", {"steps": steps, "repeats": repeats, "batch": BATCH, "threads": torch.get_num_threads(),
                                    "torch": torch.__version__, "input_ms_per_batch": per_batch, **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
