"""The run of ``voltx run evomerge`` (:mod:`voltx_agentforge.evomerge`).

The three Cognate models (read through the phase 1 artifact contract) -> sizing and pre-flight
-> the baselines (each input, their uniform average) -> generation 0 (the 8 combinations) ->
one logged step per generation (best and mean fitness, diversity), the next generation drawn
by :mod:`voltx_agentforge.evolution` -> the champion measured on the report set and saved as a
Cognate model directory (phase 3 reads it with ``cognate_artifacts.load_model``).

Exact resume: a checkpoint holds the population's tensors (``ind<k>/<tensor>``), their genomes
and fitness, the generation, the combinations used, the history and the GA's generator; the
merges draw from their genomes' seeds and the fitness is deterministic, so a resumed evolution
ends bitwise equal to an uninterrupted one on CPU.
"""

from __future__ import annotations

import hashlib
import time

import torch
import torch.nn.functional as F

from voltx.errors import DataError, Preempted
from voltx.train.context import RunContext
from voltx.train.preflight import check_resources
from voltx_agentforge import cognate_artifacts as store
from voltx_agentforge.cognate_data import collate, encode_example, source_records
from voltx_agentforge.cognate_model import CognateArgs, CognateNet
from voltx_agentforge.evolution import (Individual, collapsed_diversity, diversity, flat, initial_genomes, keep_diverse,
                                        mean_pairwise_distance, next_generation, ranked)
from voltx_agentforge.evomerge import STAGE, EvoMergeConfig
from voltx_agentforge.evomerge_inputs import base_dir, model_dirs
from voltx_agentforge.merge_ops import core_layers, linear, merge, technique_names
from voltx_agentforge.sizing import categorize

GENERATOR = "evolution"


class Scorer:
    """A state dict's exact-match accuracy and answer probability on fixed problems, teacher-forced
    (``evomerge.fitness`` picks which one selection ranks by).

    Accuracy: an answer counts when every answer byte and the closing EOS is the model's argmax
    given the bytes before it, which is exactly when greedy decoding would write it (one
    forward pass instead of one per byte). Probability: the mean probability of the whole answer
    (its bytes and EOS), the exact-match rate expected when answers are sampled: smooth, and on
    the scale of accuracy. (Ranking by accuracy on a few hundred problems at ~15% selected
    noise; the geometric mean of the per-byte probability, tried next, is ruled by the worst
    answers and ranked a 43%-accurate input last of three, at 0.09 against 0.35 for a
    15%-accurate one. At 60-80% the probability ranks confident merges that lost a skill over
    accurate ones that kept it: README.)"""

    def __init__(self, rows, batch: int, device, kinds: list[str] | None = None) -> None:
        self.device, self.nets = device, {}
        self.batches = [collate(rows[i:i + batch], 0.0) for i in range(0, len(rows), batch)]
        self.count = len(rows)
        self.kinds = kinds or [""] * len(rows)
        """Each problem's kind (its record's ``task``), for :meth:`accuracy_by_kind`."""

    def net(self, args: CognateArgs) -> CognateNet:
        if args not in self.nets:
            with torch.random.fork_rng(devices=[]):  # building a net draws initial weights: never from the run's RNG
                self.nets[args] = CognateNet(args).to(self.device).eval()
        return self.nets[args]

    @torch.no_grad()
    def per_problem(self, tensors: dict[str, torch.Tensor], args: CognateArgs) -> tuple[torch.Tensor, torch.Tensor]:
        """(right or not, probability of the whole answer) per problem."""
        net = self.net(args)
        net.load_state_dict(tensors)
        hits, probs = [], []
        for b in self.batches:
            ids, targets, answer = b["ids"].to(self.device), b["targets"].to(self.device), b["weights"].to(self.device) > 0
            logits = net(ids)["logits"].float()
            hits.append(((logits.argmax(-1) == targets) | ~answer).all(-1).double().cpu())
            logp = F.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            probs.append(torch.exp((logp * answer).sum(-1)).double().cpu())
        return torch.cat(hits), torch.cat(probs)

    def __call__(self, tensors: dict[str, torch.Tensor], args: CognateArgs) -> tuple[float, float]:
        hits, probs = self.per_problem(tensors, args)
        return float(hits.sum()) / self.count, float(probs.sum()) / self.count

    def accuracy_by_kind(self, tensors: dict[str, torch.Tensor], args: CognateArgs) -> dict[str, float]:
        """Accuracy per kind of problem: which of the inputs' skills a merge kept."""
        hits = self.per_problem(tensors, args)[0].tolist()
        return {kind: sum(h for h, k in zip(hits, self.kinds) if k == kind) / self.kinds.count(kind)
                for kind in sorted(set(self.kinds))}


