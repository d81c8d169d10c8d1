"""FlashAttention-4 compiles its forward and backward kernels with our mask_mod and block lists.

Runs wherever ``flash-attn-4`` is installed, GPU or not: FlashAttention-4 compiles without
running under PyTorch's FakeTensorMode, for the architecture named by FLASH_ATTENTION_ARCH, so
this checks on a CPU that the CuTe DSL accepts :mod:`aim.ops.flash_mask_mod` (its body is traced:
a wrong attribute or type there fails here) and that FlashAttention-4 takes our tensors' shapes,
dtypes and block sizes. sm90 only: sm100's grid set-up asks the CUDA driver for the device count.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("flash_attn.cute")

CASE = """
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch
from flash_attn.cute.interface import _flash_attn_bwd, _flash_attn_fwd
from aim.ops import AttentionLayout, TokenSequence
from aim.ops.block_tables import flash_block_lists, mask_tables
from aim.ops.flash_mask_mod import layout_mask_mod

head_dim = {head_dim}
layout = AttentionLayout.from_tokens(TokenSequence.teacher_forcing_clip(2, 37, 9, 70, 70, 16, 2))
forward, backward = flash_block_lists(layout, 128)
tables = mask_tables(layout)
with FakeTensorMode(allow_non_fake_inputs=True):
    fake = lambda t: torch.empty(t.shape, dtype=t.dtype, device="cuda")
    lists = lambda l: BlockSparseTensorsTorch(fake(l.mask_block_cnt), fake(l.mask_block_idx), fake(l.full_block_cnt),
                                              fake(l.full_block_idx), block_size=l.block_size)
    q, k, v = (torch.empty(2, layout.num_tokens, 3, head_dim, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    aux = [fake(tables.blocks), fake(tables.bits)]
    out, lse = _flash_attn_fwd(q, k, v, softmax_scale=0.1, mask_mod=layout_mask_mod, aux_tensors=aux,
                               block_sparse_tensors=lists(forward), return_lse=True)[:2]
    dq, dk, dv = _flash_attn_bwd(q, k, v, out, torch.empty_like(out), lse, 0.1, mask_mod=layout_mask_mod,
                                 aux_tensors=aux, block_sparse_tensors=lists(backward))[:3]
    assert out.shape == q.shape and dq.shape == q.shape and dk.shape == k.shape
print("compiled")
"""


@pytest.mark.parametrize("head_dim", [128, 16])
def test_flash_attention_4_compiles_our_mask_mod_for_sm90(head_dim):
    env = {**os.environ, "FLASH_ATTENTION_ARCH": "sm_90", "CUTE_DSL_ARCH": "sm_90a", "FLASH_ATTENTION_NUM_SMS": "132"}
    done = subprocess.run([sys.executable, "-c", CASE.format(head_dim=head_dim)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]
