"""Benchmark: aim's block-sparse attention against the PyTorch kernels a user would use instead.

For AIM teacher-forcing layouts (4 chunks; observation, action, video, value and action groups;
docs/method.md §5) of several lengths, times forward and forward+backward of:

* ``aim``        — aim's native kernels (C++ on CPU, CUDA on GPU);
* ``fa4``        — GPU only: FlashAttention-4 (flash-attn-4) on the same block lists, with a
                   mask_mod that reads our partial-block bit masks (aim.ops' ``flash`` backend);
* ``xformers``   — GPU only: xformers' memory_efficient_attention with the layout as a tensor
                   bias (aim.ops' ``xformers`` backend; it computes every block);
* ``sdpa-mask``  — scaled_dot_product_attention with the dense boolean mask (same function);
* ``flex``       — FlexAttention, compiled, with the identical BlockMask (forward only on CPU,
                   where Flex has no backward);
* ``sdpa-dense`` — GPU only: SDPA with NO mask (flash backend): the speed-of-light reference,
                   which computes every block, so its time is not the same function's.

An impl whose package, GPU or head_dim is missing is skipped with the reason printed.

TFLOP/s count only visible (query, key) pairs for the masked kernels (forward 4·pairs·D,
backward 10·pairs·D per head), and all pairs for ``sdpa-dense``. Prints a table and appends it,
with device, versions and date, to benchmarks/RESULTS.md (``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from aim.ops import INTENT_CAUSAL, AttentionBackend, AttentionLayout, TokenSequence
from aim.ops.attention import attention_with
from aim.ops.backend import AttentionInput, detect_platform, why_not
from aim.ops.flex_backend import flex_block_mask
from aim.ops.reference import group_mask_mod
from aim.ops.sdpa_backend import masked_sdpa
from common import environment, median_ms, record

ACTIONS_PER_CHUNK = 32  # docs/method.md §2: 16 actions per latent frame, 2 latent frames per chunk


def aim_clip(target_tokens: int, chunks: int = 4) -> TokenSequence:
    """A clip of ``chunks`` chunks whose length is close to ``target_tokens``.

    Per chunk: one latent frame of current observation (f tokens), the executed actions, two
    latent frames each of noisy video and value (4f), and the noisy future actions.
    """
    f = max(1, round((target_tokens / chunks - 2 * ACTIONS_PER_CHUNK) / 5))
    return TokenSequence.teacher_forcing_clip(chunks, f, ACTIONS_PER_CHUNK, 2 * f, 2 * f, ACTIONS_PER_CHUNK)


@dataclass
class Row:
    tokens: int
    density: float
    impl: str
    pass_: str
    ms: float
    tflops: float


def visible_pairs(layout: AttentionLayout) -> int:
    return int(layout.to_dense().sum())


def bench_length(target: int, args, device: torch.device, dtype: torch.dtype) -> list[Row]:
    seq = aim_clip(target)
    layout = AttentionLayout.from_tokens(seq)
    n, d = layout.num_tokens, args.head_dim
    pairs = visible_pairs(layout) * args.batch * args.heads
    mask = layout.dense_mask(device)
    shape = (args.batch, args.heads, n, d)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    dout = torch.randn(shape, device=device, dtype=dtype)

    impls: dict[str, Callable[[], torch.Tensor]] = {}
    inp = AttentionInput(device.type, dtype, d, requires_grad=True)
    for name, backend in (("aim", AttentionBackend.NATIVE), ("fa4", AttentionBackend.FLASH),
                          ("xformers", AttentionBackend.XFORMERS)):
        problem = why_not(backend, inp, detect_platform(device))
        if problem:
            print(f"  {name}: skipped ({problem})", file=sys.stderr)
        else:
            impls[name] = lambda backend=backend: attention_with(backend, q, k, v, layout)
    impls["sdpa-mask"] = lambda: masked_sdpa(q, k, v, mask)
    if not args.no_flex:
        from torch.nn.attention.flex_attention import flex_attention

        block_mask = flex_block_mask(layout, device, group_mask_mod(seq, INTENT_CAUSAL, device))
        flex = torch.compile(flex_attention, dynamic=False)
        # On CPU Flex refuses inputs that require grad (it has no CPU backward), even under no_grad.
        fq, fk, fv = (q, k, v) if device.type == "cuda" else (q.detach(), k.detach(), v.detach())
        impls["flex"] = lambda: flex(fq, fk, fv, block_mask=block_mask)
    if device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def dense_flash():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v)

        impls["sdpa-dense"] = dense_flash

    rows = []
    for name, fn in impls.items():
        counted = args.batch * args.heads * n * n if name == "sdpa-dense" else pairs
        fwd_ms = median_ms(lambda: _no_grad(fn), device, 1, args.repeats)
        rows.append(Row(n, layout.block_density, name, "fwd", fwd_ms, 4 * counted * d / fwd_ms / 1e9))
        if not (name == "flex" and device.type == "cpu"):  # FlexAttention has no CPU backward (torch 2.13)

            def fwd_bwd():
                q.grad = k.grad = v.grad = None
                fn().backward(dout)

            ms = median_ms(fwd_bwd, device, 1, args.repeats)
            rows.append(Row(n, layout.block_density, name, "fwd+bwd", ms, 14 * counted * d / ms / 1e9))
        print(f"  {n} tokens, {name}: " + ", ".join(f"{r.pass_} {r.ms:.3f} ms" for r in rows if r.impl == name),
              file=sys.stderr, flush=True)
    return rows


def _no_grad(fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return fn()


def render(rows: list[Row]) -> str:
    ref = {(r.tokens, r.pass_): r.ms for r in rows if r.impl == "aim"}
    lines = [
        "| tokens | block density | impl | pass | time (ms) | TFLOP/s | time / aim's |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        aim_ms = ref.get((r.tokens, r.pass_))
        ratio = f"{r.ms / aim_ms:.2f}x" if aim_ms else "-"
        lines.append(f"| {r.tokens} | {r.density:.1%} | {r.impl} | {r.pass_} | {r.ms:.2f} | {r.tflops:.3f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None)
    parser.add_argument("--tokens", type=int, nargs="+", default=None, help="target clip lengths")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--head-dim", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-flex", action="store_true", help="skip FlexAttention (slow to compile)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="one small length, for a smoke run")
    args = parser.parse_args()

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if gpu else "float32"))
    args.heads = args.heads or 16
    args.head_dim = args.head_dim or (128 if gpu else 64)
    args.repeats = args.repeats or (20 if gpu else 3)
    tokens = args.tokens or ([1024] if args.quick else ([4096, 16384, 32768] if gpu else [4096, 16384]))

    print(f"# attention benchmark: {environment(device)}", file=sys.stderr)
    rows: list[Row] = []
    for target in tokens:
        rows += bench_length(target, args, device, dtype)
    title = (
        f"### attention, {dtype}, batch {args.batch}, {args.heads} heads x {args.head_dim}, "
        f"AIM teacher-forcing clips (4 chunks)\n{environment(device)}\n"
    )
    table = render(rows)
    print(title + "\n" + table)
    if not args.no_record and not args.quick:
        record(title, table)


if __name__ == "__main__":
    main()
