"""CPU check of the Hopper forward's (attention_fwd_sm90.cu) shared-memory and fragment bookkeeping.

No GPU needed; numpy only. Emulates, in float64 (no rounding), one CTA of attention_fwd_sm90_kernel
over several key blocks (full and partial, ragged N):
  * byte-addressed shared memory with the kernel's cp.async destination formula (sw128_offset) and
    its zero-fill for rows >= N;
  * the wgmma shared-memory descriptor as the kernel packs it (desc_sw128), decoded field by field,
    and the canonical 128-byte-swizzle layouts of the PTX ISA ("Shared Memory Matrix Layout",
    "Canonical Layouts": K-major ((8,m),(T,2k)):((8T,SBO),(1,T)), MN-major
    ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)), Swizzle<3,4,3> on byte addresses = 16-byte chunk bits
    4-6 XOR row bits 7-9 of the absolute address, base offset 0 for 1024-aligned atoms);
  * the m64nNk16 accumulator layout (Figure "WGMMA .m64nNk16 register fragment layout for
    accumulator matrix D") and register-A layout (Figure "... for matrix A"), as read from the ISA:
    warp w of the warpgroup holds rows 16w..16w+15 in mma.sync's m16n8 C / m16n8k16 A layouts;
  * the kernel's mask-word/bit extraction, online softmax with quad reductions, in-register P
    repacking (pa[j>>1][(j&1)*2 + {0,1}]), the epilogue's swizzled staging and 16-byte readback;
and compares out and lse with plain softmax attention under the block masks. It encodes MY
READING of the PTX ISA: it checks the kernel's address and index arithmetic against that reading,
not the hardware. Mutating an offset (swizzle XOR, LBO/SBO, k-step advance) makes it fail.
Run: python cuda/fragment_check_sm90.py  (a few seconds).
"""
import sys

import numpy as np

rng = np.random.default_rng(1)
ATOM = 128 * 128  # bytes of one 64-column atom of a 128-row tile


def sw128_offset(rows, r, col):
    """Kernel's sw128_offset (byte offset of element (r, col)); works on numpy arrays."""
    return (col >> 6) * rows * 128 + r * 128 + ((((col & 63) >> 3) ^ (r & 7)) << 4) + (col & 7) * 2


def desc_sw128(addr, lbo, sbo):
    """Kernel's desc_sw128."""
    return ((addr & 0x3FFFF) >> 4) | (((lbo & 0x3FFFF) >> 4) << 16) | (((sbo & 0x3FFFF) >> 4) << 32) | (1 << 62)


def decode(desc):
    start = (desc & 0x3FFF) << 4
    lbo = ((desc >> 16) & 0x3FFF) << 4
    sbo = ((desc >> 32) & 0x3FFF) << 4
    base_off = (desc >> 49) & 7
    mode = (desc >> 62) & 3
    assert mode == 1 and base_off == 0, "expect 128B swizzle, base offset 0"
    return start, lbo, sbo


def sw128(addr):
    """128-byte swizzle on absolute byte addresses: 16-byte chunk (bits 4-6) ^= bits 7-9."""
    return addr ^ (((addr >> 7) & 7) << 4)


