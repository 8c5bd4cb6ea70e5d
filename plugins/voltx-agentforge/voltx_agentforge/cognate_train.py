"""The run of ``voltx run cognate`` (:mod:`voltx_agentforge.cognate`).

Data (:mod:`cognate_data`) -> the three models built and sized (:mod:`sizing`: voltx's
preflight for disk and memory, then batch and memory strategy from the parameter count) ->
one ``train_stage`` per specialisation (Muon x Grokfast or AdamW; each epoch's evaluation:
held-out accuracy, its baselines and ablations, behaviour) -> each model saved as an artifact
(:mod:`cognate_artifacts`) -> the closing evaluation over the three saved models (diversity
against the untrained models', training time, storage) and ``cognate.json``.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from voltx.train.batches import steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_agentforge import cognate_artifacts as store
from voltx_agentforge.cognate import BASE, BASE_STAGE, SPECIALISATIONS, STAGES, SUMMARY_STAGE, CognateConfig
from voltx_agentforge.cognate_data import build, build_mix, collate, encode_example, own_tasks, with_replay
from voltx_agentforge.cognate_eval import accuracy, behaviour, copy_number, diversity, greedy_answers, majority_answer
from voltx_agentforge.cognate_model import PAD, VOCAB, CognateArgs, CognateNet, geometric_prior, parameter_count
from voltx_agentforge.optimizers import build_optimizer
from voltx_agentforge.sizing import activation_bytes, plan_sizing

EVAL_BATCH = 64


def model_args(cfg: CognateConfig, i: int) -> CognateArgs:
    return CognateArgs(d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers, refine_steps=cfg.refine_steps[i],
                       memory_slots=cfg.memory_slots[i], max_len=cfg.max_len, ff_mult=cfg.ff_mult,
                       memory_gate_bias=cfg.memory_gate_bias[i], memory_ngram=cfg.memory_ngram)


def fresh_model(cfg: CognateConfig, i: int, seed: int) -> CognateNet:
    """Specialisation ``i``'s model as initialised: all three from one seed (equal shapes draw
    equal weights), as fine-tunes of one base are, so that phase 2 can merge them tensor by
    tensor; they differ by their configs' biases, refinement and halting prior, then by training."""
    torch.manual_seed(seed + 1000)
    return CognateNet(model_args(cfg, i))


def starting_model(cfg: CognateConfig, i: int, seed: int, base: dict[str, torch.Tensor] | None) -> CognateNet:
    """Specialisation ``i``'s model before its own training: the fresh initialisation, or the
    trained shared base with the specialisation's own fresh memory gate (the base closes its gate;
    a fresh one with the config's bias lets the memory model start with its gate open)."""
    model = fresh_model(cfg, i, seed)
    if base is not None:
        gate = {k: v.detach().clone() for k, v in model.memory.gate.state_dict().items()}
        model.load_state_dict(base)
        model.memory.gate.load_state_dict(gate)
    return model