class Population:
    """The checkpoint's ``model`` file: every individual's tensors as ``ind<k>/<name>``."""

    def __init__(self, people: list[Individual]) -> None:
        self.people = people

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"ind{k}/{name}": t.clone() for k, ind in enumerate(self.people) for name, t in ind.tensors.items()}


POOL = 3
"""Held-out records read per fitness and report place: the two sets are split by question, so
the pool must hold enough distinct questions for both (the generator repeats its questions)."""


def held_out(cfg: EvoMergeConfig, max_len: int) -> tuple[list, list, int, list[str]]:
    """(fitness rows, report rows, total records, the report problems' kinds) from the test split
    of ``fitness_data``, **disjoint by question**: selection must never have seen a report
    problem, and the generator's test split repeats questions (numbers up to 5: 171 of 450 report
    problems had their question in the fitness set). The distinct questions, ordered by a hash
    of their text (so every kind is split alike), go to the fitness side in the fitness set's
    share of places, the rest to the report side; each side keeps its records in the order read."""
    wanted = cfg.fitness_examples + cfg.report_examples
    records = source_records(cfg.fitness_data, "test", POOL * wanted, "evomerge.fitness_data")[:POOL * wanted]
    questions = sorted({r["input"] for r in records}, key=lambda q: hashlib.sha256(q.encode("utf-8")).digest())
    if len(questions) < 2:
        raise DataError(f"evomerge.fitness_data: {cfg.fitness_data} gave {len(records)} held-out records of "
                        f"{len(questions)} distinct question(s); the fitness set needs one question and the report set "
                        "another (the two never share a question)")
    share = min(len(questions) - 1, max(1, round(len(questions) * cfg.fitness_examples / wanted)))
    fitness_questions = set(questions[:share])
    fit = [r for r in records if r["input"] in fitness_questions][:cfg.fitness_examples]
    rep = [r for r in records if r["input"] not in fitness_questions][:cfg.report_examples]
    return ([encode_example(r, max_len) for r in fit], [encode_example(r, max_len) for r in rep], len(records),
            [str(r.get("task") or "") for r in rep])


def restore(point, inputs_keys: list[str]) -> tuple[list[Individual], dict]:
    """The population and GA state of a checkpoint."""
    tensors, state = point.tensors("model"), point.state
    people = []
    for k, saved in enumerate(state["population"]):
        ind = Individual(saved["genome"], {name: tensors[f"ind{k}/{name}"] for name in inputs_keys}, saved["fitness"], saved["accuracy"],
                         saved.get("probability"))
        people.append(ind)
    return people, state


