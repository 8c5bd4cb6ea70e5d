"""EvoMerge's parts on tiny tensors: the six techniques, the 8 recipes, the genetic algorithm's
next generation, diversity."""

from __future__ import annotations

from itertools import product
from types import SimpleNamespace

import pytest
import torch

from voltx_agentforge.cognate_model import CognateArgs, CognateNet
from voltx_agentforge.evolution import (Individual, diversity, flat, initial_genomes, keep_diverse, mean_pairwise_distance,
                                        merge_losers, mutate, next_generation, ranked)
from voltx_agentforge.merge_ops import dataflow, frankenmerge, linear, merge, slerp_tensor, task_vectors

ARGS = CognateArgs(d_model=8, heads=2, layers=2, refine_steps=2, memory_slots=3, max_len=16)


def three_models():
    out = []
    for i in range(3):
        torch.manual_seed(0)
        net = CognateNet(ARGS)
        gen = torch.Generator().manual_seed(i + 1)
        out.append({k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in net.state_dict().items()})
    return out


def test_linear_and_slerp_interpolate_between_their_inputs():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.equal(slerp_tensor(a, b, 0.0), a) and torch.allclose(slerp_tensor(a, b, 1.0), b)
    mid = slerp_tensor(a, b, 0.5)
    assert torch.allclose(mid.norm(), torch.tensor(1.0)) and torch.allclose(mid, torch.tensor([0.5**0.5, 0.5**0.5]))
    assert torch.allclose(linear([{"x": a}, {"x": b}, {"x": a}], [0.25, 0.5, 0.25])["x"], torch.tensor([0.5, 0.5]))


