"""CPU check of the Hopper backward's (attention_bwd_sm90.cu) layouts, fragments and pipeline.

No GPU needed; numpy only. Emulates, in float64 (no rounding), one CTA of attention_bwd_sm90_kernel
(both consumer warpgroups, every step of its by_key list, full, partial and ragged blocks, rows
that see no key) and compares dK, dV and dQ with the float64 gradients of masked softmax attention:
  * TMA tile loads (CU_TENSOR_MAP_SWIZZLE_128B, 64-column boxes, zero fill past the tensor's
    rows) into byte-addressed shared memory: element (r, c) of a box written at dst + 128 r + 2 c
    with the 16-byte chunk bits 4-6 XOR address bits 7-9 (dst 1024-aligned), checked to be the
    kernel's sm90::sw128_offset layout;
  * wgmma from shared-memory descriptors as the kernel builds them (desc_sw128, kmajor_start,
    mnmajor_start), decoded field by field and read through the PTX ISA's canonical K-major and
    MN-major 128-byte-swizzle layouts (the same reading as fragment_check_sm90.py, which the
    forward's H200 run confirmed), and with A in registers (the P^T, dS^T register fragments);
  * accumulator ownership (sm90::acc_row / acc_col) for lse, delta, mask bits and the dQ atomics,
    the accumulator -> register-A repacking (acc_to_a_*);
  * stmatrix.x4.trans of dS^T into the K-major dS tile (lane addresses: stmatrix_trans_row),
    emulated per the PTX ISA (lane l's register i = row l/4, columns 2(l%4).. of matrix i, stored
    transposed to memory row 2(l%4).., column l/4);
  * the epilogue's staging of dK, dV in the K, V tiles and the 16-byte readback;
  * the mbarrier protocol (full/empty parities, arrival counts) under random interleavings of the
    producer and consumers: no stage is read before it is filled or refilled before every consumer
    released it, and nothing deadlocks.
The kernel's formulas are copied here as Python functions; tests/cuda/test_sm90_layout.py checks
them against the C++ header (aim/attention_sm90.h) itself. Like the forward's replay, this checks
the kernel's arithmetic against MY READING of the PTX ISA and CUDA driver documentation, not the
hardware. Mutating a formula (an offset, a parity, a fragment index) makes it fail.
Run: python cuda/fragment_check_sm90_bwd.py  (about a minute).
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fragment_check_sm90 as fwd  # noqa: E402  (ISA emulation: Smem, descriptors, fragments)

rng = np.random.default_rng(2)
LAYOUT_BLOCK = 128
MASK_WORDS_PER_ROW = 4

# ---- the kernel's formulas (aim/attention_sm90.h), one Python function each -----------------------


def atom_bytes(rows):
    return rows * 128


sw128_offset = fwd.sw128_offset  # shared with the forward's replay, as the kernels share the header
desc_sw128 = fwd.desc_sw128


def kmajor_start(rows, row0, kk):
    return (kk >> 2) * atom_bytes(rows) + row0 * 128 + (kk & 3) * 32


def mnmajor_start(rows, n0, kk):
    return (n0 >> 6) * atom_bytes(rows) + kk * 16 * 128


def acc_row(t, e):
    return 16 * (t >> 5) + ((t & 31) >> 2) + 8 * (e >> 1)


def acc_col(t, j, e):
    return 8 * j + 2 * (t & 3) + (e & 1)


def acc_to_a_kstep(j):
    return j >> 1


def acc_to_a_reg(j, h):
    return 2 * (j & 1) + h


def stmatrix_trans_row(rows, key0, kq, lane):
    return sw128_offset(rows, 16 * kq + 8 * ((lane >> 3) >> 1) + (lane & 7), key0 + 8 * ((lane >> 3) & 1))


def key_mask_word(key):
    return key >> 5


def key_mask_shift(key):
    return key & 31


def stage_of(t, stages):
    return t % stages


def full_parity(t, stages):
    return (t // stages) & 1


def empty_parity(t, stages):
    return full_parity(t, stages) ^ 1


def bwd_step(t, steps_per_block):
    return t // steps_per_block, t % steps_per_block


class BwdTiles:
    """sm90::BwdTiles<kD>."""

    def __init__(self, d):
        self.d = d
        self.step_queries = 64 if d == 128 else 128
        self.steps_per_block = LAYOUT_BLOCK // self.step_queries
        self.stages = 2
        self.consumers = 2
        self.threads = 128 * (1 + self.consumers)
        self.atoms_d = d // 64
        self.kv_bytes = LAYOUT_BLOCK * d * 2
        self.q_bytes = self.step_queries * d * 2
        self.ds_bytes = self.step_queries * LAYOUT_BLOCK * 2
        self.vec_bytes = self.step_queries * 4
        self.mask_bytes = self.step_queries * MASK_WORDS_PER_ROW * 4
        self.off_k = 0
        self.off_v = self.off_k + self.kv_bytes
        self.off_q = self.off_v + self.kv_bytes
        self.off_do = self.off_q + self.stages * self.q_bytes
        self.off_ds = self.off_do + self.stages * self.q_bytes
        self.off_lse = self.off_ds + self.stages * self.ds_bytes
        self.off_delta = self.off_lse + self.stages * self.vec_bytes
        self.off_mask = self.off_delta + self.stages * self.vec_bytes
        self.off_barriers = self.off_mask + self.stages * self.mask_bytes
        self.barrier_bytes = (2 * self.stages + 1) * 8
        self.smem_bytes = self.off_barriers + self.barrier_bytes + 1024
        self.full_arrivals = 1 + 32
        self.empty_arrivals = 128 * self.consumers
        self.full_tx_bytes = 2 * self.q_bytes
        self.kv_tx_bytes = 2 * self.kv_bytes

    def dq_row0(self, w):
        return 64 * w if self.step_queries == 128 else 0

    def dq_col0(self, w):
        return 64 * w if self.step_queries == 64 else 0


# ---- hardware emulation (PTX ISA / CUDA driver API, as read) --------------------------------------

T_ = np.arange(128)  # thread index within a warpgroup


def tma_load_box(sm, dst, tensor, n_rows, col0, row0, box_rows):
    """cp.async.bulk.tensor of a 64-column x box_rows box, SWIZZLE_128B, zero fill past n_rows."""
    assert dst % 1024 == 0, "128-byte-swizzled TMA destinations are 1024-byte aligned here"
    r = np.arange(box_rows)[:, None]
    c = np.arange(64)[None, :]
    rows = row0 + r
    vals = np.where(rows < n_rows, tensor[np.minimum(rows, n_rows - 1), col0 + c], 0.0)
    sm.put(fwd.sw128(dst + r * 128 + c * 2), vals)


def wgmma_ss(acc, sm, desc_a, desc_b, ncols, trans_b, scale_d):
    A = fwd.read_kmajor(sm, desc_a, 64)
    B = fwd.read_mnmajor(sm, desc_b, ncols) if trans_b else fwd.read_kmajor(sm, desc_b, ncols).T
    D = A @ B + (fwd.acc_to_mat(acc, ncols) if scale_d else 0)
    return fwd.mat_to_acc(D)


def wgmma_rs(acc, a, sm, desc_b, ncols):
    D = fwd.a_regs_to_mat(a) @ fwd.read_mnmajor(sm, desc_b, ncols) + fwd.acc_to_mat(acc, ncols)
    return fwd.mat_to_acc(D)


def stmatrix_x4_trans(sm, lane_addr, regs):
    """regs[lane][i][half] of one warp; lane_addr[lane] = byte address of memory row lane & 7 of matrix lane >> 3."""
    for lane in range(32):
        for i in range(4):
            for e in range(2):
                row = 2 * (lane % 4) + e
                sm.put(np.array([lane_addr[8 * i + row] + 2 * (lane // 4)]), np.array([regs[lane, i, e]]))


# ---- one CTA ----------------------------------------------------------------------------------------


def run_cta(D, N, kb, entries, masks, Q, K, V, dO, lse, delta, scale):
    """Emulate attention_bwd_sm90_kernel for key block kb; entries = by_key list [(qb, part)].
    Returns dK, dV (128 x D, rows past N zero) and dq_accum (N x D)."""
    tl = BwdTiles(D)
    kM = tl.step_queries
    raw = 48
    base = (raw + 1023) & ~1023
    sm = fwd.Smem(base + tl.smem_bytes)
    scale_log2 = scale * np.log2(np.e)
    n_steps = len(entries) * tl.steps_per_block
    lse_sm = np.zeros((tl.stages, kM))
    delta_sm = np.zeros((tl.stages, kM))
    mask_sm = np.zeros((tl.stages, kM * MASK_WORDS_PER_ROW), dtype=np.uint64)
    dq_accum = np.zeros((N, D))
    k0 = kb * LAYOUT_BLOCK

    # Producer: K and V once.
    for a in range(tl.atoms_d):
        off = a * atom_bytes(LAYOUT_BLOCK)
        tma_load_box(sm, base + tl.off_k + off, K, N, a * 64, k0, LAYOUT_BLOCK)
        tma_load_box(sm, base + tl.off_v + off, V, N, a * 64, k0, LAYOUT_BLOCK)
    dk = np.zeros((tl.consumers, 128, D // 8, 4))
    dv = np.zeros((tl.consumers, 128, D // 8, 4))
    G_, TQ_ = (T_ % 32) // 4, T_ % 4
    for t in range(n_steps):
        s = stage_of(t, tl.stages)
        entry, sub = bwd_step(t, tl.steps_per_block)
        qb, part = entries[entry]
        q0 = qb * LAYOUT_BLOCK + sub * kM
        # Producer: Q, dO boxes, lse/delta (rows past N copy row N - 1), mask words.
        for a in range(tl.atoms_d):
            off = s * tl.q_bytes + a * atom_bytes(kM)
            tma_load_box(sm, base + tl.off_q + off, Q, N, a * 64, q0, kM)
            tma_load_box(sm, base + tl.off_do + off, dO, N, a * 64, q0, kM)
        rows = np.minimum(q0 + np.arange(kM), N - 1)
        lse_sm[s] = lse[rows]
        delta_sm[s] = delta[rows]
        if part >= 0:
            mask_sm[s] = masks[part].reshape(-1)[sub * kM * MASK_WORDS_PER_ROW:(sub + 1) * kM * MASK_WORDS_PER_ROW]
        sQ = base + tl.off_q + s * tl.q_bytes
        sdO = base + tl.off_do + s * tl.q_bytes
        sdS = base + tl.off_ds + s * tl.ds_bytes
        sK, sV = base + tl.off_k, base + tl.off_v
        dsa_all = {}
        for w in range(tl.consumers):
            st = np.zeros((128, kM // 8, 4))
            dpt = np.zeros((128, kM // 8, 4))
            for kk in range(D // 16):
                st = wgmma_ss(st, sm, desc_sw128(sK + kmajor_start(128, 64 * w, kk), 16, 1024),
                              desc_sw128(sQ + kmajor_start(kM, 0, kk), 16, 1024), kM, 0, kk > 0)
                dpt = wgmma_ss(dpt, sm, desc_sw128(sV + kmajor_start(128, 64 * w, kk), 16, 1024),
                               desc_sw128(sdO + kmajor_start(kM, 0, kk), 16, 1024), kM, 0, kk > 0)
            key0 = 64 * w + 16 * (T_ >> 5)
            mword = key_mask_word(key0 + G_)
            mshift = key_mask_shift(key0 + G_).astype(np.uint64)
            for j in range(kM // 8):
                q_even = 8 * j + 2 * TQ_
                base0 = np.where(lse_sm[s][q_even] == -np.inf, np.inf, lse_sm[s][q_even] * np.log2(np.e))
                base1 = np.where(lse_sm[s][q_even + 1] == -np.inf, np.inf, lse_sm[s][q_even + 1] * np.log2(np.e))
                st[:, j, 0] = np.exp2(st[:, j, 0] * scale_log2 - base0)
                st[:, j, 1] = np.exp2(st[:, j, 1] * scale_log2 - base1)
                st[:, j, 2] = np.exp2(st[:, j, 2] * scale_log2 - base0)
                st[:, j, 3] = np.exp2(st[:, j, 3] * scale_log2 - base1)
            if part >= 0:
                for j in range(kM // 8):
                    for c in range(2):
                        word = mask_sm[s][(8 * j + 2 * TQ_ + c) * MASK_WORDS_PER_ROW + mword] >> mshift
                        st[:, j, c] = np.where(word & np.uint64(1), st[:, j, c], 0.0)
                        st[:, j, 2 + c] = np.where((word >> np.uint64(8)) & np.uint64(1), st[:, j, 2 + c], 0.0)
            for j in range(kM // 8):
                d_even, d_odd = delta_sm[s][8 * j + 2 * TQ_], delta_sm[s][8 * j + 2 * TQ_ + 1]
                dpt[:, j, 0] = st[:, j, 0] * (dpt[:, j, 0] - d_even)
                dpt[:, j, 1] = st[:, j, 1] * (dpt[:, j, 1] - d_odd)
                dpt[:, j, 2] = st[:, j, 2] * (dpt[:, j, 2] - d_even)
                dpt[:, j, 3] = st[:, j, 3] * (dpt[:, j, 3] - d_odd)
            pa = np.zeros((128, kM // 16, 4, 2))
            dsa = np.zeros((128, kM // 16, 4, 2))
            for j in range(kM // 8):
                for hh in range(2):
                    pa[:, acc_to_a_kstep(j), acc_to_a_reg(j, hh)] = st[:, j, 2 * hh:2 * hh + 2]
                    dsa[:, acc_to_a_kstep(j), acc_to_a_reg(j, hh)] = dpt[:, j, 2 * hh:2 * hh + 2]
            for wq in range(4):
                for kq in range(kM // 16):
                    addr = [sdS + stmatrix_trans_row(kM, 64 * w + 16 * wq, kq, lane) for lane in range(32)]
                    stmatrix_x4_trans(sm, addr, dsa[32 * wq:32 * wq + 32, kq])
            for kq in range(kM // 16):
                dv[w] = wgmma_rs(dv[w], pa[:, kq], sm, desc_sw128(sdO + mnmajor_start(kM, 0, kq), atom_bytes(kM), 1024), D)
                dk[w] = wgmma_rs(dk[w], dsa[:, kq], sm, desc_sw128(sQ + mnmajor_start(kM, 0, kq), atom_bytes(kM), 1024), D)
            dsa_all[w] = dsa
        # Named barrier: both consumers' dS stored. dQ tiles and atomics.
        for w in range(tl.consumers):
            dq = np.zeros((128, 8, 4))
            for kk in range(LAYOUT_BLOCK // 16):
                dq = wgmma_ss(dq, sm, desc_sw128(sdS + kmajor_start(kM, tl.dq_row0(w), kk), 16, 1024),
                              desc_sw128(sK + mnmajor_start(128, tl.dq_col0(w), kk), atom_bytes(128), 1024), 64, 1, kk > 0)
            for hh in range(2):
                row = q0 + tl.dq_row0(w) + acc_row(T_, 2 * hh)
                ok = row < N
                for j in range(8):
                    for e in range(2):
                        col = tl.dq_col0(w) + acc_col(T_, j, e)
                        np.add.at(dq_accum, (row[ok], col[ok]), dq[ok, j, 2 * hh + e] * scale)
    # Epilogue: stage in the K, V tiles, read back 16 bytes at a time.
    stage_k, stage_v = fwd.Smem(base + tl.smem_bytes), fwd.Smem(base + tl.smem_bytes)
    for w in range(tl.consumers):
        for j in range(D // 8):
            for hh in range(2):
                row = 64 * w + acc_row(T_, 2 * hh)
                for e in range(2):
                    off = sw128_offset(128, row, acc_col(T_, j, 0)) + 2 * e
                    stage_k.put(base + tl.off_k + off, dk[w][:, j, 2 * hh + e] * scale)
                    stage_v.put(base + tl.off_v + off, dv[w][:, j, 2 * hh + e])
    dK, dV = np.zeros((128, D)), np.zeros((128, D))
    for r in range(128):
        if k0 + r < N:
            for c in range(D // 8):
                off = sw128_offset(128, r, c * 8) + 2 * np.arange(8)
                dK[r, c * 8:c * 8 + 8] = stage_k.get(base + tl.off_k + off)
                dV[r, c * 8:c * 8 + 8] = stage_v.get(base + tl.off_v + off)
    return dK, dV, dq_accum


def mask_words(bits):
    words = np.zeros((128, 4), dtype=np.uint64)
    for c in range(128):
        words[:, c >> 5] |= bits[:, c].astype(np.uint64) << np.uint64(c & 31)
    return words


def check(D, N, all_partial=False):
    """The last key block (ragged when N % 128 != 0) against the float64 gradients."""
    nb = (N + 127) // 128
    Q, K, V, dO = (rng.standard_normal((N, D)) for _ in range(4))
    scale = D ** -0.5
    kb = nb - 1
    kcols = N - kb * 128  # keys of block kb below N
    empty_row = (nb - 1) * 128 + 5  # sees no key anywhere: lse = -inf, gradients 0
    block_vis = np.zeros((nb * 128, 128), dtype=bool)  # [query (padded)][key of block kb]
    entries, masks = [], []
    for qb in range(nb):
        if qb % 3 == 1 and qb != nb - 1:
            continue  # a query block that does not see kb
        rows = slice(qb * 128, qb * 128 + 128)
        if qb % 2 == 0 and (qb + 1) * 128 <= N and kcols == 128 and not all_partial:
            entries.append((qb, -1))
            block_vis[rows] = True
            continue
        bits = rng.random((128, 128)) < 0.5
        bits[:, kcols:] = False                 # keys past N
        bits[max(0, N - qb * 128):, :] = False  # queries past N
        bits[7] = False                         # a query that sees no key of this block
        if qb == nb - 1:
            bits[5] = False
        entries.append((qb, len(masks)))
        masks.append(mask_words(bits))
        block_vis[rows] = bits
    # lse and delta are statistics of whole rows: let queries see some keys of other blocks too.
    full_vis = rng.random((N, N)) < 0.3
    full_vis[:, kb * 128:] = block_vis[:N, :kcols]
    full_vis[empty_row] = False
    S = scale * Q @ K.T
    Sm = np.where(full_vis, S, -np.inf)
    mx = Sm.max(axis=1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    E = np.where(full_vis, np.exp(Sm - mx), 0.0)
    l = E.sum(axis=1, keepdims=True)
    P = np.where(l > 0, E / np.where(l > 0, l, 1), 0.0)
    lse = np.where(l[:, 0] > 0, mx[:, 0] + np.log(np.where(l[:, 0] > 0, l[:, 0], 1)), -np.inf)
    delta = ((P @ V) * dO).sum(axis=1)
    dS = P * (dO @ V.T - delta[:, None])
    cols = slice(kb * 128, N)
    ref_dV = P[:, cols].T @ dO
    ref_dK = scale * dS[:, cols].T @ Q
    ref_dQ = scale * dS[:, cols] @ K[cols]
    dK, dV, dq_accum = run_cta(D, N, kb, entries, masks, Q, K, V, dO, lse, delta, scale)
    ok = np.allclose(dK[:kcols], ref_dK) and np.allclose(dV[:kcols], ref_dV) and np.allclose(dq_accum, ref_dQ)
    ok &= not dK[kcols:].any() and not dV[kcols:].any() and not dq_accum[empty_row].any()
    n_part = sum(1 for _, p in entries if p >= 0)
    print("sm90 bwd D=%d N=%d key block %d (%d query blocks, %d partial): %s"
          % (D, N, kb, len(entries), n_part, "OK" if ok else "FAIL"))
    return bool(ok)


def check_tma_matches_tile_layout():
    """A TMA box written at atom a of a tile lands where sw128_offset says element (r, a*64 + c) is."""
    ok = True
    for rows in (64, 128):
        for a in range(2):
            dst = 4096 + a * atom_bytes(rows)
            r = np.arange(rows)[:, None]
            c = np.arange(64)[None, :]
            ok &= np.array_equal(fwd.sw128(dst + r * 128 + c * 2), 4096 + sw128_offset(rows, r, a * 64 + c))
    print("TMA box = tile layout:", "OK" if ok else "FAIL")
    return bool(ok)


def check_smem_map():
    ok = True
    for D in (64, 128):
        tl = BwdTiles(D)
        ok &= all(o % 1024 == 0 for o in (tl.off_q, tl.off_do, tl.off_ds, tl.q_bytes, tl.ds_bytes, tl.kv_bytes))
        ok &= tl.off_barriers % 8 == 0 and tl.smem_bytes <= 227 * 1024
        ok &= tl.kv_tx_bytes == 2 * 128 * D * 2 and tl.full_tx_bytes == 2 * tl.atoms_d * 64 * tl.step_queries * 2
    print("shared-memory map:", "OK" if ok else "FAIL", [BwdTiles(d).smem_bytes for d in (64, 128)])
    return bool(ok)


def check_stmatrix_banks():
    """The 8 row addresses of each stmatrix matrix cover 8 distinct 16-byte bank groups."""
    ok = True
    for rows in (64, 128):
        for key0 in range(0, 128, 16):
            for kq in range(rows // 16):
                addr = np.array([stmatrix_trans_row(rows, key0, kq, lane) for lane in range(32)])
                ok &= np.all(addr % 16 == 0)
                for i in range(4):
                    ok &= len(set(((addr[8 * i:8 * i + 8] // 16) % 8).tolist())) == 8
    print("stmatrix row addresses (aligned, conflict-free):", "OK" if ok else "FAIL")
    return bool(ok)


class Barrier:
    """mbarrier: arrival count, transaction count, phase parity (PTX ISA 9.7.13.15)."""

    def __init__(self, count):
        self.count, self.pending, self.tx, self.phase = count, count, 0, 0

    def arrive(self, tx=0):
        self.tx += tx
        self.pending -= 1
        assert self.pending >= 0, "more arrivals than the count"
        self._maybe_complete()

    def complete_tx(self, tx):
        self.tx -= tx
        self._maybe_complete()

    def _maybe_complete(self):
        if self.pending == 0 and self.tx == 0:
            self.phase ^= 1
            self.pending = self.count

    def try_wait(self, parity):
        """True once the phase with this parity has completed (the current phase has the other parity)."""
        return self.phase != parity


def check_pipeline(n_steps, trials=200):
    """The producer warp and the two consumer warpgroups (128 arrivals each on "empty") under random
    schedules, with the TMA bytes and each lane's cp.async arrival landing at random later times:
    every step's tiles and vectors are read after they land and before they are overwritten, the
    producer never overwrites a stage a consumer still reads, and nothing deadlocks."""
    tl = BwdTiles(128)
    S = tl.stages
    for _ in range(trials):
        full = [Barrier(tl.full_arrivals) for _ in range(S)]
        empty = [Barrier(tl.empty_arrivals) for _ in range(S)]
        tiles = [None] * S    # which step's Q/dO a stage holds (None while being overwritten)
        vectors = [None] * S  # which step's lse/delta/mask (written lane by lane)
        lanes_landed = [0] * S
        reading = [set() for _ in range(S)]  # consumers between their full-wait and their release
        prod_t = 0
        cons_t = [0, 0]
        inflight = []  # ("tma", stage, step) or ("cp", stage, step): copies not yet landed
        guard = 0
        while min(cons_t) < n_steps:
            guard += 1
            assert guard < 100000, "deadlock"
            actors = (["p"] if prod_t < n_steps else []) + ["c0", "c1"] * 2 + (["land"] * 3 if inflight else [])
            a = actors[rng.integers(len(actors))]
            if a == "p":
                s = stage_of(prod_t, S)
                if not empty[s].try_wait(empty_parity(prod_t, S)):
                    continue
                assert not reading[s], "producer overwrites stage %d while a consumer reads it" % s
                tiles[s] = vectors[s] = None
                lanes_landed[s] = 0
                full[s].arrive(tx=tl.full_tx_bytes)  # the TMA lane's arrive.expect_tx, then the TMA
                inflight.append(("tma", s, prod_t))
                inflight += [("cp", s, prod_t)] * 32  # each lane's cp.async + arrive.noinc
                prod_t += 1
            elif a == "land":
                kind, s, t = inflight.pop(rng.integers(len(inflight)))
                if kind == "tma":
                    tiles[s] = t
                    full[s].complete_tx(tl.full_tx_bytes)
                else:
                    lanes_landed[s] += 1
                    if lanes_landed[s] == 32:
                        vectors[s] = t
                    full[s].arrive()
            else:
                i = int(a[1])
                t = cons_t[i]
                if t >= n_steps:
                    continue
                s = stage_of(t, S)
                if i not in reading[s]:
                    if not full[s].try_wait(full_parity(t, S)):
                        continue
                    assert tiles[s] == t and vectors[s] == t, \
                        "consumer %d read stage %d holding %s/%s, expected step %d" % (i, s, tiles[s], vectors[s], t)
                    reading[s].add(i)
                else:  # done with the step: every thread of the warpgroup releases the stage
                    reading[s].discard(i)
                    for _thread in range(128):
                        empty[s].arrive()
                    cons_t[i] += 1
    print("pipeline protocol (%d steps, %d random schedules): OK" % (n_steps, trials))
    return True


if __name__ == "__main__":
    res = [check_tma_matches_tile_layout(), check_smem_map(), check_stmatrix_banks()]
    res += [check_pipeline(n) for n in (1, 2, 5)]
    for D in (64, 128):
        for N in (600, 512, 300):
            res.append(check(D, N))
        res.append(check(D, 300, all_partial=True))
    sys.exit(0 if all(res) else 1)