def run(ctx: RunContext) -> None:
    cfg: EvoMergeConfig = ctx.settings
    device = ctx.device
    loaded = [store.load_model(d) for d in model_dirs(cfg)]
    inputs = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m, _ in loaded]
    init = {k: v.detach().clone() for k, v in store.load_model(base_path)[0].state_dict().items()} if (base_path := base_dir(cfg)) else None
    args = [CognateArgs(**c["args"]) for _, c in loaded]
    params = sum(t.numel() for t in inputs[0].values())
    layers = core_layers(inputs[0])
    fit_rows, report_rows, total, report_kinds = held_out(cfg, args[0].max_len)
    category, planned = categorize(params)
    figures = check_resources(ctx.run.dir, params * cfg.population, ctx.config.run.keep_checkpoints, device)
    batch = cfg.eval_batch or planned
    ctx.run.event("sizing", step=ctx.global_step, params=params, category=category, batch_size=batch,
                  strategy="population on CPU, one individual at a time on the device", **figures)
    ctx.say(f"[evomerge] sizing: {category} ({params:,} parameters per model, {cfg.population} in the population) -> "
            f"evaluation batch {batch}; {figures['free_mem_gb']:.1f} GiB memory and {figures['free_disk_gb']:.1f} GiB disk free")
    ctx.say(f"[evomerge] {len(fit_rows)} held-out problems for fitness, {len(report_rows)} for the report, no question in both ({total} read); "
            f"task vectors against {'the shared initialisation (' + str(base_path) + ')' if init else 'the interpolation (no cognate-base/)'}")
    score, report = Scorer(fit_rows, batch, device), Scorer(report_rows, batch, device, report_kinds)
    unit = mean_pairwise_distance([flat(t) for t in inputs])
    base = baselines(cfg, inputs, args, score, report)
    evolve(ctx, cfg, inputs, args, layers, score, report, unit, base, lambda genome: merge(inputs, genome, init))


def by_kind(prefix: str, report: Scorer, tensors, args: CognateArgs) -> dict[str, float]:
    """``<prefix>_report_<kind>``: report accuracy per kind of problem (one kind: none, the total says it)."""
    kinds = report.accuracy_by_kind(tensors, args)
    return {f"{prefix}_report_{kind}": acc for kind, acc in kinds.items()} if len(kinds) > 1 else {}


def fitness_of(cfg: EvoMergeConfig, scored: tuple[float, float]) -> float:
    """What selection ranks by (``evomerge.fitness``), from a :class:`Scorer`'s (accuracy, probability)."""
    return scored[0] if cfg.fitness == "accuracy" else scored[1]


def baselines(cfg: EvoMergeConfig, inputs, args, score: Scorer, report: Scorer) -> dict[str, float]:
    """Each input's fitness and report accuracy (also per kind); the uniform average run with the fittest input's config."""
    fit = [fitness_of(cfg, score(t, a)) for t, a in zip(inputs, args)]
    rep = [report(t, a)[0] for t, a in zip(inputs, args)]
    best = max(range(len(inputs)), key=lambda i: fit[i])
    uniform = linear(inputs, [1 / len(inputs)] * len(inputs))
    kinds = {k: v for i, (t, a) in enumerate(zip(inputs, args)) for k, v in by_kind(f"input{i + 1}", report, t, a).items()}
    return {"best_input_fitness": max(fit), "best_input_report": max(rep),
            "uniform_fitness": fitness_of(cfg, score(uniform, args[best])), "uniform_report": report(uniform, args[best])[0],
            **{f"input{i + 1}_fitness": f for i, f in enumerate(fit)}, **{f"input{i + 1}_report": r for i, r in enumerate(rep)},
            **kinds}


