"""The base model and tokenizer of a trio run, and its LoRA adapter.

``base_model`` is a Hugging Face id read from the local cache (never downloaded at run time: a
missing model is one message saying how to get it) or a local directory; ``tiny`` builds the
quick preset's stand-in: a tokenizer trained here on the puzzles' and roles' text (tokenizers'
BPE, saved as a fast tokenizer with a ChatML chat template) and a 2-layer Qwen2 from a config,
saved in the run so a resume and ``voltx trio ask`` load the same weights. Heavy: imported
only by the run and the command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path

import torch

from voltx.errors import DataError, MissingInputError

TINY = "tiny"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _tiny_corpus() -> list[str]:
    from voltx_trio.puzzles import enumerate_puzzles, hybrid_record
    from voltx_trio.roles import ROLES, plain_prompt

    # The role prompts open every record: weighted up, BPE learns their words whole and a prompt
    # is ~90 tokens instead of ~210 (the quick preset's steps are 2x faster).
    texts = [r.system for r in ROLES.values()] * 200 + [plain_prompt(r, "") for r in ROLES.values()]
    for p in enumerate_puzzles():
        texts.append(p["input"])
        texts.extend(hybrid_record(p, role)["input"] + " " + hybrid_record(p, role)["output"] for role in ROLES)
    return texts


def build_tiny(target: Path, seed: int, vocab_size: int = 1024) -> None:
    """Train the tiny tokenizer and initialise the tiny Qwen2; save both to ``target`` atomically."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_tiny_corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    config = Qwen2Config(vocab_size=len(fast), hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    # The tied embedding is also the output layer, frozen under LoRA: at the usual std 0.02 its rows
    # are too short for any logit to stand out after the final RMSNorm (the loss stayed near uniform).
    torch.nn.init.normal_(model.model.embed_tokens.weight, std=0.25)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fast.save_pretrained(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    os.replace(tmp, target)


def resolve_base(name: str, run_base: Path, seed: int) -> str:
    """The directory or hub id to load: ``tiny`` -> the run's own tiny model (built on first use)."""
    if name != TINY:
        return name
    if not (run_base / "config.json").exists():
        build_tiny(run_base, seed)
    return str(run_base)


def _local_dir(name: str) -> Path | None:
    """``name`` as a local model directory (None: a model id); one without config.json is refused."""
    local = Path(name).expanduser()
    if not local.exists():
        return None
    if not (local / "config.json").is_file():
        raise DataError(f"trio.base_model: {local} is not a Hugging Face model directory (it has no config.json). "
                        "Name a directory written by save_pretrained, or a model id in the local Hugging Face cache.")
    return local


@contextlib.contextmanager
def _loading(name: str):
    """transformers' loading errors as the README's: not cached -> 66 and how to get it; not a model -> 65."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a run's output is its progress lines, not per-shard bars
    local = _local_dir(name)
    try:
        yield
    except OSError as exc:
        if local is not None:
            raise DataError(f"trio.base_model: {local} is not a loadable causal LM ({str(exc).splitlines()[0]}).") from None
        raise MissingInputError(
            f"trio.base_model: {name!r} is not in the local Hugging Face cache, and voltx never downloads during a run. "
            f"Get it with `huggingface-cli download {name}` (or `hf download {name}`) on a machine with network, "
            "then run again (HF_HUB_OFFLINE=1 is fine), or set base_model to a local model directory; "
            "--preset quick trains a tiny model built here instead."
        ) from None
    except (ValueError, KeyError) as exc:
        kind = "model" if local is None else "directory"
        raise DataError(f"trio.base_model: the {kind} {name!r} is not a causal language model transformers can load: "
                        f"{str(exc).splitlines()[0]}") from None


def model_config(name: str):
    """The base model's transformers config (checked to be a causal LM's), without its weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with _loading(name):
        config = AutoConfig.from_pretrained(name, local_files_only=True)
        if type(config) not in AutoModelForCausalLM._model_mapping:
            raise ValueError(f"its config is a {type(config).__name__}, which has no causal LM head")
    return config


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    with _loading(name):
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(name: str):
    """(tokenizer, model) of ``name`` from a local directory or the local Hugging Face cache."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name)
    with _loading(name):
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, dtype=torch.float32)
    return tokenizer, model


def add_lora(model, cfg):
    """``model`` wrapped by peft with a fresh LoRA adapter of the run's settings (base frozen)."""
    from peft import LoraConfig, get_peft_model

    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in cfg.target_modules if m not in present]
    if missing:
        raise DataError(f"trio.target_modules: {', '.join(missing)} not in this model (its layers include "
                        f"{', '.join(sorted(m for m in present if m.endswith('proj'))) or 'no *_proj layers'}).")
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    with quiet_peft():
        return get_peft_model(model, config)


@contextlib.contextmanager
def quiet_peft():
    """peft asks transformers a deprecated question (``is_gradient_checkpointing``) when it wraps a
    model: a FutureWarning the user can do nothing about, kept out of the run's output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


class Adapters(torch.nn.Module):
    """The trainable LoRA weights of a peft model as one module: what the shared loop optimises
    and checkpoints (the frozen base model is not copied into every checkpoint); ``train()`` /
    ``eval()`` reach the wrapped model, so its dropout follows the loop."""

    def __init__(self, peft_model):
        super().__init__()
        object.__setattr__(self, "peft", peft_model)  # not a submodule: its frozen weights stay out of state_dict
        self.weights = torch.nn.ParameterDict(
            {n.replace(".", "/"): p for n, p in peft_model.named_parameters() if p.requires_grad})

    def train(self, mode: bool = True):
        super().train(mode)
        self.peft.train(mode)
        return self
