"""Every attention backend on a GPU: against the float64 reference, forward and gradients, for
the shared (block-sparse) attention and the cross-attention; and the model's training step and
KV-cached chunk per backend against SDPA's. Skips without CUDA, and per backend where its package,
GPU architecture or head_dim is missing (the skip says which)."""

import pytest
import torch

from aim.model.flow_matching import FlowMatchingConfig, training_loss
from aim.model.sampler import Rollout, SamplerConfig
from aim.ops import (
    AttentionBackend,
    AttentionLayout,
    TokenSequence,
    attention,
    dense_attention,
)
from aim.ops.backend import (
    ENV_VAR,
    AttentionInput,
    detect_platform,
    why_not,
    why_not_dense,
)
from aim.ops.reference import attention_reference

from ..model.helpers import STRUCTURE, random_clip, tiny_model
from .test_block_tables import LAYOUTS, cached_pass

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TOLERANCE = {torch.float16: 4e-3, torch.bfloat16: 2e-2}
BACKENDS = [b for b in AttentionBackend]
CUDA = torch.device("cuda")


def rel_err(x, ref):
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


def require(backend, dtype, head_dim, dense=False):
    check = why_not_dense if dense else why_not
    problem = check(backend, AttentionInput("cuda", dtype, head_dim, True), detect_platform(CUDA))
    if problem:
        pytest.skip(f"{backend.value}: {problem}")


def with_empty_rows():
    mask = torch.rand(700, 700) < 0.3
    mask[7] = False
    mask[300:340] = False
    mask[:, 500:520] = False  # keys nobody sees: their gradients are zero
    return AttentionLayout.from_mask(mask)


GPU_LAYOUTS = {
    "intent-causal clip": LAYOUTS["intent-causal clip"],
    "packed intent-causal clips": LAYOUTS["packed intent-causal clips"],
    "kv-cached pass": cached_pass,
    "packed causal samples": LAYOUTS["packed causal samples"],
    "random with empty rows": with_empty_rows,
    "large clip": lambda: AttentionLayout.from_tokens(TokenSequence.teacher_forcing_clip(4, 440, 32, 880, 880, 32)),
}


# bf16 at every head_dim the backends differ on, fp16 at one: each (dtype, head_dim) is one more
# FlashAttention-4 and Flex compilation on the GPU machine.
DTYPES_AND_HEAD_DIMS = [(torch.bfloat16, 64), (torch.bfloat16, 128), (torch.bfloat16, 16), (torch.float16, 128)]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("dtype,head_dim", DTYPES_AND_HEAD_DIMS, ids=lambda x: str(x).removeprefix("torch."))
@pytest.mark.parametrize("name", list(GPU_LAYOUTS))
def test_backend_matches_float64_reference(monkeypatch, backend, dtype, head_dim, name):
    require(backend, dtype, head_dim)
    monkeypatch.setenv(ENV_VAR, backend.value)
    layout = GPU_LAYOUTS[name]()
    n = layout.num_tokens
    # (B, N, heads, D) memory seen as (B, heads, N, D), as the model passes it.
    q, k, v = (torch.randn(2, n, 3, head_dim, device=CUDA, dtype=dtype).transpose(1, 2).requires_grad_()
               for _ in range(3))
    out = attention(q, k, v, layout)
    dout = torch.randn_like(out)
    out.backward(dout)
    mask = layout.to_dense().to(CUDA)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref, _ = attention_reference(*ref_inputs, mask)
    ref.backward(dout.double())
    tol = TOLERANCE[dtype]
    assert out.dtype == dtype and out.shape == q.shape
    assert rel_err(out, ref) < tol
    assert (out[:, :, ~mask.any(1)] == 0).all(), "rows that see no key must be zero"
    for label, t, r in zip("qkv", (q, k, v), ref_inputs):
        assert rel_err(t.grad, r.grad) < 2 * tol, f"d{label}"
    unseen = ~mask.any(0)
    assert (k.grad[:, :, unseen] == 0).all() and (v.grad[:, :, unseen] == 0).all()


@pytest.mark.parametrize("backend", [AttentionBackend.FLASH, AttentionBackend.XFORMERS, AttentionBackend.SDPA],
                         ids=lambda b: b.value)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("head_dim", [64, 128])
def test_cross_attention_matches_float64_reference(monkeypatch, backend, dtype, head_dim):
    require(backend, dtype, head_dim, dense=True)
    monkeypatch.setenv(ENV_VAR, backend.value)
    q = torch.randn(2, 1000, 4, head_dim, device=CUDA, dtype=dtype).transpose(1, 2).requires_grad_()
    k, v = (torch.randn(2, 77, 4, head_dim, device=CUDA, dtype=dtype).transpose(1, 2).requires_grad_() for _ in range(2))
    out = dense_attention(q, k, v)
    dout = torch.randn_like(out)
    out.backward(dout)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref, _ = attention_reference(*ref_inputs, torch.ones(1000, 77, dtype=torch.bool, device=CUDA))
    ref.backward(dout.double())
    assert rel_err(out, ref) < TOLERANCE[dtype]
    for label, t, r in zip("qkv", (q, k, v), ref_inputs):
        assert rel_err(t.grad, r.grad) < 2 * TOLERANCE[dtype], f"d{label}"


def _model():
    """The tiny preset with one 64-wide head, so that every backend (the native CUDA kernel too) runs it."""
    return tiny_model(num_heads=1).to(CUDA)


def _step(monkeypatch, backend, model, clip):
    monkeypatch.setenv(ENV_VAR, backend.value)
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = training_loss(model, STRUCTURE, *clip, FlowMatchingConfig(), torch.Generator().manual_seed(3))["loss"]
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_training_step_per_backend(monkeypatch, backend):
    require(backend, torch.bfloat16, 64)
    model = _model()
    clip = [t.to(CUDA) for t in random_clip(model)]
    loss, grads = _step(monkeypatch, backend, model, clip)
    ref_loss, ref_grads = _step(monkeypatch, AttentionBackend.SDPA, model, clip)
    assert torch.isfinite(grads).all()
    assert abs(loss.item() - ref_loss.item()) < 2e-2 * abs(ref_loss.item())
    assert rel_err(grads, ref_grads) < 5e-2


def _second_chunk(monkeypatch, backend, model, use_cache):
    monkeypatch.setenv(ENV_VAR, backend.value)
    c = model.config
    g = torch.Generator().manual_seed(0)
    text = torch.randn(2, 5, c.text_dim, generator=g).to(CUDA)
    first = torch.randn(2, c.latent_channels, 1, 4, 4, generator=g).to(CUDA)
    frames = torch.randn(2, c.latent_channels, 2, 4, 4, generator=g).to(CUDA)
    executed = torch.randn(2, STRUCTURE.actions_per_chunk, c.action_channels, generator=g).to(CUDA)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        rollout = Rollout(model, STRUCTURE, text, SamplerConfig(video_steps=3, action_steps=3), use_cache=use_cache)
        rollout.observe(first)
        rollout.predict_chunk(torch.Generator().manual_seed(1))
        rollout.observe(frames, executed)
        return rollout.predict_chunk(torch.Generator().manual_seed(2))


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_cached_chunk_per_backend(monkeypatch, backend):
    require(backend, torch.bfloat16, 64)
    model = _model().eval()
    cached = _second_chunk(monkeypatch, backend, model, use_cache=True)
    reference = _second_chunk(monkeypatch, AttentionBackend.SDPA, model, use_cache=False)
    for ours, ref in zip(cached, reference):
        if ref is not None:
            assert rel_err(ours.float(), ref.float()) < 5e-2