def train_one(ctx: RunContext, cfg: CognateConfig, i: int, model: CognateNet, data: dict, batch_size: int,
              stage: str | None = None, epochs: int | None = None, anchor: dict[str, torch.Tensor] | None = None) -> None:
    """Train specialisation ``i``'s model (or, with ``stage`` and ``epochs``, the shared base with its
    settings); with ``anchor`` (parameter name -> its starting value), ``cfg.finetune_anchor`` pulls
    the weights toward it."""
    stage, device, rate, memory_cost = stage or STAGES[i], ctx.device, cfg.halt_prior[i], cfg.memory_cost[i]
    log_prior = geometric_prior(rate, model.args.refine_steps).log().to(device).view(-1, 1, 1)
    held, gold, fixed, max_new = data["held"], data["gold"], data["fixed"], data["max_new"]
    began, before = time.perf_counter(), ctx.evaluations.get(f"{stage}/train_seconds", 0.0)

    def step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = {k: v.to(device) for k, v in batch.items()}
        out = model(b["ids"])
        steps, p = out["step_logits"].shape[0], out["halt_probs"]
        nll = F.cross_entropy(out["step_logits"].flatten(0, 2), b["targets"].repeat(steps, 1, 1).flatten(),
                              reduction="none").view_as(p)
        w = b["weights"]
        lm = ((p * nll).sum(0) * w).sum() / w.sum()  # each step's loss, weighted by halting there
        deep = (nll.mean(0) * w).sum() / w.sum()  # every step's own loss (deep supervision)
        real = (b["ids"] != PAD).float()
        kl = ((p * (p.clamp_min(1e-8).log() - log_prior)).sum(0) * real).sum() / real.sum()
        pull = sum(((t - anchor[n]) ** 2).sum() for n, t in model.named_parameters()) if anchor else nll.new_zeros(())
        use = (out["gate"] * real).sum() / real.sum()
        return {"loss": lm + cfg.deep_supervision * deep + cfg.halt_kl_weight * kl + cfg.finetune_anchor * pull + memory_cost * use,
                "lm": lm, "deep": deep, "kl": kl, "anchor": pull,
                "halting_steps": (out["steps"] * real).sum() / real.sum(), "memory_use": use}

    def evaluate() -> dict[str, float]:
        def acc(**switches) -> float:
            return accuracy(greedy_answers(model, held, max_new, EVAL_BATCH, device, **switches), gold)

        return {"accuracy": acc(), "accuracy_halting_off": acc(halting=False), "accuracy_one_step": acc(refinement=False),
                "accuracy_memory_off": acc(memory=False),
                **fixed, **behaviour(model, held, EVAL_BATCH, cfg.speed_batches, device),
                "train_seconds": before + time.perf_counter() - began}

    def summary(e: dict[str, float]) -> str:
        return (f"accuracy {e['accuracy']:.1%} (majority {e['majority_answer']:.1%}, copy {e['copy_number']:.1%}; "
                f"halting off {e['accuracy_halting_off']:.1%}, one step {e['accuracy_one_step']:.1%}, "
                f"memory off {e['accuracy_memory_off']:.1%}) | "
                f"steps {e['halting_steps']:.2f}/{model.args.refine_steps} | memory {e['memory_use']:.2f} | "
                f"{e['examples_per_sec']:.0f} ex/s")

    finetune = bool(cfg.specialist_data and cfg.base_epochs and stage != BASE_STAGE)
    lr = cfg.finetune_lr if finetune and cfg.finetune_lr else cfg.lr
    kind = optimizer_kind(cfg, finetune)
    optimizer = build_optimizer(kind, model, lr, cfg.weight_decay, cfg.muon_momentum, cfg.grokfast_alpha, cfg.grokfast_lambda,
                                cfg.memory_lr_mult[i])
    train_stage(ctx, stage, model, data["train"], lambda rows: collate(rows, cfg.prompt_loss_weight), step,
                Hyper.of(cfg, batch_size=batch_size, epochs=epochs or cfg.epochs, lr=lr), title=f"Cognate {stage.split('-', 1)[1]}", evaluate=evaluate, summary=summary,
                metrics=("halting_steps", "memory_use"), shown={"kl": "halt KL"}, seed_offset=i, optimizer=optimizer,
                about=f"{cfg.layers} layers x up to {model.args.refine_steps} refinements, {model.args.memory_slots} memory slots "
                      f"({f'{cfg.memory_ngram}-gram lookup' if cfg.memory_ngram else 'attention read'}, lr x{cfg.memory_lr_mult[i]:g}, "
                      f"cost {memory_cost:g}), "
                      f"halting prior {rate:g}, {kind}")


def optimizer_kind(cfg: CognateConfig, finetune: bool) -> str:
    return cfg.finetune_optimizer or cfg.optimizer if finetune else cfg.optimizer


