"""The document's batch 4 x accumulation 2: an optimizer step is two micro-batches of 4 records,
each run forward and backward in turn by the shared loop (memory: one micro-batch), and the
accumulated gradient equals the gradient of one batch of all 8 records (within float rounding)."""

from __future__ import annotations

import torch

from voltx.train.batches import MicroBatches

from voltx_trio.evaluate import Encoded
from voltx_trio.models import add_lora
from voltx_trio.phase import TrioConfig
from voltx_trio.train import micro_batches, micro_loss


def lora_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=64, pad_token_id=0)
    model = add_lora(Qwen2ForCausalLM(config), TrioConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0))
    for name, p in model.named_parameters():  # LoRA's B starts at zero: give it weights so every factor gets a gradient
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def gradient(model, batch: MicroBatches) -> dict[str, torch.Tensor]:
    """What the shared loop does with one step's micro-batches: forward and backward each in turn."""
    model.zero_grad(set_to_none=True)
    for part in batch:
        micro_loss(model, part, torch.device("cpu"))["loss"].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_accumulating_two_micro_batches_of_four_equals_one_batch_of_eight():
    gen = torch.Generator().manual_seed(1)
    rows = [Encoded(torch.randint(1, 64, (int(n),), generator=gen).tolist(), torch.randint(1, 64, (int(a),), generator=gen).tolist())
            for n, a in zip(torch.randint(3, 12, (8,), generator=gen), torch.randint(1, 6, (8,), generator=gen))]
    model = lora_model()
    accumulated = micro_batches(rows, 4, pad_id=0)
    whole = micro_batches(rows, 8, pad_id=0)
    assert isinstance(accumulated, MicroBatches) and [len(p["input_ids"]) for p in accumulated] == [4, 4] and len(whole) == 1
    a, b = gradient(model, accumulated), gradient(model, whole)
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-6), name
    assert any(bool(g.abs().sum() > 0) for g in a.values())