def evolve(ctx: RunContext, cfg: EvoMergeConfig, inputs, args, layers: int, score: Scorer, report: Scorer, unit: float,
           base: dict[str, float], remerge) -> None:
    """Generation 0 (or the checkpoint's) to the last: evaluate the new individuals, log the
    generation as a step, draw the next one; checkpoint every ``run.checkpoint_every``
    generations (every one when 0) and at a stop signal."""
    gen = torch.Generator().manual_seed(ctx.config.run.seed)
    point = ctx.resume_point(STAGE)
    if point is not None:
        population, state = restore(point, list(inputs[0]))
        gen.set_state(point.tensors("extra")[f"rng/gen/{GENERATOR}"])
        first, next_id, used, history = state["generation"], state["next_id"], {tuple(c) for c in state["used"]}, state["history"]
        spent, initial_report = state["evolve_seconds"], state["initial_report"]
        ctx.say(f"[evomerge] resumed at generation {first + 1}/{cfg.generations}")
    else:
        genomes = initial_genomes(gen, cfg.population, layers)
        population = [Individual(g, remerge(g)) for g in genomes]
        first, next_id, used, history, spent, initial_report = 0, len(genomes), set(), [], 0.0, None
        ctx.run.event("stage_start", stage=STAGE, step=ctx.global_step, total_steps=cfg.generations,
                      parameters=sum(t.numel() for t in inputs[0].values()))
    ctx.run.update_manifest(total_steps=cfg.generations, stage=STAGE)
    ctx.reporter.start(STAGE, cfg.generations, completed=first)
    every = max(1, ctx.config.run.checkpoint_every)
    began, saved_at = time.perf_counter(), first if point is not None else -1  # the generation the newest checkpoint holds

    def save(generation: int) -> None:
        nonlocal saved_at
        saved_at = ctx.global_step = generation
        ctx.checkpoint(stage=STAGE, model=Population(population), optimizer=None, stage_step=generation, epoch=generation, batch=0,
                       extra_tensors={}, generators={GENERATOR: gen},
                       extra_state={"generation": generation, "next_id": next_id, "used": sorted(used), "history": history,
                                    "evolve_seconds": spent + time.perf_counter() - began, "initial_report": initial_report,
                                    "population": [{"genome": p.genome, "fitness": p.fitness, "accuracy": p.accuracy,
                                                    "probability": p.probability} for p in population]})

    for g in range(first, cfg.generations):
        if ctx.stop.requested:
            if saved_at != g:
                save(g)
            ctx.run.event("preempted", signal=ctx.stop.signal_name, step=ctx.global_step, stage=STAGE)
            raise Preempted(f"stopped by {ctx.stop.signal_name or 'a signal'} at generation {g + 1}; resume with "
                            f"`voltx run evomerge --resume {ctx.run.dir}`")
        tick = time.perf_counter()
        for ind in population:
            if ind.fitness is None:
                ind.accuracy, ind.probability = score(ind.tensors, args[ind.genome["args_from"]])
                ind.fitness = fitness_of(cfg, (ind.accuracy, ind.probability))
                used.add(tuple(ind.genome["combo"]))
        if initial_report is None:
            initial_report = report(ranked(population)[0].tensors, args[ranked(population)[0].genome["args_from"]])[0]
        history.append(log_generation(ctx, cfg, population, unit, g, time.perf_counter() - tick))
        if g + 1 == cfg.generations:
            break
        population, next_id = next_generation(population, cfg, gen, layers, next_id, remerge)
        population, next_id = keep_diverse(population, cfg, gen, layers, next_id, remerge, unit)
        if (g + 1) % every == 0:
            save(g + 1)
    ctx.reporter.stop()
    finish(ctx, cfg, population, args, report, unit, base, history, used, spent + time.perf_counter() - began, initial_report)


def log_generation(ctx: RunContext, cfg: EvoMergeConfig, population: list[Individual], unit: float, g: int, seconds: float) -> dict:
    """Generation ``g`` as the run's step ``g + 1``: what the console charts."""
    fitness = [p.fitness for p in population]
    best = ranked(population)[0]
    figures = {"best_fitness": best.fitness, "mean_fitness": sum(fitness) / len(fitness), "diversity": diversity(population, unit),
               "best_accuracy": best.accuracy, "mean_accuracy": sum(p.accuracy for p in population) / len(population),
               "combos": len({tuple(p.genome["combo"]) for p in population})}
    ctx.global_step = g + 1
    ctx.hub.log({"step": g + 1, "stage": STAGE, "stage_step": g + 1, "total_steps": cfg.generations, "epoch": g + 1,
                 "losses": {}, "steps_per_sec": 1.0 / max(seconds, 1e-9), **figures})
    ctx.say(f"[evomerge] generation {g + 1}/{cfg.generations}: best fitness {best.fitness:.4f} (accuracy {best.accuracy:.1%}; "
            f"#{best.genome['id']}, {'+'.join(technique_names(tuple(best.genome['combo'])))}), mean {figures['mean_fitness']:.4f}, "
            f"diversity {figures['diversity']:.3f}, {figures['combos']} combinations | {seconds:.1f} s")
    ctx.reporter.update(g + 1, f"best fitness {best.fitness:.4f}")
    return {"generation": g + 1, **figures, "best_id": best.genome["id"]}


