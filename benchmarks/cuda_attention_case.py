"""One CUDA attention forward+backward per dtype and head dim, for compute-sanitizer (default:
a small ragged clip with partial and empty blocks) and Nsight Compute (--tokens 16384).
--deterministic runs the backward under torch.use_deterministic_algorithms (the dQ pass)."""

import argparse

import torch

from aim.ops import AttentionLayout, TokenSequence, attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=0, help="clip length (0: the small ragged case)")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--deterministic", action="store_true", help="dQ by the fixed-order pass, not atomics")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(args.deterministic)
    if args.tokens:
        f = round((args.tokens / 4 - 64) / 5)
        seq = TokenSequence.teacher_forcing_clip(4, f, 32, 2 * f, 2 * f, 32)
    else:
        seq = TokenSequence.teacher_forcing_clip(2, 37, 9, 70, 70, 16, samples=2)
    layout = AttentionLayout.from_tokens(seq)
    for dtype in args.dtypes:
        for head_dim in args.head_dims:
            shape = (1, args.heads, layout.num_tokens, head_dim)
            q, k, v = (torch.randn(shape, device="cuda", dtype=getattr(torch, dtype), requires_grad=True) for _ in range(3))
            attention(q, k, v, layout).backward(torch.randn_like(q))
    torch.cuda.synchronize()
    print(f"cuda attention case ran: {layout}")


if __name__ == "__main__":
    main()
