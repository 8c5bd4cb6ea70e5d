"""EvoMerge's genetic algorithm: genomes (merge recipes), the initial population, the next
generation, and the population's diversity.

A **genome** is a JSON dict, the recipe :func:`voltx_agentforge.merge_ops.merge` applies to
the three inputs: ``combo`` (one bit per technique pair), ``weights`` (a point of the simplex),
``density`` and ``scale`` (the task-vector step), ``seed`` (DARE's drop), ``stack`` (a
frankenmerge's source per core layer), ``path`` and ``parts`` (a dataflow merge's
(source, layer) per core position and sources of the memory and halting head), ``args_from``
(which input's config the child runs with: its refinement steps), and where it came from.

**The next generation** (the plan's): sorted by fitness, the ``elites`` best are kept as they
are; the ``losers`` worst are merged in groups of ``loser_group`` (the uniform average of their
weights: the group's child, its genome the mean of theirs); the rest of the places go to
mutants of the elites, re-merged from the three inputs with new weights (Gaussian noise on
weights, density and scale, each technique choice flipped with ``flip_rate``, a new DARE seed).

Every random draw comes from one ``torch.Generator`` that the run checkpoints, so a resumed
evolution draws exactly what the uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations, product

import torch

INPUTS = 3
SEED_RANGE = 2**31 - 1


@dataclass
class Individual:
    genome: dict
    tensors: dict[str, torch.Tensor]
    fitness: float | None = None
    """What selection ranks by (``evomerge.fitness``): the accuracy or the probability below (None until evaluated)."""
    accuracy: float | None = None
    """Exact-match accuracy on the fitness set (breaks ties under probability)."""
    probability: float | None = None
    """The mean probability of the whole answer on the fitness set (the expected exact-match rate
    under sampling; breaks ties under accuracy)."""
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[float, float, float]:
        return tuple(-1.0 if v is None else v for v in (self.fitness, self.accuracy, self.probability))


def _uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _choice(gen: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=gen))


MERGED_SHARE = 0.5
"""Chance that a layer gene names the merged model (source 0) rather than one of the three inputs
(1/3 of the rest each). Drawn uniformly over the four, three of four core blocks came whole from
one input, so a one-block model's merge was mostly thrown away: the quick champion was the
reasoning input's block with a little else merged, 7% under that input (measured; README)."""


def _source(gen: torch.Generator) -> int:
    """A layer gene's source: 0 (the merged model) with :data:`MERGED_SHARE`, else an input 1..3."""
    return 0 if _uniform(gen) < MERGED_SHARE else 1 + _choice(gen, INPUTS)


def _layer_genes(gen: torch.Generator, layers: int) -> dict:
    return {"stack": [_source(gen) for _ in range(layers)],
            "path": [[_source(gen), _choice(gen, layers)] for _ in range(layers)],
            "parts": [_source(gen) for _ in range(2)]}


def random_genome(gen: torch.Generator, combo: tuple[int, int, int], layers: int, ident: int) -> dict:
    """A recipe with ``combo``'s techniques and random settings (weights: a uniform point of the simplex)."""
    raw = [-torch.log(torch.rand((), generator=gen).clamp_min(1e-12)) for _ in range(INPUTS)]
    total = float(sum(raw))
    return {"id": ident, "origin": "initial", "combo": list(combo), "weights": [float(r) / total for r in raw],
            "density": _uniform(gen, 0.3, 0.9), "scale": _uniform(gen, 0.5, 1.0), "seed": _choice(gen, SEED_RANGE),
            "args_from": _choice(gen, INPUTS), **_layer_genes(gen, layers)}


def initial_genomes(gen: torch.Generator, population: int, layers: int) -> list[dict]:
    """The 8 binary combinations, then random combinations up to ``population``."""
    combos = list(product((0, 1), repeat=3))
    combos += [combos[_choice(gen, len(combos))] for _ in range(population - len(combos))]
    return [random_genome(gen, c, layers, i) for i, c in enumerate(combos)]


def _normalised(weights: list[float]) -> list[float]:
    clipped = [max(w, 0.01) for w in weights]
    return [w / sum(clipped) for w in clipped]


def mutate(parent: dict, gen: torch.Generator, sigma: float, flip_rate: float, layers: int, ident: int) -> dict:
    """``parent``'s recipe with new weights (see the module docstring)."""
    def noise() -> float:
        return sigma * float(torch.randn((), generator=gen))

    child = {**parent, "id": ident, "origin": f"mutant of #{parent['id']}"}
    child["weights"] = _normalised([w + noise() for w in parent["weights"]])
    child["density"] = min(max(parent["density"] + noise(), 0.05), 0.99)
    child["scale"] = min(max(parent["scale"] + noise(), 0.0), 1.5)
    child["seed"] = _choice(gen, SEED_RANGE)
    child["combo"] = [1 - b if _uniform(gen) < flip_rate else b for b in parent["combo"]]
    if _uniform(gen) < flip_rate:
        child.update(_layer_genes(gen, layers))
    if _uniform(gen) < flip_rate:
        child["args_from"] = _choice(gen, INPUTS)
    return child