def finish(ctx: RunContext, cfg: EvoMergeConfig, population, args, report: Scorer, unit: float, base: dict, history: list,
           used: set, seconds: float, initial_report: float) -> None:
    """The champion on the report set, the verdicts' metrics, the champion's model directory and evomerge.json."""
    champion = ranked(population)[0]
    champ_args = args[champion.genome["args_from"]]
    champion_report = report(champion.tensors, champ_args)[0]
    floor = 1 / report.count  # a reference at 0% counts as one problem right: the ratio stays finite

    def gain(value: float, reference: float) -> float:
        return (value - reference) / max(reference, floor)

    metrics = {**base, "champion_fitness": champion.fitness, "champion_accuracy": champion.accuracy, "champion_report": champion_report, "initial_report": initial_report,
               "improvement": gain(champion_report, base["best_input_report"]),
               "improvement_uniform": gain(base["uniform_report"], base["best_input_report"]),
               "improvement_initial": gain(initial_report, base["best_input_report"]),
               "improvement_fitness": gain(champion.fitness, base["best_input_fitness"]),
               "diversity_min": min(h["diversity"] for h in history), "diversity_final": history[-1]["diversity"],
               "diversity_collapsed": collapsed_diversity(population, cfg.elites, unit),
               "combos_used": len(used), "combos_elites": len({tuple(p.genome["combo"]) for p in ranked(population)[:cfg.elites]}),
               "evolve_seconds": seconds, "generations": len(history), **by_kind("champion", report, champion.tensors, champ_args)}
    ctx.record_evaluation(STAGE, ctx.global_step, cfg.generations, metrics)
    net = CognateNet(champ_args)
    net.load_state_dict(champion.tensors)
    summary = {"genome": champion.genome, "techniques": technique_names(tuple(champion.genome["combo"])),
               "fitness": champion.fitness, "accuracy": champion.accuracy, "report_accuracy": champion_report}
    store.save_model(ctx.artifact("evomerge-champion"), net, "evomerge", evomerge=summary)
    ctx.run.event("artifact", name="evomerge-champion", path=str(ctx.artifact("evomerge-champion")), step=ctx.global_step)
    store.write_summary(ctx.artifact("evomerge.json"), {"champion": summary, "metrics": metrics, "history": history,
                                                        "combos_used": sorted(used)})
    ctx.say(f"[evomerge] champion #{champion.genome['id']} ({'+'.join(summary['techniques'])}): report accuracy "
            f"{champion_report:.1%} vs best input {base['best_input_report']:.1%}, uniform average {base['uniform_report']:.1%}, "
            f"best initial merge {initial_report:.1%} | improvement {metrics['improvement']:+.1%} | "
            f"diversity min {metrics['diversity_min']:.3f} | {len(used)}/8 combinations | {seconds:.0f} s")
    kinds = sorted(k.removeprefix("champion_report_") for k in metrics if k.startswith("champion_report_"))
    if kinds:  # which skills the champion kept, beside each input's
        rows = [("champion", "champion")] + [(f"input {i}", f"input{i}") for i in range(1, 4)]
        ctx.say("[evomerge] report accuracy per kind (" + ", ".join(kinds) + "): " + "; ".join(
            f"{label} " + " / ".join(f"{metrics[f'{key}_report_{k}']:.0%}" for k in kinds) for label, key in rows))
