/* kernels_sparse_avx2.c - AVX2 + FMA + F16C matmuls for sparse weights (docs/sparse-
 * format.md; the reference is kernels_sparse_ref.c). Compiled with the flags of
 * kernels_avx2.c; NULL table without them.
 *
 * N:M rows (2:4, 4:8): 8 stored slots at a time. For both patterns they cover exactly 16
 * columns, so x there is loaded as two 8-float vectors; each slot's column within the 16
 * ((slot / N) * M + idx, the indices extracted with a variable shift) picks its input with
 * two in-register permutes and a blend on bit 3 (an earlier version gathered x; same
 * results), which is multiplied by the 8 values: only N/M of the multiply-adds of a dense row, and
 * N/M (+ 1/8 byte of index) of its weight bytes. Bitmask rows (mask_dot): 64 columns per
 * step from one 64-bit mask load, the value offsets of its 8 bytes computed at once (SWAR
 * popcounts and prefix sums), so the bytes do not wait on each other; each byte's next
 * values are spread to their lanes by a 256-entry shuffle table (the AVX2 stand-in for
 * AVX-512's vexpandps; it zeroes the clear lanes) and multiplied with the 8 x values. Near
 * the row's last values a byte loop, then the scalar reference loop, so no load passes the
 * row's K values. Accumulation: two (N:M) or four (bitmask) 8-lane accumulators summed in
 * a fixed order, so results depend only on (cols, row), never on the row range or thread
 * count. From T = SQ_SGEMM_MIN_T_AVX2 tokens (prompts, evaluation;
 * SQ_SGEMM_MIN_T_AVX2_MASK for the bitmask types)
 * a packed GEMM: 16-row x KC-column tiles are expanded to dense f32 (the same table-driven
 * spread, on the occupancy of each 16 columns for N:M) and reused by every token through
 * gemm_avx2.h's micro-kernel; each output is one FMA chain over the columns in order.
 */
#include "kernels_internal.h"
#include "sparse_internal.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include "gemm_avx2.h"

/* lut[mb][j]: index among the set bits of mb of bit j (= popcount of the bits below j). */
#define PC8(x) (((x)&1) + (((x) >> 1) & 1) + (((x) >> 2) & 1) + (((x) >> 3) & 1) + (((x) >> 4) & 1) + \
                (((x) >> 5) & 1) + (((x) >> 6) & 1) + (((x) >> 7) & 1))
#define LROW(b) {PC8((b)&0), PC8((b)&1), PC8((b)&3), PC8((b)&7), PC8((b)&15), PC8((b)&31), PC8((b)&63), PC8((b)&127)}
#define L4(b) LROW(b), LROW((b) + 1), LROW((b) + 2), LROW((b) + 3)
#define L16(b) L4(b), L4((b) + 4), L4((b) + 8), L4((b) + 12)
#define L64(b) L16(b), L16((b) + 16), L16((b) + 32), L16((b) + 48)
static const uint8_t expand_lut[256][8] = {L64(0), L64(64), L64(128), L64(192)};

SQ_INLINE __m256 load8(const uint8_t *p, int vb) {
    return vb == 2 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p))
                   : _mm256_loadu_ps((const float *)(const void *)p);
}

/* 8 slots from slot s (a multiple of 8): x at their columns times their values. The slots
 * cover columns c0 .. c0 + 15, c0 = s / N * M; the caller guarantees s + 8 <= S, so
 * c0 + 16 <= cols. */
SQ_INLINE __m256 nm8(const sq_slayout *L, const uint8_t *row, const float *xt, int64_t s, __m256i off, __m256i shifts,
                     __m256i mmask, __m256 acc) {
    uint32_t nib; /* 8 slots' indices: 16 bits (2:4) or 32 (4:8); fixed-size copies (a variable
                   * one compiled to a byte loop through the stack, a store-forwarding stall per 8 slots) */
    if (L->ibits == 2) {
        uint16_t h;
        memcpy(&h, row + (s >> 2), 2);
        nib = h;
    } else {
        memcpy(&nib, row + (s >> 1), 4);
    }
    __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)nib), shifts), mmask);
    const __m256i c = _mm256_add_epi32(off, idx); /* 0..15 */
    const float *xs = xt + s / L->n * L->m;
    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xs), c), hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(xs + 8), c);
    __m256 xv = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
    __m256 v = load8(row + L->vals_off + (size_t)s * (size_t)L->vbytes, L->vbytes);
    return _mm256_fmadd_ps(v, xv, acc);
}