def test_ties_and_dare_depend_on_their_seed_only_and_keep_the_global_rng():
    models = three_models()
    base = linear(models, [1 / 3] * 3)
    before = torch.get_rng_state()
    one = task_vectors(base, models, [0.3, 0.3, 0.4], 0.5, 1.0, "dare", seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    again, other = (task_vectors(base, models, [0.3, 0.3, 0.4], 0.5, 1.0, "dare", seed=s) for s in (7, 8))
    assert all(torch.equal(one[k], again[k]) for k in one) and any(not torch.equal(one[k], other[k]) for k in one)
    ties = task_vectors(base, models, [1.0, 1.0, 1.0], 0.5, 0.0, "ties", seed=0)
    assert all(torch.equal(ties[k], base[k]) for k in base)  # scale 0: the interpolation alone


def test_against_the_shared_initialisation_a_lone_skill_enters_whole():
    models = three_models()
    init = {k: v.clone() for k, v in models[1].items()}
    models[2] = init  # input 1 alone learned something: its task vector survives the merge at uniform weights
    base = linear(models, [1 / 3] * 3)
    for method in ("ties", "dare"):
        out = task_vectors(base, models, [1 / 3] * 3, 0.98, 1.0, method, seed=0, init=init)
        tau = models[0]["head.weight"] - init["head.weight"]
        gap = (out["head.weight"] - models[0]["head.weight"]).abs()
        assert float((gap > 0.05 * tau.abs()).float().mean()) <= 0.05, method  # only the trimmed (dropped) few % differ
        kept = task_vectors(base, models, [1 / 3] * 3, 0.98, 0.0, method, seed=0, init=init)
        assert all(torch.equal(kept[k], base[k]) for k in base)  # scale 0: the interpolation alone


def test_frankenmerge_stacks_chosen_layers_and_dataflow_rewires_the_path():
    models = three_models()
    merged = linear(models, [1 / 3] * 3)
    stacked = frankenmerge(merged, models, [2, 0])
    assert torch.equal(stacked["core.0.qkv.weight"], models[1]["core.0.qkv.weight"])
    assert torch.equal(stacked["core.1.qkv.weight"], merged["core.1.qkv.weight"])
    flowed = dataflow(merged, models, [(3, 1), (1, 1)], [1, 0])
    assert torch.equal(flowed["core.0.ff.0.weight"], models[2]["core.1.ff.0.weight"])  # layer 1 of input 3 runs first
    assert torch.equal(flowed["core.1.ff.0.weight"], models[0]["core.1.ff.0.weight"])
    assert torch.equal(flowed["memory.slots"], models[0]["memory.slots"]) and torch.equal(flowed["embed.weight"], merged["embed.weight"])


def test_the_initial_population_holds_all_8_combinations_and_each_recipe_makes_a_loadable_model():
    models = three_models()
    genomes = initial_genomes(torch.Generator().manual_seed(0), 10, layers=2)
    assert {tuple(g["combo"]) for g in genomes[:8]} == set(product((0, 1), repeat=3)) and len(genomes) == 10
    for genome in genomes[:8]:
        state = merge(models, genome)
        CognateNet(ARGS).load_state_dict(state)  # every name and shape in place
        assert all(torch.isfinite(t).all() for t in state.values())


def test_layer_genes_name_the_merged_model_half_the_time_and_every_input_otherwise():
    from voltx_agentforge.evolution import MERGED_SHARE

    genomes = initial_genomes(torch.Generator().manual_seed(0), 400, 1)
    sources = [g["stack"][0] for g in genomes] + [g["path"][0][0] for g in genomes] + [s for g in genomes for s in g["parts"]]
    assert abs(sources.count(0) / len(sources) - MERGED_SHARE) < 0.05 and set(sources) == {0, 1, 2, 3}


def test_the_next_generation_keeps_the_elites_merges_the_losers_and_remerges_mutants():
    models = three_models()
    gen = torch.Generator().manual_seed(1)
    population = [Individual(g, merge(models, g), fitness=f / 10, accuracy=0.0)
                  for g, f in zip(initial_genomes(gen, 8, layers=2), range(8))]
    cfg = SimpleNamespace(population=8, elites=2, losers=6, loser_group=3, mutation_sigma=0.1, flip_rate=0.0)
    nxt, next_id = next_generation(population, cfg, gen, 2, 8, lambda g: merge(models, g))
    best = ranked(population)[:2]
    assert nxt[:2] == best and next_id == 14 and len(nxt) == 8
    mutants, children = nxt[2:6], nxt[6:]
    assert all(m.fitness is None and m.genome["origin"].startswith("mutant of #") for m in mutants)
    assert children[0].genome["origin"] == "losers #5, #4, #3"
    expected = sum(population[i].tensors["head.weight"] for i in (3, 4, 5)) / 3
    assert torch.allclose(children[0].tensors["head.weight"], expected)
    assert merge_losers(population[:3], 99).genome["id"] == 99
    child = mutate(best[0].genome, gen, 0.1, 0.0, 2, 50)
    assert child["combo"] == best[0].genome["combo"] and child["weights"] != best[0].genome["weights"]
    assert abs(sum(child["weights"]) - 1) < 1e-9


def test_diversity_is_one_for_the_inputs_and_zero_for_copies():
    models = three_models()
    people = [Individual({}, m) for m in models]
    unit = mean_pairwise_distance([flat(m) for m in models])
    assert diversity(people, unit) == pytest.approx(1.0)
    assert diversity([Individual({}, models[0])] * 3, unit) == 0.0


def test_immigrants_replace_the_crowded_non_elites_until_the_floor_is_met_and_never_an_elite():
    models = three_models()
    unit = mean_pairwise_distance([flat(m) for m in models])
    gen = torch.Generator().manual_seed(3)
    (elite, other), rest = initial_genomes(gen, 8, layers=2)[:2], {"id": 99, "origin": "mutant of #0"}
    crowd = [Individual(elite, merge(models, elite), 0.9, 0.5), Individual(other, merge(models, other), 0.8, 0.4),
             *[Individual({**rest, "id": 99 + k}, merge(models, elite)) for k in range(6)]]  # six copies of the champion
    assert diversity(crowd, unit) < 0.3
    cfg = SimpleNamespace(elites=2, diversity_floor=0.3)
    kept, next_id = keep_diverse(crowd, cfg, gen, 2, 200, lambda g: merge(models, g), unit)
    assert kept[:2] == crowd[:2] and diversity(kept, unit) >= 0.3
    new = [ind for ind in kept[2:] if ind.genome["origin"].startswith("immigrant for #")]
    assert new and next_id == 200 + len(new) and all(ind.fitness is None for ind in new)
    off = SimpleNamespace(elites=2, diversity_floor=0.0)
    assert keep_diverse(crowd, off, gen, 2, 200, lambda g: merge(models, g), unit) == (crowd, 200)


def test_the_report_set_shares_no_question_with_the_fitness_set():
    """The generator's test split repeats questions; selection must never see a report problem."""
    from collections import Counter

    from voltx_agentforge.evomerge import EvoMergeConfig
    from voltx_agentforge.evomerge_run import held_out

    cfg = EvoMergeConfig(fitness_data="gen:arith_words_gen?max_number=5&ops=mul,fact,inc", fitness_examples=300, report_examples=300)
    fit, rep, read, kinds = held_out(cfg, 128)
    assert (len(fit), len(rep)) == (300, 300) and read > 600
    prompts = lambda rows: {tuple(r.ids[:r.prompt_len]) for r in rows}  # noqa: E731
    assert not prompts(fit) & prompts(rep)
    assert min(Counter(kinds).values()) >= 60  # every kind on the report side, not only the rare questions
