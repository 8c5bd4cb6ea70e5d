"""Evaluation of phase F3: each figure beside what needs no trained model and beside RAR off.

Two evaluations. Every epoch on the dev records (``reasoning/<key>``: what presets and tuning
look at); once at the end on the test records (``test/<key>``: what the deliverables judge,
computed once). Keys, ``<task>`` being scan (and scan_<split>), babi_qa1..3 or kinship (and kinship_<k>, by chain length):

* ``<task>_accuracy`` exact match through encode(question) -> RAR (reading the story's sentences
  as memory frames, :mod:`voltx_phases.f3_memory`) -> render the endpoint,
  ``<task>_token_accuracy`` the renderer teacher-forced on the endpoint; ``<task>_majority_baseline`` the training majority answer,
  ``<task>_best_constant`` the best any constant answer scores on these records;
* test only: ``<task>_endpoint_nearest_answer`` the training answer whose frame is nearest (cosine)
  RAR's endpoint, a diagnostic read-out without the renderer; ``<task>_nearest_train_answer`` the answer of the training record of the same task
  whose input frame (the trained encoder's, flattened) is nearest by cosine,
  ``<task>_nearest_train_answer_words`` the same by bag-of-words cosine (no model at all);
  ablations ``<task>_accuracy_rar_off`` (the renderer reads the question's frame: RAR replaced
  by the identity; also on dev, where ``rar_gain`` is what tuning looks at) and ``<task>_accuracy_rar_1it`` (one RAR iteration); ``<task>_rar_gain``
  accuracy minus RAR off, and ``rar_gain`` its mean over the tasks (``rar_gain_1it`` and
  ``rar_gain_untrained`` the same for one iteration and for the untrained field, which is the
  identity: 0; ``rar_gain_best_constant`` the gain of the best constant answer over RAR off, the
  baseline: RAR off renders the question, never an answer, so a gain up to it is no reasoning);
* ``babi_*``: the mean over tasks 1, 2 and 3, reported only when all three were evaluated (the
  plan's criterion; a mean over the tasks present let qa1 alone stand for it);
* denoising, on the held-out *answer* frames (RAR's fixed points) corrupted as in training: ``denoise_slot_share`` corrupted
  slots restored to cosine > 0.9 (the plan's figure), ``denoise_share_before`` before RAR and
  ``denoise_frame_mean_share`` by the frame mean (:func:`frame_mean`), which passes that figure
  without a model because a frame's active slots are near-parallel; hence
  ``denoise_retrieval_top1`` (:func:`retrieval_hits`: the restored slot retrieves its original
  among the same role's slots of the other frames), with ``denoise_retrieval_top1_before``
  (copy) and ``denoise_frame_mean_retrieval_top1``;
* ``rar_converged_share`` (every active slot froze within the horizon), ``rar_slot_converged_share``
  (of the slots), ``rar_last_step_median`` (the median over active slots of their last update's
  size: freezing needs it below epsilon) and
  ``rar_converged_correct_share`` (converged *and* answered exactly): a zero field converges at
  once, so convergence alone is no evidence; test only, the same for the untrained drift
  (``*_untrained``: build_model's initialisation, whose last layers are zero) and
  ``answer_best_constant`` (each task's best constant answer, over all records);
* test only, when F3 runs with F2's energy head (:mod:`voltx_phases.f3_energy`): for each way RAR
  uses it, ``<mode>`` off, blend or control, on the same records, ``<task>_accuracy_energy_<mode>``,
  ``answer_accuracy_energy_<mode>`` (all records), ``rar_converged_share_energy_<mode>`` and
  ``rar_iterations_mean_energy_<mode>``, ``<task>_endpoint_nearest_answer_energy_<mode>``, ``energy_mean_energy_<mode>`` (F2's energy of the endpoints;
  ``energy_mean_question`` of the question frames); the unsuffixed figures use ``f3.energy_mode``.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.engine.slot_decoder import IGNORE_INDEX
from voltx.engine.rar import ENERGY_MODES, RarResult
from voltx_phases.f3_data import BABI_TASKS, chain_texts, encode, majority_answers, memory_texts, normalise, task_group
from voltx_phases.f3_energy import RarEnergy
from voltx_phases.f3_memory import Memory, command_phrases, gather_phrases
from voltx_phases.f3_model import all_active, corrupt, encode_frames, new_reasoner, refine
from voltx_phases.rar_telemetry import certainty, rar_event

DENOISE_COSINE = 0.9
"""A corrupted slot counts as restored when its cosine with the original exceeds this (plan, Part VI)."""
DENOISE_EVAL_FRAMES = 256
"""Held-out frames corrupted for the denoising evaluation."""
ABLATIONS = ("_rar_off", "_rar_1it")
"""Suffixes of the test-only accuracies of the same model with RAR switched off / cut to one iteration."""
DENOISE_KEYS = {
    "rar": ("denoise_slot_share", "denoise_retrieval_top1"),
    "before": ("denoise_share_before", "denoise_retrieval_top1_before"),
    "frame_mean": ("denoise_frame_mean_share", "denoise_frame_mean_retrieval_top1"),
}
"""Restorer -> (share restored to cosine > 0.9, retrieval top-1) keys of the denoising evaluation."""


def frame_mean(slots: Tensor, active: Tensor) -> Tensor:
    """Every active slot replaced by the normalised mean of its frame's active slots (the
    no-model denoiser: it needs only the corrupted frame, not which slots were corrupted)."""
    m = active.unsqueeze(-1).to(slots.dtype)
    mean = F.normalize((slots * m).sum(1, keepdim=True), dim=-1)
    return mean.expand_as(slots) * m


def retrieval_hits(candidate: Tensor, clean: Tensor, active: Tensor) -> Tensor:
    """``[N, S]``: True where ``candidate[b, s]`` is strictly closer (cosine) to ``clean[b, s]``
    than to the slot ``s`` of every other frame where it is active. A zero candidate never hits."""
    cand = F.normalize(candidate, dim=-1).transpose(0, 1)  # [S, N, D]
    keys = F.normalize(clean, dim=-1).transpose(0, 1)
    sims = cand @ keys.transpose(1, 2)  # [S, N, N]: role s, query frame, key frame
    act = active.bool().transpose(0, 1)  # [S, N]
    n = sims.shape[-1]
    rivals = sims.masked_fill(~act.unsqueeze(1) | torch.eye(n, dtype=torch.bool, device=sims.device), float("-inf"))
    return (sims.diagonal(dim1=1, dim2=2) > rivals.amax(-1)).transpose(0, 1)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def nearest_answers(queries: Tensor, keys: Tensor, answers: list[str]) -> list[str]:
    """The answer of the most cosine-similar key row for every query row."""
    best = (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T).argmax(-1)
    return [answers[i] for i in best.tolist()]


def bag_of_words(texts: list[str], vocab: dict[str, int]) -> Tensor:
    out = torch.zeros(len(texts), len(vocab))
    for i, text in enumerate(texts):
        for word, n in Counter(_words(text)).items():
            if word in vocab:
                out[i, vocab[word]] = n
    return out


class Evaluator:
    """One evaluation of ``records``; ``full`` (the test evaluation) adds the baselines and
    ablations that cost extra frames or decoding (see the module docstring for the keys)."""

    def __init__(self, ctx, cfg, stack, reasoner, records: list[dict], train: list[dict], enc_len: int, dec_len: int, *, full: bool,
                 energy: RarEnergy | None = None):
        self.ctx, self.cfg, self.stack, self.reasoner, self.tok = ctx, cfg, stack, reasoner, stack.tokenizer
        self.energy = energy
        # test only, with F2's energy head: every way RAR can use it, on the same records
        self.energy_variants = {f"_energy_{m}": energy.with_mode(m) for m in ENERGY_MODES} if full and energy is not None else {}
        self.records, self.train, self.full = records, train, full
        self.enc_len, self.dec_len = enc_len, dec_len
        self.majority = majority_answers(train)
        self.batch = max(32, cfg.batch_size * 2)

    def _decode(self, slots: Tensor, active: Tensor) -> list[str]:
        generated = self.stack.decoder.generate(slots, active, max_new_tokens=self.dec_len)
        return [normalise(self.tok.decode(g)) for g in generated]

    def _frames(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Filled frames of ``texts`` and their (all-slot) active mask."""
        slots, _, _ = encode_frames(self.stack.encoder, *encode(self.tok, texts, self.enc_len, self.ctx.device, keep="tail"))
        return slots, all_active(slots)

    def _question_and_memory(self, records: list[dict]) -> tuple[Tensor, Tensor, Memory]:
        """RAR's input: the question's frame (and active mask), the story's sentences as memory frames and,
        where T0 holds a storyless input, its phrases (:attr:`Memory.phrases`)."""
        slots, active = self._frames([chain_texts(r)[0] for r in records])
        stories = [memory_texts(r) for r in records]
        sentences = list(dict.fromkeys(t for story in stories for t in story[-self.cfg.memory_frames:]))
        if not sentences:
            memory = Memory.empty(slots)
        else:
            frames = torch.cat([self._frames(sentences[i : i + self.batch])[0] for i in range(0, len(sentences), self.batch)])
            row = {t: i for i, t in enumerate(sentences)}
            memory = Memory.gather(frames, [[row[t] for t in story[-self.cfg.memory_frames:]] for story in stories], self.cfg.memory_frames)
        memory.phrases = self._phrases(records, stories)
        return slots, active, memory

    def _phrases(self, records: list[dict], stories: list[list[str]]) -> Tensor | None:
        """``[B, P, 16, D]`` frames of each storyless input's phrases (as training holds them), or None."""
        limit = self.cfg.hold_phrases if self.cfg.hold_input else 0
        per = [command_phrases(chain_texts(r)[0], limit) if limit and not story else [] for r, story in zip(records, stories)]
        texts = list(dict.fromkeys(t for p in per for t in p))
        if not texts:
            return None
        frames = torch.cat([self._frames(texts[i : i + self.batch])[0] for i in range(0, len(texts), self.batch)])
        row = {t: i for i, t in enumerate(texts)}
        return gather_phrases(frames, [[row[t] for t in p] for p in per], limit)

    def _flat_frames(self, texts: list[str]) -> Tensor:
        return torch.cat([self._frames(texts[i : i + self.batch])[0].flatten(1).float().cpu() for i in range(0, len(texts), self.batch)])

    def __call__(self) -> dict[str, float]:
        cfg, reasoner, tok, dev = self.cfg, self.reasoner, self.tok, self.ctx.device
        variants = ("", *ABLATIONS, "_untrained", *self.energy_variants) if self.full else ("", "_rar_off")
        predictions: dict[str, list[str]] = {v: [] for v in variants}
        converged: dict[str, list[Tensor]] = {"": [], "_untrained": [], **{v: [] for v in self.energy_variants}}
        iterations: dict[str, list[Tensor]] = {v: [] for v in self.energy_variants}
        ends: dict[str, list[Tensor]] = {v: [] for v in self.energy_variants}
        energies: dict[str, list[Tensor]] = {v: [] for v in ("_question", *self.energy_variants)} if self.energy_variants else {}
        tokens: list[tuple[int, int]] = []  # (correct, total) answer tokens per record, teacher-forced
        results, actives = [], []
        untrained = new_reasoner(cfg).to(dev) if self.full else None
        decoder = self.stack.decoder
        for start in range(0, len(self.records), self.batch):
            chunk = self.records[start : start + self.batch]
            slots, active, memory = self._question_and_memory(chunk)
            out_ids, out_mask = encode(tok, [r["output"] for r in chunk], self.dec_len - 1, dev, keep="head")
            result = refine(reasoner, slots, active, cfg, energy=self.energy, memory=memory)
            teacher, labels = decoder.teacher_forced_batch(out_ids, out_mask)
            valid = labels.ne(IGNORE_INDEX)  # answer tokens + EOS
            hits = (decoder(teacher, result.slots, active).argmax(-1).eq(labels) & valid).sum(-1)
            tokens += list(zip(hits.tolist(), valid.sum(-1).tolist()))
            predictions[""] += self._decode(result.slots, active)
            converged[""].append(result.converged.all(-1).cpu())
            predictions["_rar_off"] += self._decode(slots, active)
            if self.full:
                predictions["_rar_1it"] += self._decode(refine(reasoner, slots, active, cfg, iterations=1, energy=self.energy,
                                                               memory=memory).slots, active)
                still = refine(untrained, slots, active, cfg, memory=memory)
                predictions["_untrained"] += self._decode(still.slots, active)
                converged["_untrained"].append(still.converged.all(-1).cpu())
            for name, energy in self.energy_variants.items():
                run = result if energy.mode == self.energy.mode else refine(reasoner, slots, active, cfg, energy=energy, memory=memory)
                predictions[name] += predictions[""][-len(chunk):] if run is result else self._decode(run.slots, active)
                converged[name].append(run.converged.all(-1).cpu())
                iterations[name].append(run.total_iterations.cpu())
                energies[name].append(energy.head(run.slots, active).float().cpu())
                ends[name].append(run.slots.flatten(1).float().cpu())
            if energies:
                energies["_question"].append(self.energy.head(slots, active).float().cpu())
            results.append(result)
            actives.append(active)
        answers = [normalise(r["output"]) for r in self.records]
        exact = {v: [p == a for p, a in zip(predictions[v], answers)] for v in variants}
        endpoints = torch.cat([r.slots.flatten(1).float().cpu() for r in results])
        guesses = self._nearest(endpoints, {v: torch.cat(parts) for v, parts in ends.items()}) if self.full else {}
        metrics = self._accuracies(exact, guesses, tokens, predictions[""])
        for suffix, parts in converged.items():
            if parts:
                done = torch.cat(parts)
                metrics[f"rar_converged_share{suffix}"] = float(done.float().mean())
                metrics[f"rar_converged_correct_share{suffix}"] = sum(d and e for d, e in zip(done.tolist(), exact[suffix])) / len(done)
        for suffix, parts in iterations.items():
            metrics[f"rar_iterations_mean{suffix}"] = float(torch.cat(parts).float().mean())
            metrics[f"answer_accuracy{suffix}"] = sum(exact[suffix]) / max(1, len(exact[suffix]))
        for suffix, parts in energies.items():
            metrics[f"energy_mean{suffix}"] = float(torch.cat(parts).mean())
        result, active = RarResult(*(torch.cat([getattr(r, f) for r in results]) if f != "sigma" else None for f in RarResult._fields)), torch.cat(actives)
        metrics["rar_iterations_mean"] = float(result.total_iterations.float().mean())
        metrics["rar_slot_converged_share"] = float((result.converged & active).sum() / active.sum().clamp_min(1))
        metrics["rar_last_step_median"] = float(result.final_deltas[active].median()) if bool(active.any()) else 0.0
        rar_event(self.ctx, result, active, certainty(result, active, cfg.rar_epsilon), cfg.rar_max_iterations,
                  stage="reasoning", queries=len(self.records), frame_converged=metrics["rar_converged_share"],
                  converged_correct=metrics["rar_converged_correct_share"])
        metrics.update(self._denoising())
        return metrics

    def _nearest(self, endpoints: Tensor, variants: dict[str, Tensor] | None = None) -> dict[str, list[str]]:
        """The nearest-training-answer guesses for every record, by frames and by words, within its
        task; and the training answer whose own frame is nearest RAR's endpoint (a read-out that
        bypasses the renderer: where RAR ended, whether or not the renderer can read it)."""
        variants = {f"_endpoint_nearest_answer{v}": ends for v, ends in (variants or {}).items()}
        guesses = {k: [""] * len(self.records) for k in ("_nearest_train_answer", "_nearest_train_answer_words", "_endpoint_nearest_answer",
                                                         *variants)}
        vocab = {w: i for i, w in enumerate(sorted({w for r in self.train + self.records for w in _words(r["input"])}))}
        for group in sorted({task_group(r["task"]) for r in self.records}):
            idx = [i for i, r in enumerate(self.records) if task_group(r["task"]) == group]
            ref = [r for r in self.train if task_group(r["task"]) == group]
            if not ref:
                continue
            queries, keys = [self.records[i]["input"] for i in idx], [r["input"] for r in ref]
            ref_answers = [normalise(r["output"]) for r in ref]
            answer_texts = {normalise(r["output"]): r["output"] for r in ref}
            by_frames = nearest_answers(self._flat_frames(queries), self._flat_frames(keys), ref_answers)
            by_words = nearest_answers(bag_of_words(queries, vocab), bag_of_words(keys, vocab), ref_answers)
            distinct = sorted(set(ref_answers))
            answer_frames = self._flat_frames([answer_texts[a] for a in distinct])
            by_endpoint = nearest_answers(endpoints[idx], answer_frames, distinct)
            for key, ends in variants.items():  # the same read-out of each energy mode's endpoints
                for i, e in zip(idx, nearest_answers(ends[idx], answer_frames, distinct)):
                    guesses[key][i] = e
            for i, f, w, e in zip(idx, by_frames, by_words, by_endpoint):
                guesses["_nearest_train_answer"][i], guesses["_nearest_train_answer_words"][i] = f, w
                guesses["_endpoint_nearest_answer"][i] = e
        return guesses

    def _accuracies(self, exact: dict[str, list[bool]], guesses: dict[str, list[str]], tokens: list[tuple[int, int]],
                    predictions: list[str]) -> dict[str, float]:
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            groups.setdefault(task_group(r["task"]), []).append(i)
            split = (r.get("meta") or {}).get("split")
            if r["task"] == "scan" and split:
                groups.setdefault(f"scan_{split}", []).append(i)
            elif task_group(r["task"]) == "kinship" and r["task"] != "kinship":  # by chain length k (kinship_3hop ...)
                groups.setdefault(f"kinship_{r['task'].split('_', 1)[-1]}", []).append(i)
        answers = [normalise(r["output"]) for r in self.records]
        tasks = {task_group(r["task"]) for r in self.records}
        out: dict[str, float] = {}
        constant_hits = 0
        for name, idx in sorted(groups.items()):
            base = name.split("_")[0] if name.startswith(("scan_", "kinship_")) else name
            key = f"babi_{name}" if name in BABI_TASKS else name
            for suffix in exact:
                out[f"{key}_accuracy{suffix}"] = sum(exact[suffix][i] for i in idx) / len(idx)

            out[f"{key}_majority_baseline"] = sum(answers[i] == self.majority.get(base) for i in idx) / len(idx)
            # the best any constant answer could score here (a collapsed decoder can beat the training majority)
            best = Counter(answers[i] for i in idx).most_common(1)[0][1]
            out[f"{key}_best_constant"] = best / len(idx)
            if "_rar_off" in exact:  # RAR gain: the same model with and without RAR, per task
                for suffix in [x for x in ("", "_rar_1it", "_untrained") if x in exact]:
                    out[f"{key}_rar_gain{suffix}"] = out[f"{key}_accuracy{suffix}"] - out[f"{key}_accuracy_rar_off"]
                # what a constant answer would "gain" over RAR off: the identity renders the question,
                # which is never an answer, so a RAR that only learnt the commonest answer gains this much
                out[f"{key}_rar_gain_best_constant"] = out[f"{key}_best_constant"] - out[f"{key}_accuracy_rar_off"]
            constant_hits += best if name in tasks else 0  # scan_<split> / kinship_<k> are parts of scan / kinship, counted there
            for suffix, guess in guesses.items():
                out[f"{key}{suffix}"] = sum(guess[i] == answers[i] for i in idx) / len(idx)
            out[f"{key}_distinct_predictions"] = float(len({predictions[i] for i in idx}))
            out[f"{key}_examples"] = float(len(idx))
            out[f"{key}_token_accuracy"] = sum(tokens[i][0] for i in idx) / max(1, sum(tokens[i][1] for i in idx))
        out["answer_token_accuracy"] = sum(c for c, _ in tokens) / max(1, sum(n for _, n in tokens))
        out["answer_best_constant"] = constant_hits / max(1, len(self.records))
        if "_rar_off" in exact:  # mean over the tasks (scan_<split> are parts of scan)
            for suffix, source in [(x, y) for x, y in (("", ""), ("_1it", "_rar_1it"), ("_untrained", "_untrained"),
                                                       ("_best_constant", "_best_constant")) if y in exact or y == "_best_constant"]:
                gains = [out[f"{'babi_' + t if t in BABI_TASKS else t}_rar_gain{source}"] for t in sorted(tasks)]
                out[f"rar_gain{suffix}"] = sum(gains) / len(gains)
        if all(f"babi_{t}_accuracy" in out for t in BABI_TASKS):  # tasks 1-3 or nothing (module docstring)
            for key in [k[len("babi_qa1_"):] for k in out if k.startswith("babi_qa1_")]:
                if key not in ("examples", "distinct_predictions"):  # counts, not rates
                    out[f"babi_{key}"] = sum(out[f"babi_{t}_{key}"] for t in BABI_TASKS) / len(BABI_TASKS)
        return out

    def _denoising(self) -> dict[str, float]:
        """Held-out answer frames corrupted as in training, restored by RAR, by the frame mean and
        not at all (copy): share restored to cosine > 0.9 and retrieval top-1 of each."""
        cfg = self.cfg
        stride = max(1, len(self.records) // DENOISE_EVAL_FRAMES)  # spread over all tasks, not the first one's
        texts = list(dict.fromkeys(r["output"] for r in self.records[::stride]))[:DENOISE_EVAL_FRAMES]  # no twin frames
        if not texts:
            return {}
        gen = torch.Generator().manual_seed(self.ctx.config.run.seed + 7)  # the same corruptions every evaluation
        parts: dict[str, list[Tensor]] = {"clean": [], "active": [], "changed": [], "rar": [], "before": [], "frame_mean": []}
        for start in range(0, len(texts), self.batch):
            clean, active = self._frames(texts[start : start + self.batch])
            corr = corrupt(clean, active, gen, cfg)
            for name, value in (("clean", clean), ("active", active), ("changed", corr.changed), ("before", corr.slots),
                                ("rar", refine(self.reasoner, corr.slots, active, cfg, energy=self.energy).slots), ("frame_mean", frame_mean(corr.slots, active))):
                parts[name].append(value.float().cpu() if value.is_floating_point() else value.cpu())
        clean, active, changed = (torch.cat(parts[k]) for k in ("clean", "active", "changed"))
        n = max(float(changed.sum()), 1.0)
        out = {"denoise_slots": float(changed.sum())}
        for name, (share, top1) in DENOISE_KEYS.items():
            restored = torch.cat(parts[name])
            close = torch.cosine_similarity(restored, clean, dim=-1) > DENOISE_COSINE
            out[share] = float((close & changed).sum()) / n
            out[top1] = float((retrieval_hits(restored, clean, active) & changed).sum()) / n
        return out


def evaluate_once(model: nn.Module, evaluator: Evaluator) -> dict[str, float]:
    """Run ``evaluator`` outside training (eval mode, no gradient, the training RNG untouched)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            return evaluator()
    finally:
        model.train(was_training)