/* ===== T >= SGEMM_MIN_T: packed GEMM =====
 * Tiles of 16 rows x KC columns are expanded to dense f32 (zeros where nothing is stored)
 * and transposed into the per-thread scratch once, then every token reuses them through the
 * micro-kernel of gemm_avx2.h, like the quantized types' GEMM (kernels_quant_avx2.c). Each
 * output is one FMA chain over all columns in ascending order; the zeros add nothing
 * (fma(0, x, acc) == acc for finite x), so it equals the FMA chain over the stored weights
 * alone, whatever T, the row range or the thread count. */

/* Measured with `bench_kernels -m 4096x2048 -y s24_f16,s48_f16,smask_f16 -T 2,3,4,8,12,16 -t 1`
 * (docs/pruning-results.md): the T from which expanding tiles once beats streaming. */
#define SGEMM_MIN_T(L) ((L).m ? SQ_SGEMM_MIN_T_AVX2 : SQ_SGEMM_MIN_T_AVX2_MASK)

typedef struct {
    const sq_slayout *L;
    int64_t cols;
    __m256i off, shifts, mmask, bits;
} sinfo;

/* 8 lanes from the values vv placed on the set bits of mask byte mb (lane j gets the value
 * of rank(j) + first among them); lanes of clear bits are 0. */
SQ_INLINE __m256 spread8(__m256 vv, unsigned mb, int first, __m256i bits) {
    __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)expand_lut[mb & 255]));
    perm = _mm256_add_epi32(perm, _mm256_set1_epi32(first));
    const __m256i lanes = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)mb), bits), bits);
    return _mm256_and_ps(_mm256_permutevar8x32_ps(vv, perm), _mm256_castsi256_ps(lanes));
}

/* The dense weights of columns [c, c + 16) of a row (c a multiple of 16) into out[0..15],
 * columns past cols zero. *v is the bitmask rows' value cursor (stored values before column
 * c, at most K), advanced past the chunk. */
