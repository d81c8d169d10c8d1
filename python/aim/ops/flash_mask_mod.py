"""FlashAttention-4's mask_mod for our layouts: the CuTe DSL twin of
:func:`aim.ops.block_tables.layout_mask_mod` (imported only when FlashAttention-4 runs).

FlashAttention-4 calls it for every (query, key) pair of a partial block with scalar indices and
the aux tensors ``[blocks, bits]`` of :class:`~aim.ops.block_tables.MaskTables`. It has no
closure, so one compiled kernel serves every layout (the tables and the sequence length are
runtime values).
"""

import cutlass
import cutlass.cute as cute
from flash_attn.cute import utils

from aim.ops.block_map import BLOCK, MASK_WORDS_PER_ROW
from aim.ops.block_tables import EMPTY, FULL

_MASK_WORDS = BLOCK * MASK_WORDS_PER_ROW


@cute.jit
def layout_mask_mod(batch, head, m_idx, n_idx, seqlen_info, aux_tensors):
    blocks, bits = aux_tensors[0], aux_tensors[1]
    last = seqlen_info.seqlen_k - 1
    num_blocks = (seqlen_info.seqlen_k + (BLOCK - 1)) // BLOCK
    q = cutlass.min(m_idx[0], last)
    k = cutlass.min(n_idx[0], last)
    kind = blocks[(q // BLOCK) * num_blocks + k // BLOCK]
    word = bits[cutlass.max(kind, 0) * _MASK_WORDS + (q % BLOCK) * MASK_WORDS_PER_ROW + (k % BLOCK) // 32]
    kind_ssa = utils.scalar_to_ssa(kind, cutlass.Int32)
    bit_ssa = utils.scalar_to_ssa((word >> (k % 32)) & 1, cutlass.Int32)
    full = kind_ssa == utils.scalar_to_ssa(FULL, cutlass.Int32)
    partial = kind_ssa > utils.scalar_to_ssa(EMPTY + 1, cutlass.Int32)
    return full | (partial & (bit_ssa == utils.scalar_to_ssa(1, cutlass.Int32)))
