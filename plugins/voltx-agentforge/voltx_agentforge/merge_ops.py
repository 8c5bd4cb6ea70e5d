"""The plan's six merge techniques, in three pairs, over state dicts (name -> tensor).

A merge recipe takes one technique from each pair and applies them in order to the three
input models ``m1, m2, m3`` (weights ``w``, a point of the simplex):

1. **interpolation**: ``linear`` (``sum w_i m_i``) or ``slerp`` (spherical interpolation per
   tensor, three models as two nested pairs: ``slerp(slerp(m1, m2, w2 / (w1 + w2)), m3, w3)``);
2. **task vectors** against step 1's result ``b``: ``ties`` (TIES-Merging, Yadav et al. 2023:
   trim each ``m_i - b`` to its largest ``density`` share, elect the sign, average the agreeing
   entries) or ``dare`` (DARE, Yu et al. 2023: drop entries with probability ``1 - density`` and
   rescale the rest), added back as ``b + scale * merged``; both are peft's
   (``peft.utils.merge_utils``, Apache-2.0);
3. **layers**: ``frankenmerge`` (layer stacking: core block ``j`` of the child is block ``j`` of
   a chosen source, step 2's result or one input) or ``dataflow`` (layer selection over the data
   path: core position ``j`` runs any block ``l`` of any source, repeats allowed, and the memory
   and halting head that read the core's output come from chosen sources: the inference path
   is what is merged, as in Akiba et al. 2024's data-flow space).

Linear, SLERP, TIES and DARE combine tensors entry by entry, so every recipe needs the three
models' tensors to have equal names and shapes
(:func:`voltx_agentforge.evomerge_inputs.check_shapes` refuses others, naming the tensors).
All functions are pure: the same inputs and ``seed`` give the same tensors.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import torch

PAIRS = (("linear", "slerp"), ("ties", "dare"), ("frankenmerge", "dataflow"))
CORE = re.compile(r"^core\.(\d+)\.(.*)$")
FLOW_PARTS = ("memory.", "halt.")
"""The data path's parts after the core that a dataflow merge takes from a chosen source."""
SLERP_COLINEAR = 0.9995
"""Above this cosine two tensors are treated as colinear and interpolated linearly (sin(theta) ~ 0)."""


def technique_names(combo: tuple[int, int, int]) -> tuple[str, str, str]:
    return tuple(pair[bit] for pair, bit in zip(PAIRS, combo))