SQ_INLINE void expand16(int nm, int vb, const sinfo *si, const uint8_t *row, int64_t c, int64_t *v, float *out) {
    const sq_slayout *L = si->L;
    const int64_t cols = si->cols;
    if (nm) {
        const int64_t s = c / L->m * L->n; /* the chunk's first slot; 8 slots cover its 16 columns */
        if (c + 16 <= cols) {
            uint32_t nib;
            if (L->ibits == 2) {
                uint16_t h;
                memcpy(&h, row + (s >> 2), 2);
                nib = h;
            } else {
                memcpy(&nib, row + (s >> 1), 4);
            }
            const __m256i cc = _mm256_add_epi32(si->off, _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)nib), si->shifts), si->mmask));
            /* occupancy of the 16 columns: valid rows have strictly increasing columns, so the
             * i-th set bit takes the i-th value (a hostile row gets wrong values, in registers) */
            __m256i o = _mm256_sllv_epi32(_mm256_set1_epi32(1), cc);
            __m128i o4 = _mm_or_si128(_mm256_castsi256_si128(o), _mm256_extracti128_si256(o, 1));
            o4 = _mm_or_si128(o4, _mm_unpackhi_epi64(o4, o4));
            o4 = _mm_or_si128(o4, _mm_srli_epi64(o4, 32));
            const unsigned occ = (unsigned)_mm_cvtsi128_si32(o4);
            const __m256 vv = load8(row + L->vals_off + (size_t)s * (size_t)vb, vb);
            _mm256_storeu_ps(out, spread8(vv, occ & 255, 0, si->bits));
            _mm256_storeu_ps(out + 8, spread8(vv, occ >> 8, __builtin_popcount(occ & 255), si->bits));
        } else { /* the ragged last chunk */
            memset(out, 0, 16 * sizeof *out);
            for (int64_t k = s; k < L->n_vals; k++) {
                const int64_t col = k / L->n * L->m + (sq_snm_idx(L, row, k) & (L->m - 1)) - c;
                if (col >= 0 && col < 16) out[col] = sq_sval(L, row, k);
            }
        }
        return;
    }
    const uint8_t *vals = row + L->vals_off;
    for (int h = 0; h < 2; h++) {
        const int64_t c8 = c + 8 * h;
        unsigned mb = c8 < cols ? row[c8 / 8] : 0;
        if (c8 + 8 > cols && c8 < cols) mb &= (1u << (cols - c8)) - 1u;
        if (*v + 8 <= L->n_vals) {
            _mm256_storeu_ps(out + 8 * h, spread8(load8(vals + (size_t)*v * (size_t)vb, vb), mb, 0, si->bits));
            *v += __builtin_popcount(mb);
        } else { /* the last values: no load past the K-th */
            memset(out + 8 * h, 0, 8 * sizeof *out);
            while (mb && *v < L->n_vals) {
                const int j = __builtin_ctz(mb);
                mb &= mb - 1;
                out[8 * h + j] = sq_sval(L, row, (*v)++);
            }
        }
    }
}

/* wp[k*NR + j] = dense W[r + j][k0 + k] for j < nrows (<= NR), k < kc; 0 for j >= nrows.
 * k0 is a multiple of 64 (KC or KC_STACK), so 16-column chunks start on 8 slots. */
SQ_INLINE void pack_tile_s(int nm, int vb, float *wp, const uint8_t *w, size_t rb, int64_t r, int nrows, int64_t k0,
                           int kc, const sinfo *si) {
    _Alignas(32) float tmp[8 * 16]; /* 8 rows x 16 columns, row-major */
    for (int part = 0; part < NR / 8; part++) {
        int nh = nrows - part * 8;
        nh = nh < 0 ? 0 : nh > 8 ? 8 : nh;
        const uint8_t *base = w + (size_t)(r + part * 8) * rb;
        int64_t cur[8] = {0};
        if (!nm)
            for (int j = 0; j < nh; j++) cur[j] = sq_smask_prefix(si->L, base + (size_t)j * rb, k0);
        for (int kk = 0; kk < kc; kk += 16) {
            const int kn = kc - kk < 16 ? kc - kk : 16;
            for (int j = 0; j < 8; j++) {
                if (j < nh) expand16(nm, vb, si, base + (size_t)j * rb, k0 + kk, &cur[j], tmp + 16 * j);
                else memset(tmp + 16 * j, 0, 16 * sizeof *tmp);
            }
            for (int q = 0; q < 2 && 8 * q < kn; q++) {
                __m256 v[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) v[j] = _mm256_load_ps(tmp + 16 * j + 8 * q);
                transpose8(v);
                float *dst = wp + (size_t)(kk + 8 * q) * NR + part * 8;
                const int n = kn - 8 * q < 8 ? kn - 8 * q : 8;
                for (int k = 0; k < n; k++) _mm256_store_ps(dst + k * NR, v[k]);
            }
        }
    }
}

#define SPACK(NAME, NM, VB)                                                                                        \
    static void NAME(float *wp, const void *w, size_t rb, int64_t r, int nrows, int64_t k0, int kc, const void *ctx) { \
        pack_tile_s(NM, VB, wp, (const uint8_t *)w, rb, r, nrows, k0, kc, (const sinfo *)ctx);                     \
    }
SPACK(pack_nm_f16, 1, 2)
SPACK(pack_nm_f32, 1, 4)
SPACK(pack_mask_f16, 0, 2)
SPACK(pack_mask_f32, 0, 4)
_Static_assert(KC % 64 == 0 && KC_STACK % 64 == 0, "column blocks must start on a 16-column chunk and a mask word");