class Smem:
    def __init__(self, nbytes):
        self.v = np.zeros(nbytes // 2)  # one float64 per 16-bit element

    def put(self, byte_addr, x):
        assert np.all(byte_addr % 2 == 0)
        self.v[byte_addr // 2] = x

    def get(self, byte_addr):
        return self.v[byte_addr // 2]


def read_kmajor(sm, desc, rows):
    """rows x 16 matrix (row-major in the math sense: [m or n][k]) from a K-major SW128 descriptor."""
    start, _lbo, sbo = decode(desc)
    m = np.arange(rows)[:, None]
    k = np.arange(16)[None, :]
    # ((8,m),(T,2k)):((8T,SBO),(1,T)) in elements, T = 8: row m0 + 8 m1 -> 128 B * m0 + SBO * m1.
    addr = start + (m // 8) * sbo + (m % 8) * 128 + k * 2
    return sm.get(sw128(addr))


def read_mnmajor(sm, desc, ncols):
    """16 x ncols matrix [k][n] from an MN-major SW128 descriptor (imm-trans-b = 1)."""
    start, lbo, sbo = decode(desc)
    k = np.arange(16)[:, None]
    n = np.arange(ncols)[None, :]
    # ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)): n = n0 + 8 n1 + 64 n2 -> 2 n0 + 16 n1 + LBO n2 bytes,
    # k = k0 + 8 k1 -> 128 k0 + SBO k1 bytes.
    addr = start + (n // 64) * lbo + (n % 64) * 2 + (k % 8) * 128 + (k // 8) * sbo
    return sm.get(sw128(addr))


# Accumulator layout of m64nNk16 (fp32): thread t (0..127) of the warpgroup, register index
# d[j][e] (j = column group, e = 0..3): row 16w + g + 8*(e>>1), col 8j + 2tq + (e&1).
T_ = np.arange(128)
W_, G_, TQ_ = T_ // 32, (T_ % 32) // 4, T_ % 4


def acc_rc(j, e):
    return 16 * W_ + G_ + 8 * (e >> 1), 8 * j + 2 * TQ_ + (e & 1)


def acc_to_mat(acc, ncols):  # acc [128][ncols/8][4]
    M = np.full((64, ncols), np.nan)
    for j in range(ncols // 8):
        for e in range(4):
            r, c = acc_rc(j, e)
            M[r, c] = acc[:, j, e]
    assert not np.isnan(M).any()
    return M


def mat_to_acc(M):
    ncols = M.shape[1]
    acc = np.zeros((128, ncols // 8, 4))
    for j in range(ncols // 8):
        for e in range(4):
            r, c = acc_rc(j, e)
            acc[:, j, e] = M[r, c]
    return acc


def a_regs_to_mat(a):
    """Register-A layout of m64nNk16 (16-bit): a[t][reg 0..3][half 0..1] ->
    row 16w + g + 8*(reg&1), col 2tq + half + 8*(reg>>1)."""
    A = np.full((64, 16), np.nan)
    for reg in range(4):
        for hf in range(2):
            A[16 * W_ + G_ + 8 * (reg & 1), 2 * TQ_ + hf + 8 * (reg >> 1)] = a[:, reg, hf]
    assert not np.isnan(A).any()
    return A


def wgmma_ss(acc, sm, desc_a, desc_b, ncols, scale_d):
    A = read_kmajor(sm, desc_a, 64)        # [m][k]
    B = read_kmajor(sm, desc_b, ncols).T   # [k][n] from an [n][k] K-major tile
    D = A @ B + (acc_to_mat(acc, ncols) if scale_d else 0)
    return mat_to_acc(D)


def wgmma_rs_trans_b(acc, a, sm, desc_b, ncols):
    D = a_regs_to_mat(a) @ read_mnmajor(sm, desc_b, ncols) + acc_to_mat(acc, ncols)
    return mat_to_acc(D)


def quad_reduce(x, op):
    """x[t] per thread -> reduced over the 4 lanes of each quad (xor 1, 2 shuffles)."""
    y = x.reshape(-1, 4)
    return np.repeat(op(y, axis=1), 4)


def run_cta(D, N, qb, entries, masks, Q, K, V, scale):
    """Emulate one CTA. entries: list of (kb, part). Returns out rows (128 x D) and lse (128)."""
    kChunks = D // 8
    kTile = 128 * D * 2
    raw = 16 + 2048                       # some dynamic smem start (not 1024-aligned)
    base = (raw + 1023) & ~1023
    sm = Smem(base + 5 * kTile + 2 * 2048 + 64)
    sQ, sK = base, base + kTile
    sV, sMask = sK + 2 * kTile, sK + 4 * kTile
    mask_sm = np.zeros((2, 512), dtype=np.uint64)
    q0 = qb * 128
    # Loads (all 256 threads' i = tid, tid + 256, ... as one vector).
    i = np.arange(128 * kChunks)
    r, c = i // kChunks, i % kChunks
    vals = np.where((q0 + r < N)[:, None], Q[np.minimum(q0 + r, N - 1)], 0.0)  # zero-fill past N
    for e in range(8):
        sm.put(sQ + sw128_offset(128, r, c * 8) + 2 * e, vals[np.arange(len(i)), c * 8 + e])

    def load_kv(stage, kb, part):
        k0 = kb * 128
        ok = (k0 + r < N)[:, None]
        kv = np.where(ok, K[np.minimum(k0 + r, N - 1)], 0.0)
        vv = np.where(ok, V[np.minimum(k0 + r, N - 1)], 0.0)
        for e in range(8):
            off = sw128_offset(128, r, c * 8) + 2 * e
            sm.put(sK + stage * kTile + off, kv[np.arange(len(i)), c * 8 + e])
            sm.put(sV + stage * kTile + off, vv[np.arange(len(i)), c * 8 + e])
        if part >= 0:
            mask_sm[stage] = masks[part].reshape(-1)  # linear copy of [128][4] words

    outs = np.zeros((128, D))
    lses = np.zeros(128)
    for wg in range(2):
        row_lo = wg * 64 + W_ * 16 + G_
        o = np.zeros((128, D // 8, 4))
        m_run = np.full((128, 2), -np.inf)
        l_run = np.zeros((128, 2))
        q_wg = sQ + wg * 64 * 128
        for t, (kb, part) in enumerate(entries):
            stage = t & 1
            load_kv(stage, kb, part)
            k_st = sK + stage * kTile
            s = np.zeros((128, 16, 4))
            for kk in range(D // 16):
                koff = (kk >> 2) * ATOM + (kk & 3) * 32
                s = wgmma_ss(s, sm, desc_sw128(q_wg + koff, 16, 1024), desc_sw128(k_st + koff, 16, 1024), 128, kk > 0)
            s = s * scale * np.log2(np.e)
            if part >= 0:
                w_lo = mask_sm[stage].reshape(128, 4)[row_lo]       # uint4 at row_lo * 16 bytes
                w_hi = mask_sm[stage].reshape(128, 4)[row_lo + 8]
                for j in range(16):
                    shift = (j & 3) * 8 + TQ_ * 2
                    bl = (w_lo[:, j >> 2] >> shift.astype(np.uint64)).astype(np.int64)
                    bh = (w_hi[:, j >> 2] >> shift.astype(np.uint64)).astype(np.int64)
                    s[:, j, 0] = np.where(bl & 1, s[:, j, 0], -np.inf)
                    s[:, j, 1] = np.where(bl & 2, s[:, j, 1], -np.inf)
                    s[:, j, 2] = np.where(bh & 1, s[:, j, 2], -np.inf)
                    s[:, j, 3] = np.where(bh & 2, s[:, j, 3], -np.inf)
            mx = np.stack([np.maximum(m_run[:, 0], s[:, :, 0:2].max(axis=(1, 2))),
                           np.maximum(m_run[:, 1], s[:, :, 2:4].max(axis=(1, 2)))], axis=1)
            mx = np.stack([quad_reduce(mx[:, 0], np.max), quad_reduce(mx[:, 1], np.max)], axis=1)
            base_r = np.where(mx == -np.inf, 0.0, mx)
            corr = np.exp2(m_run - base_r)
            m_run = mx
            l_run = l_run * corr
            pa = np.zeros((128, 8, 4, 2))
            for j in range(16):
                p = np.exp2(s[:, j, :] - base_r[:, [0, 0, 1, 1]])
                l_run[:, 0] += p[:, 0] + p[:, 1]
                l_run[:, 1] += p[:, 2] + p[:, 3]
                pa[:, j >> 1, (j & 1) * 2 + 0] = p[:, 0:2]
                pa[:, j >> 1, (j & 1) * 2 + 1] = p[:, 2:4]
            o = o * corr[:, [0, 0, 1, 1]][:, None, :]
            v_st = sV + stage * kTile
            for kk in range(8):
                o = wgmma_rs_trans_b(o, pa[:, kk], sm, desc_sw128(v_st + kk * 16 * 128, ATOM, 1024), D)
        # Epilogue.
        l_tot = np.stack([quad_reduce(l_run[:, 0], np.sum), quad_reduce(l_run[:, 1], np.sum)], axis=1)
        inv = np.where(l_tot > 0, 1.0 / np.where(l_tot > 0, l_tot, 1), 0.0)
        stage_sm = Smem(base + kTile)
        for n in range(D // 8):
            col = n * 8 + TQ_ * 2
            for hf in range(2):
                stage_sm.put(base + sw128_offset(128, row_lo, col + hf), o[:, n, hf] * inv[:, 0])
                stage_sm.put(base + sw128_offset(128, row_lo + 8, col + hf), o[:, n, 2 + hf] * inv[:, 1])
        for w in range(4):
            warp_row0 = wg * 64 + w * 16
            for lane_i in range(16 * kChunks):
                rr, cc = lane_i // kChunks, lane_i % kChunks
                outs[warp_row0 + rr, cc * 8: cc * 8 + 8] = stage_sm.get(
                    base + sw128_offset(128, warp_row0 + rr, cc * 8) + 2 * np.arange(8))
        for rr in range(2):
            rows = row_lo + 8 * rr
            lv = np.where(l_tot[:, rr] == 0, -np.inf, (m_run[:, rr] + np.log2(np.where(l_tot[:, rr] > 0, l_tot[:, rr], 1))) / np.log2(np.e))
            lses[rows] = lv
    return outs, lses


def check(D, N, all_partial=False):
    nb = (N + 127) // 128
    Q = rng.standard_normal((N, D)); K = rng.standard_normal((N, D)); V = rng.standard_normal((N, D))
    scale = D ** -0.5
    qb = nb - 1  # the ragged block when N % 128 != 0
    # Layout for query block qb: some full blocks, some partial ones, one partial with empty rows;
    # blocks touching the ragged end are partial (keys >= N invisible), as the contract requires.
    vis = np.zeros((128, N), dtype=bool)
    entries, masks = [], []
    for kb in range(nb):
        if kb % 3 == 2 and kb != nb - 1:
            continue  # skipped block
        full = (kb % 2 == 0) and (kb + 1) * 128 <= N and not all_partial
        if full:
            entries.append((kb, -1)); vis[:, kb * 128:(kb + 1) * 128] = True
        else:
            bits = rng.random((128, 128)) < 0.5
            bits[:, max(0, N - kb * 128):] = False  # keys past N
            bits[5] = False; bits[70] = False       # rows that never see a key in this block
            words = np.zeros((128, 4), dtype=np.uint64)
            for c in range(128):
                words[:, c >> 5] |= bits[:, c].astype(np.uint64) << np.uint64(c & 31)
            entries.append((kb, len(masks))); masks.append(words)
            hi = min(N, (kb + 1) * 128)
            vis[:, kb * 128:hi] = bits[:, :hi - kb * 128]
    out, lse = run_cta(D, N, qb, entries, masks, Q, K, V, scale)
    q0 = qb * 128
    rows = np.arange(128)
    ok = True
    for r in rows[q0 + rows < N]:
        sc = scale * (K @ Q[q0 + r])
        sc = np.where(vis[r], sc, -np.inf)
        if not vis[r].any():
            ok &= np.all(out[r] == 0) and lse[r] == -np.inf
            continue
        mref = sc.max()
        e = np.exp(sc - mref)
        ref = (e @ V) / e.sum()
        ok &= np.allclose(out[r], ref) and np.isclose(lse[r], mref + np.log(e.sum()))
    empty = int(sum(1 for r in rows[q0 + rows < N] if not vis[r].any()))
    print("sm90 fwd D=%d N=%d (%d entries, %d partial, %d rows without keys): %s"
          % (D, N, len(entries), len(masks), empty, "OK" if ok else "FAIL"))
    return bool(ok)


def check_descriptor_fields():
    # Field packing as the ISA table gives it; addresses < 256 KB, offsets multiples of 16.
    d = desc_sw128(0x2A3F0, ATOM, 1024)
    ok = (d & 0x3FFF) == 0x2A3F0 >> 4 and ((d >> 16) & 0x3FFF) == ATOM >> 4 and ((d >> 32) & 0x3FFF) == 64
    ok &= (d >> 62) == 1 and ((d >> 49) & 7) == 0 and ((d >> 46) & 7) == 0 and ((d >> 14) & 3) == 0
    ok &= (ATOM >> 4) < (1 << 14)
    print("descriptor fields:", "OK" if ok else "FAIL")
    return bool(ok)


def check_bank_conflicts():
    # Epilogue 4-byte stores of one warp (rows g, g+8 separately; 8 rows x 4 tq): distinct banks.
    ok = True
    for D in (64, 128):
        for n in range(D // 8):
            addr = sw128_offset(128, np.arange(32) // 4, n * 8 + (np.arange(32) % 4) * 2)
            ok &= len(set(((addr // 4) % 32).tolist())) == 32
    print("epilogue store banks:", "OK" if ok else "FAIL")
    return bool(ok)


if __name__ == "__main__":
    res = [check_descriptor_fields(), check_bank_conflicts()]
    for D in (64, 128):
        for N in (600, 512, 300):
            res.append(check(D, N))
        res.append(check(D, 300, all_partial=True))
    sys.exit(0 if all(res) else 1)