def summarise(ctx: RunContext, cfg: CognateConfig, data: dict, seed: int, sizing: dict, base: dict | None) -> None:
    """The closing evaluation, over the three saved models (read back through the artifact
    contract); "untrained" is each model as its own training started (the shared base, when trained)."""
    device, held = ctx.device, data["held"]
    models = [store.load_model(ctx.artifact(f"cognate-{s}"), str(device))[0] for s in SPECIALISATIONS]
    trained = [behaviour(m, held, EVAL_BATCH, cfg.speed_batches, device) for m in models]
    untrained = [behaviour(starting_model(cfg, i, seed, base).to(device), held, EVAL_BATCH, cfg.speed_batches, device) for i in range(3)]
    most = max(cfg.refine_steps)
    metrics = {"diversity": diversity(trained, most), "diversity_untrained": diversity(untrained, most),
               "train_seconds": sum(ctx.evaluations.get(f"{s}/train_seconds", 0.0) for s in (BASE_STAGE, *STAGES)),
               "storage_mb": store.total_bytes(ctx.artifacts_dir, ctx.run.paths.checkpoints) / 2**20}
    for spec, fig in zip(SPECIALISATIONS, trained):
        metrics.update({f"{spec}_{k}": v for k, v in fig.items()})
    ctx.record_evaluation(SUMMARY_STAGE, ctx.global_step, cfg.epochs, metrics)
    store.write_summary(ctx.artifact("cognate.json"), {
        "models": {s: f"cognate-{s}" for s in SPECIALISATIONS}, "metrics": metrics, "sizing": sizing,
        "accuracy": {s: ctx.evaluations.get(f"cognate-{s}/accuracy") for s in SPECIALISATIONS}})
    ctx.say(f"[cognate] diversity {metrics['diversity']:.3f} (untrained {metrics['diversity_untrained']:.3f}) | "
            f"training {metrics['train_seconds']:.0f} s | storage {metrics['storage_mb']:.1f} MiB")


def size(ctx: RunContext, cfg: CognateConfig, seed: int):
    """The premortem's pre-flight (voltx's disk and memory checks, exit 82 when short) and the
    batch and memory strategy from the models' parameter count, logged: before the data is built,
    so a full disk or a small GPU is found before minutes of streaming GSM8K, not after. The
    activations are estimated at ``max_len``, the longest an example can be."""
    params = [parameter_count(fresh_model(cfg, i, seed)) for i in range(3)]
    act = [activation_bytes(cfg.max_len, cfg.d_model, cfg.layers, steps, VOCAB, cfg.ff_mult) for steps in cfg.refine_steps]
    sizing = plan_sizing(ctx.run.dir, params, max(act), max(act) // cfg.layers, ctx.config.run.keep_checkpoints, ctx.device,
                         batch_size=cfg.batch_size, memory_fraction=cfg.memory_fraction,
                         optimizer_states=3 if cfg.optimizer == "muon_grokfast" else 2)
    ctx.run.event("sizing", step=ctx.global_step, **sizing.to_dict())
    ctx.say(f"[cognate] sizing: {sizing.category} ({', '.join(f'{p:,}' for p in params)} parameters) -> batch {sizing.batch_size}, "
            f"{sizing.strategy} ({sizing.reason}); {sizing.free_mem_gb:.1f} GiB memory and {sizing.free_disk_gb:.1f} GiB disk free")
    return sizing


def stage_data(cfg: CognateConfig, train: list[dict], held_all: list[dict], max_new: int, own: list[dict] | None = None) -> dict:
    """One stage's encoded training and held-out problems (its own tasks' when the three have
    their own mixes: those of ``own``, its mix without the base's problems it rehearses) and the
    no-model baselines on them."""
    own = own or train
    held = own_tasks(own, held_all) if cfg.specialist_data else held_all
    gold = [r["output"] for r in held]
    return {"train": [encode_example(r, cfg.max_len) for r in train], "held": [encode_example(r, cfg.max_len) for r in held],
            "gold": gold, "max_new": max_new, "tasks": sorted({str(r.get("task")) for r in own}),
            "fixed": {"majority_answer": majority_answer(own, gold), "copy_number": copy_number(own, held)}}


