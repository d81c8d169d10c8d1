"""CPU check of the CUDA kernels' fragment bookkeeping (no GPU needed; numpy only).

Emulates ldmatrix(.x4, .trans) and mma.m16n8k16 with the PTX ISA fragment layouts (float64, no
rounding) and replays, for every warp of one sub-tile, the lane address formulas (a_off, b_off,
ds_off), the C->A fragment repacking, the mask-word/bit extraction and the dS^T shared-memory
stores that attention_fwd.cu, attention_bwd.cu and attention_dq_pass.cu (through the warp tile
products of mma_helpers.cuh) use, against plain matrix algebra. Keep the
formulas here in sync with the kernels. Run: python cuda/fragment_check.py  (a few seconds).
"""
import sys

import numpy as np

# Emulation of ldmatrix / mma.m16n8k16 fragment semantics (PTX ISA) to check the kernels' lane
# address formulas and C->A repacking. Elements are float64 (no rounding): layout check only.
rng = np.random.default_rng(0)

def ldsm(mem, addr, trans=False):
    """mem: 1-D array of elements; addr[l] = element address supplied by lane l. Returns regs[l][i] = (lo, hi)."""
    out = np.zeros((32, 4, 2))
    for i in range(4):
        for l in range(32):
            for e in range(2):
                if not trans:
                    out[l, i, e] = mem[addr[8 * i + l // 4] + 2 * (l % 4) + e]
                else:
                    out[l, i, e] = mem[addr[8 * i + 2 * (l % 4) + e] + l // 4]
    return out

def mma(c, a, b0, b1):
    """c: [32][4], a: [32][4][2], b0,b1: [32][2] -> returns new c."""
    A = np.zeros((16, 16)); B = np.zeros((16, 8)); C = np.zeros((16, 8))
    for l in range(32):
        g, t = l // 4, l % 4
        for e in range(2):
            A[g, 2 * t + e] = a[l, 0, e]; A[g + 8, 2 * t + e] = a[l, 1, e]
            A[g, 2 * t + 8 + e] = a[l, 2, e]; A[g + 8, 2 * t + 8 + e] = a[l, 3, e]
            B[2 * t + e, g] = b0[l, e]; B[2 * t + 8 + e, g] = b1[l, e]
            C[g, 2 * t + e] = c[l, e]; C[g + 8, 2 * t + e] = c[l, 2 + e]
    D = A @ B + C
    out = np.zeros((32, 4))
    for l in range(32):
        g, t = l // 4, l % 4
        for e in range(2):
            out[l, e] = D[g, 2 * t + e]; out[l, 2 + e] = D[g + 8, 2 * t + e]
    return out

def cfrag_to_mat(acc):
    """acc: [ntiles][32][4] C fragments of a 16 x (8*ntiles) tile -> matrix."""
    n = acc.shape[0]
    M = np.zeros((16, 8 * n))
    for j in range(n):
        for l in range(32):
            g, t = l // 4, l % 4
            for e in range(2):
                M[g, 8 * j + 2 * t + e] = acc[j, l, e]; M[g + 8, 8 * j + 2 * t + e] = acc[j, l, 2 + e]
    return M

def pack_a(s, kk):
    """Kernel's C->A repack: a0=(s[2kk][0],s[2kk][1]) a1=(s[2kk][2],[3]) a2=(s[2kk+1][0],[1]) a3=(s[2kk+1][2],[3])."""
    a = np.zeros((32, 4, 2))
    for l in range(32):
        a[l, 0] = s[2 * kk, l, 0:2]; a[l, 1] = s[2 * kk, l, 2:4]
        a[l, 2] = s[2 * kk + 1, l, 0:2]; a[l, 3] = s[2 * kk + 1, l, 2:4]
    return a

lanes = np.arange(32)
def a_off(pitch): return ((lanes & 7) + ((lanes >> 3) & 1) * 8) * pitch + (lanes >> 4) * 8
def b_off(pitch): return ((lanes & 7) + (lanes >> 4) * 8) * pitch + ((lanes >> 3) & 1) * 8


def random_subtile_mask():
    """A random 128 x 128 block mask and the forward's [row][2 words] stage of its second 64-key
    half, as the kernels' load_subtile_mask_async fills it (tid = 2 row + word)."""
    maskbits = rng.random((128, 128)) < 0.6
    words = np.zeros((128, 4), dtype=np.uint64)
    for r in range(128):
        for c in range(128):
            if maskbits[r, c]: words[r, c >> 5] |= np.uint64(1 << (c & 31))
    half = 1
    smask = np.array([words[tid >> 1, half * 2 + (tid & 1)] for tid in range(256)])
    return maskbits, half, smask


def warp_tile_abt(sA, a_row0, sB, pitch, D):
    """mma_helpers.cuh warp_tile_abt: A rows a_row0..+15 of sA times the 64 rows of sB, transposed."""
    s = np.zeros((8, 32, 4))
    for kk in range(D // 16):
        a = ldsm(sA, a_row0 * pitch + a_off(pitch) + kk * 16)
        for nn in range(4):
            b = ldsm(sB, b_off(pitch) + nn * 16 * pitch + kk * 16)
            s[2 * nn] = mma(s[2 * nn], a, b[:, 0], b[:, 1])
            s[2 * nn + 1] = mma(s[2 * nn + 1], a, b[:, 2], b[:, 3])
    return s


def warp_tile_pb(o, p, sB, pitch, D):
    """mma_helpers.cuh warp_tile_pb: o += P (C->A repacked) times the row-major 64 x D tile sB (.trans)."""
    for kk in range(4):
        a = pack_a(p, kk)
        for nd in range(D // 16):
            b = ldsm(sB, a_off(pitch) + kk * 16 * pitch + nd * 16, trans=True)
            o[2 * nd] = mma(o[2 * nd], a, b[:, 0], b[:, 1])
            o[2 * nd + 1] = mma(o[2 * nd + 1], a, b[:, 2], b[:, 3])
    return o


def mask_tile_16x64(s, smask, warp, value):
    """mma_helpers.cuh mask_tile_16x64 with the forward's [row][2 words] stage layout."""
    s = s.copy()
    for l in range(32):
        g, tq = l >> 2, l & 3
        wlo = (smask[(warp * 16 + g) * 2], smask[(warp * 16 + g) * 2 + 1])
        whi = (smask[(warp * 16 + g + 8) * 2], smask[(warp * 16 + g + 8) * 2 + 1])
        for j in range(8):
            shift = (j & 3) * 8 + tq * 2
            blo = int(wlo[0] if j < 4 else wlo[1]) >> shift
            bhi = int(whi[0] if j < 4 else whi[1]) >> shift
            for e, bit in ((0, blo & 1), (1, (blo >> 1) & 1), (2, bhi & 1), (3, (bhi >> 1) & 1)):
                if not bit:
                    s[j, l, e] = value
    return s


def check_forward(D):
    pitch = D + 8
    Q = rng.standard_normal((128, D)); K = rng.standard_normal((64, D)); V = rng.standard_normal((64, D))
    sQ = np.zeros(128 * pitch); sK = np.zeros(64 * pitch); sV = np.zeros(64 * pitch)
    for r in range(128): sQ[r * pitch: r * pitch + D] = Q[r]
    for r in range(64): sK[r * pitch: r * pitch + D] = K[r]; sV[r * pitch: r * pitch + D] = V[r]
    maskbits, half, smask = random_subtile_mask()
    ok = True
    for warp in range(8):
        s = warp_tile_abt(sQ, warp * 16, sK, pitch, D)
        ok &= np.allclose(cfrag_to_mat(s), Q[warp * 16: warp * 16 + 16] @ K.T)
        # mask emulation: masked entries -> 0 here, so that P = S * mask
        P = mask_tile_16x64(s, smask, warp, 0.0)
        M = cfrag_to_mat(mask_tile_16x64(np.ones((8, 32, 4)), smask, warp, 0.0)).astype(bool)
        ok &= np.array_equal(M, maskbits[warp * 16: warp * 16 + 16, half * 64: half * 64 + 64])
        o = warp_tile_pb(np.zeros((D // 8, 32, 4)), P, sV, pitch, D)
        O = cfrag_to_mat(o)
        ok &= np.allclose(O, cfrag_to_mat(P) @ V)
        # epilogue smem staging: row g -> o[n][0..1] at col n*8 + 2tq; row g+8 -> o[n][2..3]
        st = np.zeros((16, D))
        for l in range(32):
            g, tq = l >> 2, l & 3
            for n in range(D // 8):
                st[g, n * 8 + tq * 2: n * 8 + tq * 2 + 2] = o[n, l, 0:2]
                st[g + 8, n * 8 + tq * 2: n * 8 + tq * 2 + 2] = o[n, l, 2:4]
        ok &= np.allclose(st, O)
    print("fwd D=%d layout check:" % D, "OK" if ok else "FAIL")
    return bool(ok)


def check_backward(D, KEYS):
    pitch = D + 8; dspitch = 72; kPass = 32 if D == 128 else 64; W = KEYS // 32
    warps = KEYS // 16
    Q = rng.standard_normal((64, D)); dO = rng.standard_normal((64, D))
    K = rng.standard_normal((KEYS, D)); V = rng.standard_normal((KEYS, D))
    lse = rng.standard_normal(64) + 3; delta = rng.standard_normal(64)
    scale = 0.3
    def smem(X, rows):
        m = np.zeros(rows * pitch)
        for r in range(X.shape[0]): m[r * pitch: r * pitch + D] = X[r]
        return m
    sQ, sdO, sK, sV = smem(Q, 64), smem(dO, 64), smem(K, KEYS), smem(V, KEYS)
    # mask of the full 128x128 block; this CTA covers keys khalf*KEYS.., queries qhalf*64..
    maskbits = rng.random((128, 128)) < 0.6
    words = np.zeros((128, 4), dtype=np.int64)
    for r in range(128):
        for c in range(128):
            if maskbits[r, c]: words[r, c >> 5] |= (1 << (c & 31))
    khalf = 1 if KEYS == 64 else 0; qhalf = 1
    smask = np.zeros(64 * W, dtype=np.int64)
    for tid in range(64 * W):  # r = tid / kW, w = tid % kW; src row qhalf*64 + r, word khalf*kW + w
        smask[tid] = words[qhalf * 64 + tid // W, khalf * W + tid % W]
    vis = maskbits[qhalf * 64: qhalf * 64 + 64, khalf * KEYS: khalf * KEYS + KEYS]  # [query][key]
    # reference
    S = scale * Q @ K.T
    P = np.exp(S - lse[:, None]) * vis
    dP = dO @ V.T
    dS = P * (dP - delta[:, None])
    ref_dV = P.T @ dO; ref_dK = scale * dS.T @ Q; ref_dQ = scale * dS @ K
    sdS = np.zeros(KEYS * dspitch)
    ok = True
    dK_all = np.zeros((KEYS, D)); dV_all = np.zeros((KEYS, D))
    for warp in range(warps):
        dk = np.zeros((D // 8, 32, 4)); dv = np.zeros((D // 8, 32, 4))
        mask_word = warp >> 1; mask_shift = (warp & 1) * 16 + lanes // 4
        for qp in range(64 // kPass):
            qc = qp * kPass
            st = np.zeros((kPass // 8, 32, 4))
            for kk in range(D // 16):
                a = ldsm(sK, warp * 16 * pitch + a_off(pitch) + kk * 16)
                for nn in range(kPass // 16):
                    bq = ldsm(sQ, qc * pitch + b_off(pitch) + nn * 16 * pitch + kk * 16)
                    st[2 * nn] = mma(st[2 * nn], a, bq[:, 0], bq[:, 1])
                    st[2 * nn + 1] = mma(st[2 * nn + 1], a, bq[:, 2], bq[:, 3])
            ok &= np.allclose(cfrag_to_mat(st), (Q[qc:qc + kPass] @ K[warp * 16: warp * 16 + 16].T).T)
            for l in range(32):
                g, tq = l >> 2, l & 3
                for j in range(kPass // 8):
                    b0 = lse[qc + 8 * j + 2 * tq]; b1 = lse[qc + 8 * j + 2 * tq + 1]
                    st[j, l, 0] = np.exp(st[j, l, 0] * scale - b0); st[j, l, 1] = np.exp(st[j, l, 1] * scale - b1)
                    st[j, l, 2] = np.exp(st[j, l, 2] * scale - b0); st[j, l, 3] = np.exp(st[j, l, 3] * scale - b1)
                    for e in range(2):
                        word = smask[(qc + 8 * j + 2 * tq + e) * W + mask_word] >> mask_shift[l]
                        if not (word & 1): st[j, l, e] = 0
                        if not ((word >> 8) & 1): st[j, l, 2 + e] = 0
            ok &= np.allclose(cfrag_to_mat(st), P[qc:qc + kPass, warp * 16: warp * 16 + 16].T)
            for kq in range(kPass // 16):
                a = pack_a(st, kq)
                for nd in range(D // 16):
                    bd = ldsm(sdO, qc * pitch + a_off(pitch) + kq * 16 * pitch + nd * 16, trans=True)
                    dv[2 * nd] = mma(dv[2 * nd], a, bd[:, 0], bd[:, 1]); dv[2 * nd + 1] = mma(dv[2 * nd + 1], a, bd[:, 2], bd[:, 3])
            dp = np.zeros((kPass // 8, 32, 4))
            for kk in range(D // 16):
                a = ldsm(sV, warp * 16 * pitch + a_off(pitch) + kk * 16)
                for nn in range(kPass // 16):
                    bd = ldsm(sdO, qc * pitch + b_off(pitch) + nn * 16 * pitch + kk * 16)
                    dp[2 * nn] = mma(dp[2 * nn], a, bd[:, 0], bd[:, 1]); dp[2 * nn + 1] = mma(dp[2 * nn + 1], a, bd[:, 2], bd[:, 3])
            for l in range(32):
                tq = l & 3
                for j in range(kPass // 8):
                    d0 = delta[qc + 8 * j + 2 * tq]; d1 = delta[qc + 8 * j + 2 * tq + 1]
                    dp[j, l] = st[j, l] * (dp[j, l] - np.array([d0, d1, d0, d1]))
            for kq in range(kPass // 16):
                a = pack_a(dp, kq)
                col32 = (qc + 16 * kq) // 2
                for l in range(32):
                    g, tq = l >> 2, l & 3
                    r0 = (warp * 16 + g) * dspitch + 2 * tq; r1 = (warp * 16 + g + 8) * dspitch + 2 * tq
                    sdS[r0 + 2 * col32: r0 + 2 * col32 + 2] = a[l, 0]; sdS[r1 + 2 * col32: r1 + 2 * col32 + 2] = a[l, 1]
                    sdS[r0 + 2 * col32 + 8: r0 + 2 * col32 + 10] = a[l, 2]; sdS[r1 + 2 * col32 + 8: r1 + 2 * col32 + 10] = a[l, 3]
                for nd in range(D // 16):
                    bq = ldsm(sQ, qc * pitch + a_off(pitch) + kq * 16 * pitch + nd * 16, trans=True)
                    dk[2 * nd] = mma(dk[2 * nd], a, bq[:, 0], bq[:, 1]); dk[2 * nd + 1] = mma(dk[2 * nd + 1], a, bq[:, 2], bq[:, 3])
        dK_all[warp * 16: warp * 16 + 16] = scale * cfrag_to_mat(dk); dV_all[warp * 16: warp * 16 + 16] = cfrag_to_mat(dv)
    ok_kv = np.allclose(dK_all, ref_dK) and np.allclose(dV_all, ref_dV)
    sdS_mat = np.array([sdS[r * dspitch: r * dspitch + 64] for r in range(KEYS)])
    ok_ds = np.allclose(sdS_mat, dS.T)
    # dQ
    ds_off = ((lanes & 7) + (lanes >> 4) * 8) * dspitch + ((lanes >> 3) & 1) * 8
    kDqSplit = warps // 4; kDqCols = D // kDqSplit; kDqChunk = min(64, kDqCols)
    dQ = np.zeros((64, D)); hits = np.zeros((64, D))
    for warp in range(warps):
        grp = warp & 3; cols = warp >> 2
        for dc in range(kDqCols // kDqChunk):
            d_base = cols * kDqCols + dc * kDqChunk
            acc = np.zeros((kDqChunk // 8, 32, 4))
            for kk in range(KEYS // 16):
                a = ldsm(sdS, ds_off + grp * 16 + kk * 16 * dspitch, trans=True)
                for nd in range(kDqChunk // 16):
                    bk = ldsm(sK, a_off(pitch) + kk * 16 * pitch + d_base + nd * 16, trans=True)
                    acc[2 * nd] = mma(acc[2 * nd], a, bk[:, 0], bk[:, 1]); acc[2 * nd + 1] = mma(acc[2 * nd + 1], a, bk[:, 2], bk[:, 3])
            M = cfrag_to_mat(acc) * scale
            dQ[grp * 16: grp * 16 + 16, d_base: d_base + kDqChunk] += M
            hits[grp * 16: grp * 16 + 16, d_base: d_base + kDqChunk] += 1
    ok_dq = np.allclose(dQ, ref_dQ) and (hits == 1).all()
    print("bwd D=%d keys=%d: frag %s dK/dV %s dS %s dQ %s" % (D, KEYS, ok, ok_kv, ok_ds, ok_dq))
    return bool(ok and ok_kv and ok_ds and ok_dq)


def check_dq_pass(D):
    """attention_dq_pass.cu: per warp, S = Q K^T, P = exp2(S c - lse log2e) masked, dP = dO V^T,
    dS = P (dP - delta), dQ += dS K, for one 64-key sub-tile (the second half of a partial block)."""
    pitch = D + 8
    Q, dO = rng.standard_normal((128, D)), rng.standard_normal((128, D))
    K, V = rng.standard_normal((64, D)), rng.standard_normal((64, D))
    lse, delta, scale = rng.standard_normal(128) + 3, rng.standard_normal(128), 0.3
    def smem(X):
        m = np.zeros(X.shape[0] * pitch)
        for r in range(X.shape[0]): m[r * pitch: r * pitch + D] = X[r]
        return m
    sQ, sdO, sK, sV = smem(Q), smem(dO), smem(K), smem(V)
    maskbits, half, smask = random_subtile_mask()
    vis = maskbits[:, half * 64: half * 64 + 64]
    P_ref = np.exp(scale * Q @ K.T - lse[:, None]) * vis
    dQ_ref = scale * (P_ref * (dO @ V.T - delta[:, None])) @ K
    ok = True
    for warp in range(8):
        rows = slice(warp * 16, warp * 16 + 16)
        s = warp_tile_abt(sQ, warp * 16, sK, pitch, D) * (scale * np.log2(np.e))
        s = mask_tile_16x64(s, smask, warp, -np.inf)
        base = np.array([[lse[warp * 16 + (l >> 2)], lse[warp * 16 + (l >> 2) + 8]] for l in range(32)]) * np.log2(np.e)
        dlt = np.array([[delta[warp * 16 + (l >> 2)], delta[warp * 16 + (l >> 2) + 8]] for l in range(32)])
        p = np.exp2(s - base[None, :, [0, 0, 1, 1]])
        ok &= np.allclose(cfrag_to_mat(p), P_ref[rows])
        ds = p * (warp_tile_abt(sdO, warp * 16, sV, pitch, D) - dlt[None, :, [0, 0, 1, 1]])
        dq = warp_tile_pb(np.zeros((D // 8, 32, 4)), ds, sK, pitch, D)
        ok &= np.allclose(scale * cfrag_to_mat(dq), dQ_ref[rows])
    print("dq pass D=%d layout check:" % D, "OK" if ok else "FAIL")
    return bool(ok)


if __name__ == "__main__":
    results = [check_forward(64), check_forward(128), check_dq_pass(64), check_dq_pass(128)]
    results += [check_backward(d, k) for d in (64, 128) for k in (64, 128)]
    sys.exit(0 if all(results) else 1)