static void sgemm(const sq_slayout *L, float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T,
                  int64_t r0, int64_t r1, int64_t cols) {
    sinfo si;
    si.L = L;
    si.cols = cols;
    si.shifts = L->ibits == 2 ? _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14) : _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    si.mmask = _mm256_set1_epi32(L->m ? L->m - 1 : 0);
    si.bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    si.off = _mm256_setzero_si256();
    if (L->m) {
        int32_t o[8];
        for (int j = 0; j < 8; j++) o[j] = j / L->n * L->m;
        si.off = _mm256_loadu_si256((const __m256i *)(const void *)o);
    }
    gemm_pack_fn pack = L->m ? (L->vbytes == 2 ? pack_nm_f16 : pack_nm_f32) : (L->vbytes == 2 ? pack_mask_f16 : pack_mask_f32);
    gemm(pack, &si, y, ldy, x, w, rb, T, r0, r1, cols);
}

/* ===== T < SGEMM_MIN_T, bitmask rows: the streaming dot product =====
 * Per 64 columns one 64-bit load of the mask; the value offsets of its 8 bytes come at once
 * from byte popcounts (SWAR) and their prefix sums (a multiply by 0x0101...01), so the 8
 * sub-blocks of 8 columns are independent of each other and only one add per 64 columns
 * carries the value cursor. Each byte's 8 values are loaded from its offset and spread to
 * the lanes of its set bits by one table-driven shuffle that also zeroes the other lanes
 * (pshufb on the binary16 bytes before conversion; vpermps and a blend on the sign of the
 * table entry for f32), then one FMA with x. Four accumulators (byte i of a word into
 * a[i % 4]), summed in a fixed order: results depend only on (cols, row). No software
 * prefetch: a 512-byte one measured ~3 % slower on a 16384x2048 matrix (DRAM-bound). */

/* shuf16_lut[mb]: pshufb control putting binary16 value rank(j) into 16-bit lane j where bit
 * j of mb is set and 0 (control byte 0x80) where it is clear. */
#define SQ_RANK(b, j) PC8((b) & ((1 << (j)) - 1))
#define SH2(b, j) (((b) >> (j)) & 1 ? 2 * SQ_RANK(b, j) : 0x80), (((b) >> (j)) & 1 ? 2 * SQ_RANK(b, j) + 1 : 0x80)
#define SHROW(b) {SH2(b, 0), SH2(b, 1), SH2(b, 2), SH2(b, 3), SH2(b, 4), SH2(b, 5), SH2(b, 6), SH2(b, 7)}
#define SH4(b) SHROW(b), SHROW((b) + 1), SHROW((b) + 2), SHROW((b) + 3)
#define SH16(b) SH4(b), SH4((b) + 4), SH4((b) + 8), SH4((b) + 12)
#define SH64(b) SH16(b), SH16((b) + 16), SH16((b) + 32), SH16((b) + 48)
static _Alignas(16) const uint8_t shuf16_lut[256][16] = {SH64(0), SH64(64), SH64(128), SH64(192)};
/* perm32_lut[mb]: per lane j, rank(j) where bit j of mb is set, 0x80 (negative once
 * sign-extended: the lane is blended to 0) where it is clear. */
#define PM1(b, j) (((b) >> (j)) & 1 ? SQ_RANK(b, j) : 0x80)
#define PMROW(b) {PM1(b, 0), PM1(b, 1), PM1(b, 2), PM1(b, 3), PM1(b, 4), PM1(b, 5), PM1(b, 6), PM1(b, 7)}
#define PM4(b) PMROW(b), PMROW((b) + 1), PMROW((b) + 2), PMROW((b) + 3)
#define PM16(b) PM4(b), PM4((b) + 4), PM4((b) + 8), PM4((b) + 12)
#define PM64(b) PM16(b), PM16((b) + 16), PM16((b) + 32), PM16((b) + 48)
static _Alignas(8) const uint8_t perm32_lut[256][8] = {PM64(0), PM64(64), PM64(128), PM64(192)};