def merge_losers(group: list[Individual], ident: int) -> Individual:
    """The group's uniform average (weights and genome), its best member's layer genes and config."""
    genomes = [ind.genome for ind in group]
    mean = {k: sum(g[k] for g in genomes) / len(genomes) for k in ("density", "scale")}
    genome = {**genomes[0], **mean, "id": ident, "origin": "losers " + ", ".join(f"#{g['id']}" for g in genomes),
              "weights": _normalised([sum(g["weights"][i] for g in genomes) / len(genomes) for i in range(INPUTS)]),
              "combo": [int(2 * sum(g["combo"][i] for g in genomes) > len(genomes)) for i in range(3)]}
    tensors = {k: sum(ind.tensors[k] for ind in group) / len(group) for k in group[0].tensors}
    return Individual(genome, tensors)


def ranked(population: list[Individual]) -> list[Individual]:
    """Best first (fitness, then accuracy; the older individual first on a tie)."""
    return sorted(population, key=lambda ind: (*(-v for v in ind.key), ind.genome["id"]))


def next_generation(population: list[Individual], cfg, gen: torch.Generator, layers: int, next_id: int,
                    remerge) -> tuple[list[Individual], int]:
    """Elites kept, losers merged, mutants of the elites re-merged (``remerge(genome) -> tensors``)."""
    order = ranked(population)
    elites = order[:cfg.elites]
    losers = order[len(order) - cfg.losers:] if cfg.losers else []
    children: list[Individual] = []
    for start in range(0, len(losers), cfg.loser_group):
        children.append(merge_losers(losers[start:start + cfg.loser_group], next_id))
        next_id += 1
    mutants = []
    for k in range(cfg.population - len(elites) - len(children)):
        genome = mutate(elites[k % len(elites)].genome, gen, cfg.mutation_sigma, cfg.flip_rate, layers, next_id)
        next_id += 1
        mutants.append(Individual(genome, remerge(genome)))
    return [*elites, *mutants, *children], next_id


def keep_diverse(population: list[Individual], cfg, gen: torch.Generator, layers: int, next_id: int, remerge,
                 unit: float) -> tuple[list[Individual], int]:
    """Random immigrants (Grefenstette 1992) into the most crowded places while the population's
    diversity is under ``cfg.diversity_floor``: the non-elite individual nearest to another
    (crowding: a near-duplicate adds nothing to the search) is replaced by a fresh recipe, a
    random combination with random weights re-merged from the three inputs. The elites (the
    first ``cfg.elites``, as :func:`next_generation` orders them) are never replaced, so the best
    fitness never falls; each place is replaced at most once per generation."""
    people = list(population)
    vectors = [flat(ind.tensors) for ind in people]
    open_places = set(range(cfg.elites, len(people)))
    while open_places and mean_pairwise_distance(vectors) / unit < cfg.diversity_floor:
        def nearest(k: int) -> float:
            return min(float((vectors[k] - v).norm()) for j, v in enumerate(vectors) if j != k)

        k = min(sorted(open_places), key=nearest)
        genome = random_genome(gen, tuple(_choice(gen, 2) for _ in range(3)), layers, next_id)
        genome["origin"] = f"immigrant for #{people[k].genome['id']}"
        next_id += 1
        people[k] = Individual(genome, remerge(genome))
        vectors[k] = flat(people[k].tensors)
        open_places.discard(k)
    return people, next_id


def flat(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten().double() for _, t in sorted(tensors.items()) if t.is_floating_point()])


def mean_pairwise_distance(vectors: list[torch.Tensor]) -> float:
    pairs = list(combinations(vectors, 2))
    return sum(float((a - b).norm()) for a, b in pairs) / len(pairs) if pairs else 0.0


def diversity(population: list[Individual], unit: float) -> float:
    """Mean pairwise L2 distance of the individuals' weights, in units of ``unit`` (the three
    inputs' mean pairwise distance): 1 = as spread as the inputs, 0 = all the same model."""
    return mean_pairwise_distance([flat(ind.tensors) for ind in population]) / unit


def collapsed_diversity(population: list[Individual], elites: int, unit: float) -> float:
    """The diversity pure elitism would keep: the elites, every other place a copy of the champion."""
    order = ranked(population)
    champion = flat(order[0].tensors)
    kept = [flat(ind.tensors) for ind in order[:elites]] + [champion] * (len(population) - elites)
    return mean_pairwise_distance(kept) / unit