def linear(models: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    return {k: sum(w * m[k] for w, m in zip(weights, models)) for k in models[0]}


def slerp_tensor(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two tensors as flat vectors (the angle between their directions;
    the coefficients are applied to the tensors themselves, so magnitudes interpolate too)."""
    fa, fb = a.flatten().double(), b.flatten().double()
    na, nb = fa.norm(), fb.norm()
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    cos = float(torch.clamp((fa / na) @ (fb / nb), -1.0, 1.0))
    if abs(cos) > SLERP_COLINEAR:
        return (1 - t) * a + t * b
    theta = torch.arccos(torch.tensor(cos, dtype=torch.float64))
    s = torch.sin(theta)
    ca, cb = float(torch.sin((1 - t) * theta) / s), float(torch.sin(t * theta) / s)
    return (ca * a.double() + cb * b.double()).to(a.dtype)


def slerp(models: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    w1, w2, w3 = weights
    t12 = w2 / (w1 + w2) if w1 + w2 > 0 else 0.5
    return {k: slerp_tensor(slerp_tensor(models[0][k], models[1][k], t12), models[2][k], w3) for k in models[0]}


@lru_cache(maxsize=1)
def peft_merge_utils():
    """``peft.utils.merge_utils``, loaded from its file: the module needs only torch, but importing
    it through the package runs peft's ``__init__``, which imports transformers (28 s at this
    machine's usual load, against 0.1 s for the file alone)."""
    spec = importlib.util.find_spec("peft")
    path = Path(spec.origin).parent / "utils" / "merge_utils.py" if spec and spec.origin else None
    if path is None or not path.is_file():  # another layout: the ordinary import
        import peft.utils.merge_utils as module

        return module
    file_spec = importlib.util.spec_from_file_location("voltx_agentforge._peft_merge_utils", path)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module


def task_vectors(base: dict[str, torch.Tensor], models: list[dict[str, torch.Tensor]], weights: list[float], density: float,
                 scale: float, method: str, seed: int, init: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Task vectors merged by peft's ``ties`` or ``dare_linear`` (DARE's random drop drawn from
    ``seed`` alone: the global RNG is forked, so merging never shifts it).

    With ``init`` (the inputs' shared initialisation): the task vectors are ``m_i - init``, as
    TIES and DARE define them, weighted ``n * w_i`` (mean 1: at uniform weights each skill enters
    whole, as in task arithmetic), and the result moves ``base`` toward ``init + merged`` by
    ``scale`` (0: the interpolation alone, 1: the task-arithmetic model). Without it: ``base +
    scale * merge(m_i - base)``. (Against the interpolation the vectors ``m_i - base`` cancel
    under its own weights, so TIES's sign election there is close to a coin toss: measured, the
    quick preset's specialists merged that way kept less of their skills; README.)"""
    peft = peft_merge_utils()
    n = len(models)
    w = torch.tensor([x * n for x in weights] if init is not None else weights, dtype=torch.float32)
    density = min(max(density, 0.01), 0.99)  # peft: >= 1 means no pruning (with a warning), 0 keeps nothing
    out = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for k, b in base.items():
            if not b.is_floating_point():
                out[k] = b
                continue
            ref = init[k] if init is not None else b
            tvs = [m[k] - ref for m in models]
            merged = peft.ties(tvs, w, density) if method == "ties" else peft.dare_linear(tvs, w, density)
            out[k] = b + scale * (ref + merged - b) if init is not None else b + scale * merged
    return out


def core_layers(state: dict[str, torch.Tensor]) -> int:
    return 1 + max((int(m.group(1)) for k in state if (m := CORE.match(k))), default=-1)


def frankenmerge(merged: dict[str, torch.Tensor], models: list[dict[str, torch.Tensor]], sources: list[int]) -> dict[str, torch.Tensor]:
    """Core block ``j`` from ``sources[j]`` (0: ``merged``, i: input i), at its own position."""
    pool = [merged, *models]
    out = dict(merged)
    for k in merged:
        if m := CORE.match(k):
            out[k] = pool[sources[int(m.group(1)) % len(sources)]][k]
    return out


def dataflow(merged: dict[str, torch.Tensor], models: list[dict[str, torch.Tensor]], path: list[tuple[int, int]],
             parts: list[int]) -> dict[str, torch.Tensor]:
    """Core position ``j`` runs block ``path[j] = (source, layer)``; the memory and halting head
    (:data:`FLOW_PARTS`) come from ``parts[i]`` (0: ``merged``, i: input i)."""
    pool = [merged, *models]
    out = dict(merged)
    for k in merged:
        if m := CORE.match(k):
            source, layer = path[int(m.group(1)) % len(path)]
            out[k] = pool[source][f"core.{layer}.{m.group(2)}"]
        else:
            for part, source in zip(FLOW_PARTS, parts):
                if k.startswith(part):
                    out[k] = pool[source][k]
    return out


def merge(models: list[dict[str, torch.Tensor]], genome: dict, init: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The three steps of ``genome``'s recipe (:mod:`voltx_agentforge.evolution` makes genomes);
    ``init``: the inputs' shared initialisation, the task vectors' reference when known."""
    first, second, third = technique_names(tuple(genome["combo"]))
    weights = genome["weights"]
    base = linear(models, weights) if first == "linear" else slerp(models, weights)
    state = task_vectors(base, models, weights, genome["density"], genome["scale"], second, genome["seed"], init)
    if third == "frankenmerge":
        return frankenmerge(state, models, genome["stack"])
    return dataflow(state, models, [tuple(p) for p in genome["path"]], genome["parts"])
