"""LlavaPolicyModel: LLaVA's embedding merge, loss, and greedy decoding identical to HF generate."""

from __future__ import annotations

import pytest
import torch

from llara_edge.errors import ConfigError
from llara_export.models.llava import (
    IGNORE_INDEX,
    IMAGE_TOKEN_INDEX,
    MultimodalSpec,
    TinyConfig,
    build_projector,
    build_tiny,
)

CFG = TinyConfig(vocab_size=320, image_size=56, vision_layers=2, max_positions=512)


def _spread(model: torch.nn.Module, std: float, seed: int) -> torch.nn.Module:
    """Re-draw every matrix with a larger std so a random model's greedy output varies."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


@pytest.fixture(scope="module")
def model():
    return build_tiny(CFG, seed=0)


def test_projector_is_llava_mlp2x_gelu():
    proj = build_projector("mlp2x_gelu", 128, 256)
    assert list(proj.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(proj[1], torch.nn.GELU) and proj[1].approximate == "none"
    assert list(build_projector("linear", 8, 16).state_dict()) == ["weight", "bias"]
    assert len(build_projector("mlp3x_gelu", 8, 16)) == 5


def test_bad_specs_and_tiny_configs_raise():
    with pytest.raises(ConfigError, match="mm_projector_type"):
        MultimodalSpec(projector_type="qformer")
    with pytest.raises(ConfigError, match="select_feature"):
        MultimodalSpec(select_feature="cls")
    with pytest.raises(ConfigError, match="multiple of 14"):
        TinyConfig(image_size=100)
    with pytest.raises(ConfigError, match="heads"):
        TinyConfig(hidden=250)


def test_encode_images_uses_penultimate_layer_without_cls(model):
    px = torch.randn(2, 3, 56, 56)
    feats = model.encode_images(px)
    assert feats.shape == (2, 16, CFG.hidden) == (2, model.num_image_tokens, CFG.hidden)
    hidden = model.vision_tower(px, output_hidden_states=True).hidden_states
    assert torch.allclose(feats, model.mm_projector(hidden[-2][:, 1:]))
    assert not torch.allclose(feats, model.mm_projector(hidden[-1][:, 1:]), atol=1e-4)


def test_embed_replaces_each_placeholder_by_the_image_features(model):
    ids = torch.tensor([[1, 7, IMAGE_TOKEN_INDEX, 8, 9, IMAGE_TOKEN_INDEX, 10]])
    feats = torch.randn(2, 16, CFG.hidden)
    emb = model.embed(ids, feats)
    table = model.llm.get_input_embeddings()
    assert emb.shape == (1, 5 + 32, CFG.hidden)
    assert torch.equal(emb[0, :2], table(torch.tensor([1, 7])))
    assert torch.equal(emb[0, 2:18], feats[0])
    assert torch.equal(emb[0, 18:20], table(torch.tensor([8, 9])))
    assert torch.equal(emb[0, 20:36], feats[1])
    assert torch.equal(emb[0, 36], table(torch.tensor(10)))
    with pytest.raises(ConfigError, match="placeholders"):
        model.embed(ids, feats[:1])
    with pytest.raises(ConfigError, match="without a placeholder"):
        model.embed(ids, torch.randn(3, 16, CFG.hidden))


def test_prepare_multimodal_pads_right_and_masks_labels(model):
    ids = torch.tensor([[1, IMAGE_TOKEN_INDEX, 5, 6, 7], [1, IMAGE_TOKEN_INDEX, 8, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    ign = IGNORE_INDEX
    labels = torch.tensor([[ign, ign, 5, 6, 7], [ign, ign, 8, ign, ign]])
    feats = torch.randn(2, 16, CFG.hidden)
    batch = model.prepare_multimodal(ids, feats, labels, mask)
    assert batch.inputs_embeds.shape == (2, 20, CFG.hidden)
    assert batch.attention_mask.sum(1).tolist() == [20, 18]
    assert batch.labels[0, 17:].tolist() == [5, 6, 7]
    assert (batch.labels[0, :17] == IGNORE_INDEX).all()
    assert batch.labels[1].tolist()[17:] == [8, IGNORE_INDEX, IGNORE_INDEX]
    # the short row equals its own unpadded expansion, then zeros
    alone = model.embed(ids[1:, :3], feats[1:])
    assert torch.equal(batch.inputs_embeds[1, :18], alone[0])
    assert not batch.inputs_embeds[1, 18:].any()


def test_padded_batch_rows_match_single_rows(model):
    ids = torch.tensor([[1, IMAGE_TOKEN_INDEX, 5, 6, 7], [1, IMAGE_TOKEN_INDEX, 8, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    px = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        batch = model(ids, px, attention_mask=mask).logits
        short = model(ids[1:, :3], px[1:]).logits
    assert batch.shape == (2, 20, CFG.vocab_size)
    assert torch.allclose(batch[1, :18], short[0], atol=1e-5)


def test_forward_loss_is_mean_next_token_cross_entropy(model):
    ids = torch.tensor([[1, 4, IMAGE_TOKEN_INDEX, 5, 6, 7]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 5, 6, 7]])
    out = model(ids, torch.randn(1, 3, 56, 56), labels=labels)
    logits = out.logits[0]
    # expanded labels: 2 text + 16 image + 3 text; targets are the last 3 ids
    targets = torch.tensor([5, 6, 7])
    expected = torch.nn.functional.cross_entropy(logits[17:20], targets)
    assert out.loss is not None and torch.allclose(out.loss, expected, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generate_greedy_is_token_identical_to_hf_generate(seed):
    model = _spread(build_tiny(CFG, seed=seed), std=0.12, seed=seed)
    gen = torch.Generator().manual_seed(100 + seed)
    ids = torch.randint(3, CFG.vocab_size, (1, 12), generator=gen)
    ids[0, 0], ids[0, 4] = 1, IMAGE_TOKEN_INDEX
    px = torch.randn(1, 3, 56, 56, generator=gen)
    with torch.no_grad():
        embeds = model.embed(ids, model.encode_images(px))

    def hf(eos: int, n: int) -> list[int]:
        out = model.llm.generate(
            inputs_embeds=embeds, do_sample=False, num_beams=1, max_new_tokens=n,
            eos_token_id=eos, pad_token_id=0,
        )
        return out[0].tolist()

    free = model.generate_greedy(ids, px, max_new_tokens=40, eos_token_id=None)
    assert len(free) == 40 and len(set(free)) > 3  # a varied sequence, not one repeated token
    assert free == hf(eos=CFG.vocab_size + 5, n=40)  # an eos that never comes
    eos = free[7]
    stopped = model.generate_greedy(ids, px, max_new_tokens=40, eos_token_id=eos)
    assert stopped == free[: free.index(eos) + 1]
    assert stopped == hf(eos=eos, n=40)


def test_generate_greedy_margins_are_top2_gaps_of_the_teacher_forced_logits():
    model = _spread(build_tiny(CFG, seed=4), std=0.12, seed=4)
    ids = torch.tensor([[1, 9, IMAGE_TOKEN_INDEX, 5, 6]])
    px = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(4))
    margins: list[float] = []
    tokens = model.generate_greedy(ids, px, max_new_tokens=12, eos_token_id=None,
                                   margins=margins)
    with torch.no_grad():
        full = torch.cat([ids, torch.tensor([tokens[:-1]])], dim=1)
        logits = model(full, px).logits[0, -len(tokens):]
    top2 = logits.topk(2, dim=-1).values
    assert len(margins) == len(tokens) == 12
    assert torch.allclose(torch.tensor(margins), top2[:, 0] - top2[:, 1], atol=1e-4)
    assert all(m >= 0 for m in margins)


def test_generate_greedy_rejects_batches_and_zero_tokens(model):
    ids = torch.tensor([[1, IMAGE_TOKEN_INDEX, 5]] * 2)
    with pytest.raises(ConfigError, match="one sequence"):
        model.generate_greedy(ids, torch.randn(2, 3, 56, 56))
    with pytest.raises(ConfigError, match="max_new_tokens"):
        model.generate_greedy(ids[:1], torch.randn(1, 3, 56, 56), max_new_tokens=0)