/* The dense weights of the 8 columns of mask byte mb whose first stored value is at p (8
 * values readable there). */
SQ_INLINE __m256 mask8(const uint8_t *p, int vb, unsigned mb) {
    if (vb == 2) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
        return _mm256_cvtph_ps(_mm_shuffle_epi8(h, _mm_load_si128((const __m128i *)(const void *)shuf16_lut[mb])));
    }
    const __m256i perm = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)perm32_lut[mb]));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps((const float *)(const void *)p), perm),
                            _mm256_setzero_ps(), _mm256_castsi256_ps(perm));
}

SQ_INLINE float mask_dot(const sq_slayout *L, const int vb, const uint8_t *row, const float *xt, int64_t cols) {
    const int64_t K = L->n_vals;
    const uint8_t *vals = row + L->vals_off;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t v = 0, b = 0;
    for (; 8 * b + 64 <= cols; b += 8) {
        uint64_t m;
        memcpy(&m, row + b, 8);
        if (!m) continue;
        const int64_t tot = __builtin_popcountll(m);
        if (v + tot + 8 > K) break; /* the last values (or a hostile row): the byte loop */
        uint64_t c = m - ((m >> 1) & 0x5555555555555555ull);
        c = (c & 0x3333333333333333ull) + ((c >> 2) & 0x3333333333333333ull);
        c = (c + (c >> 4)) & 0x0f0f0f0f0f0f0f0full;   /* byte i: popcount of mask byte i */
        const uint64_t ex = (c * 0x0101010101010101ull) << 8; /* byte i: values of bytes 0 .. i-1 */
        const uint8_t *vp = vals + (size_t)v * (size_t)vb;
        const float *xp = xt + 8 * b;
#define MB(i) ((unsigned)(m >> (8 * (i))) & 255u)
#define VP(i) (vp + (size_t)((ex >> (8 * (i))) & 255u) * (size_t)vb)
        a0 = _mm256_fmadd_ps(mask8(vp, vb, MB(0)), _mm256_loadu_ps(xp), a0);
        a1 = _mm256_fmadd_ps(mask8(VP(1), vb, MB(1)), _mm256_loadu_ps(xp + 8), a1);
        a2 = _mm256_fmadd_ps(mask8(VP(2), vb, MB(2)), _mm256_loadu_ps(xp + 16), a2);
        a3 = _mm256_fmadd_ps(mask8(VP(3), vb, MB(3)), _mm256_loadu_ps(xp + 24), a3);
        a0 = _mm256_fmadd_ps(mask8(VP(4), vb, MB(4)), _mm256_loadu_ps(xp + 32), a0);
        a1 = _mm256_fmadd_ps(mask8(VP(5), vb, MB(5)), _mm256_loadu_ps(xp + 40), a1);
        a2 = _mm256_fmadd_ps(mask8(VP(6), vb, MB(6)), _mm256_loadu_ps(xp + 48), a2);
        a3 = _mm256_fmadd_ps(mask8(VP(7), vb, MB(7)), _mm256_loadu_ps(xp + 56), a3);
#undef MB
#undef VP
        v += tot;
    }
    for (; 8 * b + 8 <= cols && v + 8 <= K; b++) { /* whole bytes while 8 values are readable */
        const unsigned mb = row[b];
        a0 = _mm256_fmadd_ps(mask8(vals + (size_t)v * (size_t)vb, vb, mb), _mm256_loadu_ps(xt + 8 * b), a0);
        v += __builtin_popcount(mb);
    }
    float tail = 0.0f; /* the last values and a ragged last byte: the reference loop */
    for (; b < L->meta_bytes && v < K; b++) {
        unsigned mb = row[b];
        if (8 * b + 8 > cols) mb &= (1u << (cols - 8 * b)) - 1u;
        while (mb && v < K) {
            const int j = __builtin_ctz(mb);
            mb &= mb - 1;
            tail += xt[8 * b + j] * sq_sval(L, row, v++);
        }
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + tail;
}

SQ_INLINE void smatmul(sq_type type, float *y, int64_t ldy, const float *x, const void *w, size_t row_bytes, int64_t T,
                    int64_t r0, int64_t r1, int64_t cols, sq_qparams q) {
    if (T <= 0 || r1 <= r0) return;
    const sq_slayout L = sq_slayout_of(type, q, cols);
    if (T >= SGEMM_MIN_T(L) && cols > 0) {
        /* a copy: if L's own address escaped to sgemm (not inlined), the streaming loop
         * below would reload its fields and divide by L.n (measured: AVX2 2:4 decode -30 %) */
        const sq_slayout Lg = L;
        sgemm(&Lg, y, ldy, x, w, row_bytes, T, r0, r1, cols);
        return;
    }
    const __m256i shifts = L.ibits == 2 ? _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)
                                        : _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i off = _mm256_setzero_si256(), mmask = _mm256_set1_epi32(L.m ? L.m - 1 : 0);
    if (L.m) {
        int32_t o[8];
        for (int j = 0; j < 8; j++) o[j] = j / L.n * L.m;
        off = _mm256_loadu_si256((const __m256i *)(const void *)o);
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t = 0; t < T; t++) {
            const float *xt = x + t * cols;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            float tail = 0.0f;
            if (type != SQ_TYPE_SMASK_F16 && type != SQ_TYPE_SMASK_F32) { /* a constant after inlining */
                int64_t s = 0;
                for (; s + 16 <= L.n_vals; s += 16) {
                    a0 = nm8(&L, row, xt, s, off, shifts, mmask, a0);
                    a1 = nm8(&L, row, xt, s + 8, off, shifts, mmask, a1);
                }
                if (s + 8 <= L.n_vals) {
                    a0 = nm8(&L, row, xt, s, off, shifts, mmask, a0);
                    s += 8;
                }
                for (; s < L.n_vals; s++) tail += xt[s / L.n * L.m + (sq_snm_idx(&L, row, s) & (L.m - 1))] * sq_sval(&L, row, s);
            } else {
                y[t * ldy + r] = mask_dot(&L, type == SQ_TYPE_SMASK_F16 ? 2 : 4, row, xt, cols);
                continue;
            }
            y[t * ldy + r] = hsum8(_mm256_add_ps(a0, a1)) + tail;
        }
    }
}