def shared_base(ctx: RunContext, cfg: CognateConfig, seed: int, data: dict | None, sizing) -> dict[str, torch.Tensor] | None:
    """The three models' common start, saved as ``cognate-base/`` (phase 2's task-vector
    reference): with ``data`` (specialists and ``base_epochs``), the fresh initialisation trained
    on ``cognate.data`` with the reasoning model's settings (stage ``cognate-base``); else the
    fresh initialisation itself. Returns the trained base's weights, or None (the fresh start)."""
    path = ctx.artifact(f"cognate-{BASE}")
    if data is None or ctx.stage_done(BASE_STAGE):
        if data is None and not path.joinpath("model.safetensors").is_file():
            store.save_model(path, fresh_model(cfg, 0, seed), BASE, size_category=sizing.category,
                             training={"note": "the shared initialisation of the three models (untrained)"})
        return store.load_model(path)[0].state_dict() if data is not None else None
    model = fresh_model(cfg, 0, seed).to(ctx.device)
    train_one(ctx, cfg, 0, model, data, sizing.batch_size, stage=BASE_STAGE, epochs=cfg.base_epochs)
    store.save_model(path, model, BASE, size_category=sizing.category,
                     training={"optimizer": cfg.optimizer, "epochs": cfg.base_epochs, "tasks": data["tasks"],
                               "note": "the shared base the three specialists are fine-tuned from"})
    ctx.mark_stage_done(BASE_STAGE)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def run(ctx: RunContext) -> None:
    cfg: CognateConfig = ctx.settings
    seed = ctx.config.run.seed
    sizing = size(ctx, cfg, seed)
    trains, held_records = build(cfg, ctx.run.dir / "data", seed)
    base_train = build_mix(cfg.data, cfg.examples, ctx.run.dir / "data" / BASE, seed, "cognate.data") \
        if cfg.specialist_data and cfg.base_epochs else []
    max_new = min(16, max(len(r["output"].encode()) for r in [*held_records, *base_train, *(r for t in trains for r in t)]) + 1)
    mixed = [with_replay(t, base_train, cfg.finetune_replay, seed + i) for i, t in enumerate(trains)] if cfg.finetune_replay else trains
    data = [stage_data(cfg, m, held_records, max_new, own=t) for m, t in zip(mixed, trains)]
    for spec, d in zip(SPECIALISATIONS, data):
        rehearsed = f", {round(cfg.finetune_replay * len(d['train'])):,} of them the base's" if cfg.finetune_replay else ""
        ctx.say(f"[cognate] {spec}: {len(d['train']):,} training problems ({', '.join(d['tasks'])}{rehearsed}), {len(d['held']):,} held out "
                f"(majority answer {d['fixed']['majority_answer']:.1%}, copy a number {d['fixed']['copy_number']:.1%})")
    data_all = {"held": [encode_example(r, cfg.max_len) for r in held_records]}
    data_base = stage_data(cfg, base_train, held_records, max_new) if base_train else None
    plan = {BASE_STAGE: steps_per_epoch(len(base_train), sizing.batch_size) * cfg.base_epochs} if data_base else {}
    ctx.plan_steps({**plan, **{stage: steps_per_epoch(len(d["train"]), sizing.batch_size) * cfg.epochs for stage, d in zip(STAGES, data)}})
    base = shared_base(ctx, cfg, seed, data_base, sizing)
    for i, stage in enumerate(STAGES):
        if ctx.stage_done(stage):
            continue
        model = starting_model(cfg, i, seed, base).to(ctx.device)
        model.checkpointing = sizing.strategy == "activation checkpointing"
        # the pull's target is the model as its fine-tune starts: the base (with the model's own fresh gate)
        anchor = {n: p.detach().clone() for n, p in model.named_parameters()} if base is not None and cfg.finetune_anchor else None
        train_one(ctx, cfg, i, model, data[i], sizing.batch_size, anchor=anchor)
        store.save_model(ctx.artifact(f"cognate-{SPECIALISATIONS[i]}"), model, SPECIALISATIONS[i],
                         size_category=sizing.category,
                         training={"optimizer": optimizer_kind(cfg, base is not None), "halt_prior": cfg.halt_prior[i], "epochs": cfg.epochs,
                                   "base_epochs": cfg.base_epochs if cfg.specialist_data else 0, "finetune_lr": cfg.finetune_lr,
                                   "finetune_anchor": cfg.finetune_anchor, "finetune_replay": cfg.finetune_replay,
                                   "batch_size": sizing.batch_size, "lr": cfg.lr, "tasks": data[i]["tasks"]},
                         evaluation={k.split("/", 1)[1]: v for k, v in ctx.evaluations.items() if k.startswith(f"{stage}/")})
        ctx.run.event("artifact", name=f"cognate-{SPECIALISATIONS[i]}", path=str(ctx.artifact(f"cognate-{SPECIALISATIONS[i]}")),
                      step=ctx.global_step)
        ctx.mark_stage_done(stage)
    summarise(ctx, cfg, data_all, seed, sizing.to_dict(), base)
