"""Loading Wan2.2 weights: our video stream alone must reproduce diffusers' WanTransformer3DModel."""

import json

import pytest
import torch

from aim.model import AIMTransformer, StreamGroup
from aim.model.action_init import shrink
from aim.model.wan_checkpoint import (
    config_from_wan,
    from_wan_pretrained,
    load_wan_weights,
)
from aim.ops import TokenKind

diffusers = pytest.importorskip("diffusers")

WAN = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
    text_dim=16, freq_dim=32, ffn_dim=40, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6, rope_max_seq_len=64,
)


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory):
    torch.manual_seed(0)
    wan = diffusers.WanTransformer3DModel(**WAN).eval()
    folder = tmp_path_factory.mktemp("wan")
    wan.save_pretrained(folder, max_shard_size="20KB")  # force several shards
    return wan, folder


def test_checkpoint_is_sharded(wan_folder):
    _, folder = wan_folder
    index = json.loads((folder / "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1


@pytest.mark.parametrize("backend", ["native", "flex", "sdpa"])
@pytest.mark.parametrize("per_token_timesteps", [True, False])
def test_video_stream_reproduces_wan(wan_folder, per_token_timesteps, backend, monkeypatch):
    """With each attention backend that runs here (the cross-attention is SDPA on a CPU)."""
    monkeypatch.setenv("AIM_ATTENTION_BACKEND", backend)
    wan, folder = wan_folder
    model = from_wan_pretrained(folder, action_dim=8, action_ffn_dim=16, action_channels=3).eval()
    batch, frames, height, width = 2, 3, 6, 8
    latents = torch.randn(batch, 4, frames, height, width)
    text = torch.randn(batch, 7, 16)
    frame_t = torch.rand(batch, frames) * 1000
    tokens_per_frame = (height // 2) * (width // 2)
    if per_token_timesteps:  # Wan2.2 TI2V: one timestep per token
        wan_t = frame_t.repeat_interleave(tokens_per_frame, dim=1)
    else:
        frame_t = frame_t[:, :1].expand(batch, frames)
        wan_t = frame_t[:, 0]
    with torch.no_grad():
        expected = wan(latents, wan_t, text, return_dict=False)[0]
        (ours,) = model([StreamGroup(TokenKind.VIDEO, latents, frame_t)], text)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_value_stream_starts_as_video_stream(wan_folder):
    _, folder = wan_folder
    model = from_wan_pretrained(folder, action_dim=8, action_ffn_dim=16, action_channels=3, value_own_weights=True)
    video, value = model.blocks[1].branches["video"], model.blocks[1].branches["value"]
    torch.testing.assert_close(value.ffn.fc_in.weight, video.ffn.fc_in.weight)
    torch.testing.assert_close(model.heads["value"].proj_out.weight, model.heads["video"].proj_out.weight)


def test_action_branch_is_block_average_of_video(wan_folder):
    """On block-constant inputs a shrunk linear map equals the video map followed by block averaging."""
    _, folder = wan_folder
    model = from_wan_pretrained(folder, action_dim=8, action_ffn_dim=20, action_channels=3)
    video_fc = model.blocks[0].branches["video"].ffn.fc_in  # 24 -> 40
    action_fc = model.blocks[0].branches["action"].ffn.fc_in  # 8 -> 20
    coarse = torch.randn(5, 8)
    fine = coarse.repeat_interleave(3, dim=1)
    expected = video_fc(fine).unflatten(-1, (20, 2)).mean(-1)
    torch.testing.assert_close(action_fc(coarse), expected, rtol=1e-5, atol=1e-5)
    q_video = model.blocks[0].branches["video"].self_attn.to_q
    q_action = model.blocks[0].branches["action"].self_attn.to_q
    torch.testing.assert_close(q_action(coarse), q_video(fine), rtol=1e-5, atol=1e-5)


def test_shrink_keeps_sizes_that_match():
    w = torch.randn(6, 4)
    assert torch.equal(shrink(w, (6, 4)), w)


def test_config_and_shape_mismatches_are_clear(wan_folder, tmp_path):
    _, folder = wan_folder
    wrong = AIMTransformer(config_from_wan(folder, ffn_dim=48, action_dim=8, action_ffn_dim=16, action_channels=3))
    with pytest.raises(ValueError, match="does not fit"):
        load_wan_weights(wrong, folder)
    with pytest.raises(FileNotFoundError, match="config.json"):
        config_from_wan(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**WAN, "image_dim": 1280}))
    with pytest.raises(ValueError, match="image-conditioned"):
        config_from_wan(tmp_path)


def test_loads_directly_in_bfloat16(wan_folder):
    wan, folder = wan_folder
    model = from_wan_pretrained(folder, dtype=torch.bfloat16, action_dim=8, action_ffn_dim=16, action_channels=3)
    ours = model.blocks[1].branches["video"].cross_attn.to_k.weight
    assert ours.dtype == torch.bfloat16
    assert torch.equal(ours, wan.blocks[1].attn2.to_k.weight.to(torch.bfloat16))