#define SK(NAME, TYPE)                                                                                             \
    static void NAME(float *y, int64_t ldy, const float *x, const void *w, size_t rb, int64_t T, int64_t r0,      \
                     int64_t r1, int64_t cols, sq_qparams q) {                                                    \
        smatmul(TYPE, y, ldy, x, w, rb, T, r0, r1, cols, q);                                                       \
    }
SK(s24_f16, SQ_TYPE_S24_F16)
SK(s24_f32, SQ_TYPE_S24_F32)
SK(s48_f16, SQ_TYPE_S48_F16)
SK(s48_f32, SQ_TYPE_S48_F32)
SK(smask_f16, SQ_TYPE_SMASK_F16)
SK(smask_f32, SQ_TYPE_SMASK_F32)

static const sq_qmatmul_fn sparse_table[SQ_TYPE_COUNT] = {
    [SQ_TYPE_S24_F16] = s24_f16,     [SQ_TYPE_S24_F32] = s24_f32,     [SQ_TYPE_S48_F16] = s48_f16,
    [SQ_TYPE_S48_F32] = s48_f32,     [SQ_TYPE_SMASK_F16] = smask_f16, [SQ_TYPE_SMASK_F32] = smask_f32,
};

const sq_qmatmul_fn *sq_kernels_avx2_sparse(void) { return sparse_table; }

#else

const sq_qmatmul_fn *sq_kernels_avx2_sparse(void) { return NULL; }

#endif
