"""``voltx run evomerge``: Agent Forge phase 2, the three Cognate models merged and evolved.

The plan's six merge techniques in three pairs (:mod:`voltx_agentforge.merge_ops`), one
choice from each pair making a merge recipe: the 8 binary combinations are the initial
population, then a genetic algorithm (:mod:`voltx_agentforge.evolution`) runs
``generations`` generations: the elites are kept, mutated copies of them are re-merged from
the three inputs with new weights, the losers are merged into new individuals, and random
immigrants replace the most crowded places while the population's diversity is under
``diversity_floor``. Fitness is the mean probability of the whole answer on held-out word
problems (the test split of Cognate's task, which Cognate never trains on); the champion is
then measured once on a second held-out slice that selection never saw, beside the best input
model, the uniform average of the three and the best merge of generation 0.

Import-light: the run is :mod:`voltx_agentforge.evomerge_run`, imported only when it runs;
the input check reads JSON and safetensors headers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from voltx.config_checks import require_at_least
from voltx.errors import ConfigError
from voltx.plugin_specs import Deliverable, PhaseSpec

STAGE = "evomerge"
FITNESS = ("accuracy", "probability")
COMBOS = 8
"""2 x 2 x 2: one technique from each pair."""
ARTIFACTS = ("evomerge-champion/model.safetensors", "evomerge-champion/config.json", "evomerge.json")

DELIVERABLES = (
    Deliverable(f"{STAGE}/improvement", ">=", 0.20,
                "champion's held-out accuracy over the best input model's, minus 1, on problems selection never saw "
                "(the plan: >= 20%, target 23.5%); past the uniform average of the three and the best initial merge",
                baselines=(f"{STAGE}/improvement_uniform", f"{STAGE}/improvement_initial"), margin=0.0),
    Deliverable(f"{STAGE}/diversity_min", ">", 0.3,
                "the population's lowest diversity over the generations (mean pairwise weight distance, in units of "
                "the three inputs' mean pairwise distance); past what pure elitism keeps (the last generation's elites "
                "with the rest of the population copies of the champion)",
                baselines=(f"{STAGE}/diversity_collapsed",), margin=0.0),
    Deliverable(f"{STAGE}/combos_used", ">=", float(COMBOS),
                "distinct binary combinations evaluated (the plan: all 8 used); past those the last elites carry",
                baselines=(f"{STAGE}/combos_elites",), margin=0.0),
)

QUICK = {"fitness_data": "gen:arith_words_gen?max_number=5&ops=mul,fact,inc", "fitness_examples": 450, "report_examples": 450,
         "generations": 50, "fitness": "accuracy"}
"""Cognate's quick kinds (held-out split; ``fact`` about the 12 everyday things, which the memory
model holds too, not Cognate's 96), the plan's 50 generations, ranked by exact match (the
inputs are at 55-65%, where accuracy on 450 problems ranks as the verdict does; README): minutes on 2 CPU cores."""


@dataclass
class EvoMergeConfig:
    """The ``[evomerge]`` table."""

    PRESETS: ClassVar[dict[str, dict]] = {"quick": QUICK, "full": {}}

    cognate_dir: str = "checkpoints"
    """Where the three Cognate models are: a directory holding cognate-reasoning/, cognate-memory/
    and cognate-speed/ (``[paths].checkpoints_dir``, where ``voltx run cognate`` publishes them,
    or a cognate run's ``artifacts/``)."""
    fitness_data: str = "hub:gsm8k"
    """The held-out word problems (their ``test`` split; a JSONL file is used whole): the first
    ``fitness_examples`` are the fitness set, the next ``report_examples`` the report set."""
    fitness_examples: int = 500
    report_examples: int = 500
    """Problems the champion is measured on after evolution (never seen by selection)."""
    population: int = 8
    """Individuals per generation; at least the 8 combinations of the initial population."""
    generations: int = 50
    elites: int = 2
    """The best individuals kept unchanged into the next generation (and mutated)."""
    loser_group: int = 3
    """Losers merged per new individual (the plan: the bottom 6 in two groups of 3)."""
    losers: int = 6
    """The worst individuals of a generation that are merged in groups of ``loser_group``."""
    mutation_sigma: float = 0.15
    """Standard deviation of the Gaussian noise on a mutant's weights, density and scale."""
    flip_rate: float = 0.2
    """Chance that a mutant flips each of its three technique choices (and redraws its layer choices)."""
    diversity_floor: float = 0.35
    """While the next generation's diversity (README) is under this, its most crowded non-elite
    individual is replaced by a random immigrant (a fresh recipe); 0 turns it off. Above the
    verdict's 0.3: mutants of two elites crowd the population together within a few generations
    (measured: 0.58 -> under 0.3 by generation 3 without it)."""
    fitness: str = "probability"
    """What selection ranks by on the fitness set: ``probability`` (the mean probability of the whole
    answer: smooth, for accuracies near chance) or ``accuracy`` (teacher-forced exact match, what
    the improvement verdict measures; the probability breaks its ties)."""
    eval_batch: int = 100

    def __post_init__(self) -> None:
        require_at_least("evomerge", self, ("fitness_examples", "report_examples", "generations", "eval_batch", "loser_group"))
        if self.population < COMBOS:
            raise ConfigError(f"evomerge.population must be at least {COMBOS} (the initial population is the {COMBOS} "
                              f"binary combinations of the merge techniques), got {self.population}")
        groups = self.losers // self.loser_group if self.loser_group else 0
        if not 1 <= self.elites < self.population or self.losers % self.loser_group or self.elites + self.losers > self.population:
            raise ConfigError(
                f"evomerge: elites ({self.elites}) must be 1 to population - 1, losers ({self.losers}) a multiple of "
                f"loser_group ({self.loser_group}), and elites + losers at most population ({self.population}); "
                "e.g. population 8, elites 2, losers 6, loser_group 3 (the plan's)")
        if self.population - self.elites - groups < 1:
            raise ConfigError(f"evomerge: population {self.population} leaves no room for mutants after {self.elites} elites "
                              f"and {groups} merged loser groups; raise population or lower losers")
        if self.fitness not in FITNESS:
            raise ConfigError(f"evomerge.fitness must be one of {', '.join(FITNESS)}, got {self.fitness!r}")
        if self.diversity_floor < 0:
            raise ConfigError(f"evomerge.diversity_floor must be >= 0 (0 = no immigrants), got {self.diversity_floor}")
        if not 0 <= self.flip_rate <= 1 or self.mutation_sigma < 0:
            raise ConfigError(f"evomerge.flip_rate must be in [0, 1] and evomerge.mutation_sigma >= 0, got "
                              f"{self.flip_rate} and {self.mutation_sigma}")


PHASE = PhaseSpec(
    name="evomerge",
    summary="Agent Forge phase 2: the three Cognate models merged (6 techniques, 8 combinations) and evolved by a genetic algorithm",
    runner="voltx_agentforge.evomerge_run:run",
    config_class=EvoMergeConfig,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
    check="voltx_agentforge.evomerge_inputs:check",
)
