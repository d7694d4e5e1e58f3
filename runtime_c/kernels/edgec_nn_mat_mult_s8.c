/*
 * The DSP convolution engines (shared by edgec_convolve_s8 and
 * edgec_convolve_1x1_s8; docs/kernels.md has the numbers):
 *
 * - im2col + GEMM: two pixels widened into int16 columns, then 2 output
 *   channels x 2 columns at a time (edgec_nn_gemm_2x2_asm): per group of 4
 *   accumulation steps (16 MACs) one LDM of the four column words, two weight
 *   words (LDR, SXTB16, SXTB16 ror 8) and eight SMLAD, 15 instructions, loop
 *   unrolled four times. Weights stay in TFLite's layout: SXTB16 splits a word
 *   into (w0, w2) and (w1, w3), and the columns are stored in that same
 *   "unordered" order, so SMLAD pairs match without repacking.
 * - weight-stationary (edgec_nn_pw_asm / edgec_nn_ws_asm): a channel pair's
 *   weights widened once, the input read as int8 straight from the tensor, the
 *   input offset folded into the bias; pointwise layers and the interior pixels
 *   of other convolutions.
 * - pruned (all-zero) channels: skipped, their constant outputs written at the
 *   end (edgec_nn_dead_prepare / edgec_nn_dead_fill).
 *
 * gcc does not find these schedules by itself (it splits the LDM and runs out of
 * registers), so on Arm the tile loops are assembly over fixed registers; the
 * host build (tests, EDGEC_EMULATE_DSP) runs C twins with the same arithmetic.
 * Requantisation: edgec_rq_fast (3 instructions + SSAT) whenever
 * edgec_rq_fast_ok holds, the generic TFLite code otherwise.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

#if EDGEC_USE_DSP

void edgec_nn_im2col_s8_to_s16x2(const int8_t *src, int32_t *cols, int32_t slot, int32_t len, int32_t offset)
{
    const int32_t offset2 = edgec_dup_s16(offset);
    int32_t *dst = edgec_nn_widen_groups(src, cols + 2 * slot, len >> 2, offset2);
    const int32_t rem = len & 3;
    if (rem) {
        src += len & ~3;
        const int32_t x0 = src[0] + offset;
        const int32_t x1 = rem > 1 ? src[1] + offset : 0;
        const int32_t x2 = rem > 2 ? src[2] + offset : 0;
        dst[0] = (int32_t)(((uint32_t)x0 & 0xFFFFu) | ((uint32_t)x2 << 16));
        dst[1] = (int32_t)((uint32_t)x1 & 0xFFFFu);
    }
}

/* acc {a0, a1, b0, b1} (rows a, b x columns 0, 1) += `groups` groups from wa, wb, cols. */
#if EDGEC_ARM_ASM
/* One group; the LDM list must be ascending, hence x0..x3 fixed in r4..r7. */
#define EDGEC_GEMM_GROUP                                                                                               \
    "ldm    %[c]!, {r4, r5, r6, r7}\n\t"                                                                              \
    "ldr    %[t], [%[wa]], #4\n\t"                                                                                    \
    "sxtb16 %[u], %[t]\n\t"                                                                                           \
    "sxtb16 %[t], %[t], ror #8\n\t"                                                                                   \
    "smlad  %[a0], %[u], r4, %[a0]\n\t"                                                                               \
    "smlad  %[a1], %[u], r6, %[a1]\n\t"                                                                               \
    "smlad  %[a0], %[t], r5, %[a0]\n\t"                                                                               \
    "smlad  %[a1], %[t], r7, %[a1]\n\t"                                                                               \
    "ldr    %[t], [%[wb]], #4\n\t"                                                                                    \
    "sxtb16 %[u], %[t]\n\t"                                                                                           \
    "sxtb16 %[t], %[t], ror #8\n\t"                                                                                   \
    "smlad  %[b0], %[u], r4, %[b0]\n\t"                                                                               \
    "smlad  %[b1], %[u], r6, %[b1]\n\t"                                                                               \
    "smlad  %[b0], %[t], r5, %[b0]\n\t"                                                                               \
    "smlad  %[b1], %[t], r7, %[b1]\n\t"
#endif

EDGEC_FORCE_INLINE void edgec_gemm_2x2(int32_t acc[4], const int8_t *wa, const int8_t *wb, const int32_t *c,
                                       int32_t groups)
{
#if EDGEC_ARM_ASM
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    int32_t n = groups, t, u;
    register int32_t x0 __asm__("r4");
    register int32_t x1 __asm__("r5");
    register int32_t y0 __asm__("r6");
    register int32_t y1 __asm__("r7");
    __asm__ volatile("tst    %[n], #1\n\t"
                     "beq    1f\n\t" EDGEC_GEMM_GROUP "1:\n\t"
                     "lsrs   %[n], %[n], #1\n\t"
                     "beq    3f\n"
                     "2:\n\t" EDGEC_GEMM_GROUP EDGEC_GEMM_GROUP "subs   %[n], %[n], #1\n\t"
                     "bne    2b\n"
                     "3:\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [wa] "+r"(wa), [wb] "+r"(wb),
                       [c] "+r"(c), [n] "+r"(n), "=r"(x0), "=r"(x1), "=r"(y0), "=r"(y1), [t] "=&r"(t), [u] "=&r"(u)
                     : "m"(*(const int8_t(*)[])wa), "m"(*(const int8_t(*)[])wb), "m"(*(const int32_t(*)[])c)
                     : "cc");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
#else
    while (groups-- > 0) {
        int32_t lo, hi;
        edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa), &lo, &hi);
        wa += 4;
        acc[0] = __smlad(lo, c[0], acc[0]);
        acc[1] = __smlad(lo, c[2], acc[1]);
        acc[0] = __smlad(hi, c[1], acc[0]);
        acc[1] = __smlad(hi, c[3], acc[1]);
        edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wb), &lo, &hi);
        wb += 4;
        acc[2] = __smlad(lo, c[0], acc[2]);
        acc[3] = __smlad(lo, c[2], acc[3]);
        acc[2] = __smlad(hi, c[1], acc[2]);
        acc[3] = __smlad(hi, c[3], acc[3]);
        c += 4;
    }
#endif
}

/* The last partial group: rem (1..3) weights of one row, zero-padded like the columns. */
static inline int32_t edgec_tail_word(const int8_t *w, int32_t rem)
{
    uint32_t v = (uint8_t)w[0];
    if (rem > 1) {
        v |= (uint32_t)(uint8_t)w[1] << 8;
    }
    if (rem > 2) {
        v |= (uint32_t)(uint8_t)w[2] << 16;
    }
    return (int32_t)v;
}

/* acc {a0, a1, b0, b1} += the last partial group: rem (1..3) weights of rows a
 * and b (at wa, wb) against the zero-padded tail group of the two columns. */
EDGEC_FORCE_INLINE void edgec_gemm_2x2_tail(int32_t acc[4], const int8_t *wa, const int8_t *wb, const int32_t *tail,
                                            int32_t rem)
{
    int32_t lo, hi;
    edgec_s8x4_to_s16x2x2(edgec_tail_word(wa, rem), &lo, &hi);
    acc[0] = __smlad(lo, tail[0], acc[0]);
    acc[1] = __smlad(lo, tail[2], acc[1]);
    acc[0] = __smlad(hi, tail[1], acc[0]);
    acc[1] = __smlad(hi, tail[3], acc[1]);
    edgec_s8x4_to_s16x2x2(edgec_tail_word(wb, rem), &lo, &hi);
    acc[2] = __smlad(lo, tail[0], acc[2]);
    acc[3] = __smlad(lo, tail[2], acc[3]);
    acc[2] = __smlad(hi, tail[1], acc[2]);
    acc[3] = __smlad(hi, tail[3], acc[3]);
}

/* The 2x2 tiles over all channel pairs with the fast requantisation (edgec_rq_fast),
 * out_ch even; specialised on per-channel quantisation and on the clamp. */
EDGEC_FORCE_INLINE void edgec_gemm_fast(const int8_t *wa, const int32_t *cols, int32_t out_ch, int32_t col_len,
                                        const int32_t *bias, const edgec_nn_rq *rq, int8_t *out0, int8_t *out1,
                                        int per_channel, int full_range)
{
    const int32_t groups = col_len >> 2;
    const int32_t rem = col_len & 3;
    const int32_t *tail = cols + 4 * groups;
    const int32_t *mult = rq->mult;
    const int32_t *shift = rq->shift;
    const int32_t out_offset = rq->out_offset;
    const int32_t lo = rq->act_min, hi = rq->act_max;
    int32_t m0 = mult[0], m1 = m0, e0 = -shift[0], e1 = e0;
    int32_t k0 = edgec_rq_k(out_offset, e0), k1 = k0;
    int8_t *const end0 = out0 + out_ch;

    while (out0 < end0) {
        const int8_t *wb = wa + col_len;
        int32_t acc[4] = {0, 0, 0, 0};
        if (bias != NULL) {
            acc[0] = acc[1] = bias[0];
            acc[2] = acc[3] = bias[1];
            bias += 2;
        }
        edgec_gemm_2x2(acc, wa, wb, cols, groups);
        if (rem) {
            edgec_gemm_2x2_tail(acc, wa + 4 * groups, wb + 4 * groups, tail, rem);
        }
        wa = wb + col_len;
        if (per_channel) {
            m0 = mult[0];
            m1 = mult[1];
            e0 = -shift[0];
            e1 = -shift[1];
            k0 = edgec_rq_k(out_offset, e0);
            k1 = edgec_rq_k(out_offset, e1);
            mult += 2;
            shift += 2;
        }
        out0[0] = (int8_t)edgec_clamp_s8(edgec_rq_fast(acc[0], m0, k0, e0), lo, hi, full_range);
        out0[1] = (int8_t)edgec_clamp_s8(edgec_rq_fast(acc[2], m1, k1, e1), lo, hi, full_range);
        out1[0] = (int8_t)edgec_clamp_s8(edgec_rq_fast(acc[1], m0, k0, e0), lo, hi, full_range);
        out1[1] = (int8_t)edgec_clamp_s8(edgec_rq_fast(acc[3], m1, k1, e1), lo, hi, full_range);
        out0 += 2;
        out1 += 2;
    }
}

#if EDGEC_ARM_ASM
/*
 * The whole 2x2 tile loop in assembly for the common case (per-channel
 * quantisation, every channel pair fast, activation range all of int8, a
 * bias): per tile, ~60 instructions of set-up,
 * requantisation (5 per output: LSL, ADD, SMMLAR, ASR, SSAT) and stores
 * around the 15-instruction groups. The same arithmetic as edgec_gemm_fast.
 * Stack: 80 bytes.
 */
typedef struct {
    const int8_t *weights; /* 0: row pair 0 */
    const int32_t *bias;   /* 4 */
    const int32_t *mult;   /* 8 */
    const int32_t *shift;  /* 12 */
    int8_t *out0;          /* 16 */
    int8_t *out1;          /* 20 */
    int32_t col_len;       /* 24 */
    int32_t o2p1;          /* 28: 2 * out_offset + 1 (k = (o2p1 << e) >> 1) */
    const int32_t *cols;   /* 32 */
    int32_t groups;        /* 36: ceil(col_len / 4); a partial last group reads the next row's first
                            * weights against the zero padding of the columns */
    int32_t pairs;         /* 40: channel pairs, > 0 */
} edgec_gemm_job;

void edgec_nn_gemm_2x2_asm(const edgec_gemm_job *job);

#define EDGEC_GEMM_GROUP_ASM                                                                                           \
    "ldm    r12!, {r4, r5, r6, r7}\n\t"                                                                               \
    "ldr    r8, [r10], #4\n\t"                                                                                        \
    "sxtb16 r9, r8\n\t"                                                                                               \
    "sxtb16 r8, r8, ror #8\n\t"                                                                                       \
    "smlad  r0, r9, r4, r0\n\t"                                                                                       \
    "smlad  r1, r9, r6, r1\n\t"                                                                                       \
    "smlad  r0, r8, r5, r0\n\t"                                                                                       \
    "smlad  r1, r8, r7, r1\n\t"                                                                                       \
    "ldr    r8, [r11], #4\n\t"                                                                                        \
    "sxtb16 r9, r8\n\t"                                                                                               \
    "sxtb16 r8, r8, ror #8\n\t"                                                                                       \
    "smlad  r2, r9, r4, r2\n\t"                                                                                       \
    "smlad  r3, r9, r6, r3\n\t"                                                                                       \
    "smlad  r2, r8, r5, r2\n\t"                                                                                       \
    "smlad  r3, r8, r7, r3\n\t"

/* One output: r = ssat8((SMMLAR(2 acc, m, k + (2 acc >> 31))) >> e). */
#define EDGEC_RQ_ASM(r, acc, m, k, e)                                                                                  \
    "lsl    " r ", " acc ", #1\n\t"                                                                                   \
    "add    r11, " k ", " r ", asr #31\n\t"                                                                           \
    "smmlar " r ", " r ", " m ", r11\n\t"                                                                             \
    "asr    " r ", " r ", " e "\n\t"                                                                                  \
    "ssat   " r ", #8, " r "\n\t"

__asm__(EDGEC_ASM_FUNC("edgec_nn_gemm_2x2_asm")
        "push   {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub    sp, sp, #44\n\t"
        /* frame: 0 pairs left, 4 wa, 8 bias, 12 mult, 16 shift, 20 out0, 24 out1,
         * 28 col_len, 32 o2p1, 36 cols, 40 groups */
        "ldr    r1, [r0, #40]\n\t"
        "str    r1, [sp, #0]\n\t"
        "ldr    r1, [r0, #0]\n\t"
        "str    r1, [sp, #4]\n\t"
        "ldrd   r1, r2, [r0, #4]\n\t"
        "strd   r1, r2, [sp, #8]\n\t"
        "ldrd   r1, r2, [r0, #12]\n\t"
        "strd   r1, r2, [sp, #16]\n\t"
        "ldrd   r1, r2, [r0, #20]\n\t"
        "strd   r1, r2, [sp, #24]\n\t"
        "ldrd   r1, r2, [r0, #28]\n\t"
        "strd   r1, r2, [sp, #32]\n\t"
        "ldr    r1, [r0, #36]\n\t"
        "str    r1, [sp, #40]\n"
        "1:\n\t"
        "ldr    r12, [sp, #8]\n\t"
        "ldrd   r0, r2, [r12], #8\n\t"
        "str    r12, [sp, #8]\n\t"
        "mov    r1, r0\n\t"
        "mov    r3, r2\n\t"
        "ldr    r10, [sp, #4]\n\t"
        "ldr    r11, [sp, #28]\n\t"
        "add    r11, r10, r11\n\t"
        "ldr    r12, [sp, #36]\n\t"
        "ldr    lr, [sp, #40]\n\t"
        "tst    lr, #1\n\t"
        "beq    2f\n\t" EDGEC_GEMM_GROUP_ASM "2:\n\t"
        "tst    lr, #2\n\t"
        "beq    7f\n\t" EDGEC_GEMM_GROUP_ASM EDGEC_GEMM_GROUP_ASM "7:\n\t"
        "lsrs   lr, lr, #2\n\t"
        "beq    4f\n"
        "3:\n\t" EDGEC_GEMM_GROUP_ASM EDGEC_GEMM_GROUP_ASM EDGEC_GEMM_GROUP_ASM EDGEC_GEMM_GROUP_ASM "subs   lr, lr, #1\n\t"
        "bne    3b\n"
        "4:\n\t"
        "ldr    r10, [sp, #4]\n\t"
        "ldr    r11, [sp, #28]\n\t"
        "add    r10, r10, r11, lsl #1\n\t"
        "str    r10, [sp, #4]\n\t"
        "ldr    r12, [sp, #12]\n\t"
        "ldrd   r4, r5, [r12], #8\n\t"
        "str    r12, [sp, #12]\n\t"
        "ldr    r12, [sp, #16]\n\t"
        "ldrd   r6, r7, [r12], #8\n\t"
        "str    r12, [sp, #16]\n\t"
        "rsb    r6, r6, #0\n\t"
        "rsb    r7, r7, #0\n\t"
        "ldr    r8, [sp, #32]\n\t"
        "lsl    r9, r8, r6\n\t"
        "asr    r9, r9, #1\n\t"
        "lsl    r8, r8, r7\n\t"
        "asr    r8, r8, #1\n\t"
        EDGEC_RQ_ASM("r10", "r0", "r4", "r9", "r6")
        EDGEC_RQ_ASM("r0", "r1", "r4", "r9", "r6")
        EDGEC_RQ_ASM("r1", "r2", "r5", "r8", "r7")
        EDGEC_RQ_ASM("r2", "r3", "r5", "r8", "r7")
        "ldrd   r12, lr, [sp, #20]\n\t"
        "strb   r1, [r12, #1]\n\t"
        "strb   r10, [r12], #2\n\t"
        "strb   r2, [lr, #1]\n\t"
        "strb   r0, [lr], #2\n\t"
        "strd   r12, lr, [sp, #20]\n\t"
        "ldr    r12, [sp, #0]\n\t"
        "subs   r12, r12, #1\n\t"
        "str    r12, [sp, #0]\n\t"
        "bne    1b\n\t"
        "add    sp, sp, #44\n\t"
        "pop    {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_nn_gemm_2x2_asm, .-edgec_nn_gemm_2x2_asm\n");

/* Channel pair ch, ch + 1 can take the assembly path (per-channel fast requantisation). */
static inline int edgec_pair_fast(const edgec_nn_rq *rq, const int32_t *bias, int32_t ch)
{
    const int32_t lim = EDGEC_RQ_MAX_ACC / 2;
    for (int32_t i = ch; i < ch + 2; i++) {
        const int32_t e = -rq->shift[i];
        if (e < 1 || e > 23 || rq->mult[i] < 0 || bias[i] >= lim || bias[i] <= -lim) {
            return 0;
        }
    }
    return 1;
}
#endif

static inline uint32_t edgec_ch_class(const uint32_t *bits, int32_t ch)
{
    return (bits[ch >> 4] >> (2 * (ch & 15))) & 3u;
}

/* Whether channel ch can take edgec_rq_fast (the layer-wide acc bound is checked by the caller). */
static inline int edgec_ch_fast(const edgec_nn_rq *rq, const int32_t *bias, int32_t ch)
{
    const int32_t lim = EDGEC_RQ_MAX_ACC / 2;
    const int32_t e = -rq->shift[ch * rq->qstep];
    const int32_t b = bias != NULL ? bias[ch] : 0;
    return e >= 1 && e <= 23 && rq->mult[ch * rq->qstep] >= 0 && b < lim && b > -lim && rq->out_offset >= -128 &&
           rq->out_offset <= 127;
}

int32_t edgec_nn_dead_prepare(edgec_nn_rq *rq, const int8_t *weights, const int32_t *bias, int32_t out_ch,
                              int32_t col_len, uint32_t bits[EDGEC_NN_MAX_CLASSIFIED / 16])
{
    rq->ch_class = NULL;
#if defined(EDGEC_KERNELS_NO_DEAD_CHANNELS)
    /* (for measurements: every channel computed) */
    (void)weights;
    (void)bias;
    (void)bits;
    return 0;
#endif
    if (rq->fast || out_ch > EDGEC_NN_MAX_CLASSIFIED || col_len > (EDGEC_RQ_MAX_ACC / 2) / (128 * 255)) {
        return 0;
    }
    for (int32_t i = 0; i < (out_ch + 15) / 16; i++) {
        bits[i] = 0;
    }
    for (int32_t ch = 0; ch < out_ch; ch++) {
        uint32_t cls = EDGEC_CH_FAST;
        if (!edgec_ch_fast(rq, bias, ch)) {
            const int8_t *w = weights + ch * col_len;
            int32_t any = 0, i = 0;
            for (; i + 8 <= col_len && !any; i += 8) {
                any = edgec_read_s8x4(w + i) | edgec_read_s8x4(w + i + 4);
            }
            for (; i < col_len && !any; i++) {
                any = w[i];
            }
            cls = any ? EDGEC_CH_SLOW : EDGEC_CH_DEAD;
        }
        bits[ch >> 4] |= cls << (2 * (ch & 15));
    }
    rq->ch_class = bits;
    return 1;
}

void edgec_nn_dead_fill(const edgec_nn_rq *rq, const int32_t *bias, int32_t out_ch, int8_t *output,
                        int32_t n_pixels)
{
    if (rq->ch_class == NULL) {
        return;
    }
    for (int32_t ch = 0; ch < out_ch; ch++) {
        if (edgec_ch_class(rq->ch_class, ch) != EDGEC_CH_DEAD) {
            continue;
        }
        const int8_t y = edgec_nn_rq_one(rq, ch, bias != NULL ? bias[ch] : 0);
        int8_t *o = output + ch;
        for (int32_t p = 0; p < n_pixels; p++) {
            *o = y;
            o += out_ch;
        }
    }
}

/* Channels [ch0, ch1) (pairs, or a single odd last channel) without the assembly path. */
static EDGEC_NOINLINE void edgec_gemm_c(const int8_t *weights, const int32_t *cols, int32_t ch0, int32_t ch1, int32_t col_len,
                         const int32_t *bias, const edgec_nn_rq *rq, int8_t *out0, int8_t *out1)
{
    const int32_t groups = col_len >> 2;
    const int32_t rem = col_len & 3;
    const int32_t *tail = cols + 4 * groups;

    for (int32_t ch = ch0; ch < ch1; ch += 2) {
        /* An odd last channel runs as a pair with itself; its second copy is not stored. */
        const int32_t pair = ch + 1 < ch1;
        const int8_t *wa = weights + ch * col_len;
        const int8_t *wb = pair ? wa + col_len : wa;
        int32_t acc[4] = {0, 0, 0, 0};
        if (bias != NULL) {
            acc[0] = acc[1] = bias[ch];
            acc[2] = acc[3] = bias[ch + pair];
        }
        edgec_gemm_2x2(acc, wa, wb, cols, groups);
        if (rem) {
            edgec_gemm_2x2_tail(acc, wa + 4 * groups, wb + 4 * groups, tail, rem);
        }
        out0[ch] = edgec_nn_rq_one(rq, ch, acc[0]);
        out1[ch] = edgec_nn_rq_one(rq, ch, acc[1]);
        if (pair) {
            out0[ch + 1] = edgec_nn_rq_one(rq, ch + 1, acc[2]);
            out1[ch + 1] = edgec_nn_rq_one(rq, ch + 1, acc[3]);
        }
    }
}

#if EDGEC_ARM_ASM
/* Channel pairs [ch, end) in assembly. */
static EDGEC_NOINLINE void edgec_gemm_asm_run(const int8_t *weights, const int32_t *cols, int32_t ch, int32_t end,
                                              int32_t col_len, const int32_t *bias, const edgec_nn_rq *rq,
                                              int8_t *out0, int8_t *out1)
{
    edgec_gemm_job job = {weights + ch * col_len, bias + ch, rq->mult + ch, rq->shift + ch, out0 + ch, out1 + ch,
                          col_len, 2 * rq->out_offset + 1, cols, (col_len + 3) >> 2, (end - ch) >> 1};
    edgec_nn_gemm_2x2_asm(&job);
}
#endif

#if !EDGEC_ARM_ASM
/* The C version of the fast path (host builds). */
static EDGEC_NOINLINE void edgec_gemm_fast_c(const int8_t *weights, const int32_t *cols, int32_t out_ch,
                                             int32_t col_len, const int32_t *bias, const edgec_nn_rq *rq,
                                             int8_t *out0, int8_t *out1)
{
    if (rq->qstep) {
        if (rq->full_range) {
            edgec_gemm_fast(weights, cols, out_ch, col_len, bias, rq, out0, out1, 1, 1);
        } else {
            edgec_gemm_fast(weights, cols, out_ch, col_len, bias, rq, out0, out1, 1, 0);
        }
    } else {
        edgec_gemm_fast(weights, cols, out_ch, col_len, bias, rq, out0, out1, 0, rq->full_range);
    }
}
#endif

void edgec_nn_gemm_s8_s16(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                          const int32_t *bias, const edgec_nn_rq *rq, int8_t *out0, int8_t *out1)
{
#if EDGEC_ARM_ASM
    if (rq->qstep && rq->full_range && bias != NULL && col_len > 0) {
        /* Runs of channel pairs in assembly; pairs the fast requantisation cannot
         * take exactly (dead channels: zero multiplier, huge bias) in C. With
         * col_len % 4 != 0 the last pair is done in C, so no weight is read past the
         * end of the filter (3-channel first layers take this path for their border
         * pixels only). */
        const int32_t even = (col_len & 3) ? (out_ch - 1) & ~1 : out_ch & ~1;
        int32_t ch = 0;
        while (ch < even) {
            int32_t end = ch;
            if (rq->fast) {
                end = even;
            } else {
                while (end < even && edgec_pair_fast(rq, bias, end)) {
                    end += 2;
                }
            }
            if (end > ch) {
                edgec_gemm_asm_run(weights, cols, ch, end, col_len, bias, rq, out0, out1);
                ch = end;
            } else {
                edgec_gemm_c(weights, cols, ch, ch + 2, col_len, bias, rq, out0, out1);
                ch += 2;
            }
        }
        if (even < out_ch) {
            edgec_gemm_c(weights, cols, even, out_ch, col_len, bias, rq, out0, out1);
        }
        return;
    }
#endif
#if !EDGEC_ARM_ASM
    /* (On Arm, layers off the assembly path are rare: per-tensor or clamped
     * convolutions; the generic C tiles keep the stack short there.) */
    if (rq->fast && (out_ch & 1) == 0) {
        edgec_gemm_fast_c(weights, cols, out_ch, col_len, bias, rq, out0, out1);
        return;
    }
#endif
    edgec_gemm_c(weights, cols, 0, out_ch, col_len, bias, rq, out0, out1);
}

/*
 * Weight-stationary convolution: one pair of output channels at a time over all
 * its pixels. The pair's two weight rows are widened once (doubled, so the
 * accumulators come out as the 2 acc edgec_rq_fast starts from), the input
 * offset is folded into the bias (acc = bias + offset * sum(w) + sum(w * x)),
 * and the input is read straight from the tensor as int8 (SXTB16): no im2col,
 * and the pair's requantisation constants are derived once. Per group of 4
 * accumulation steps of 2 channels x 2 pixels: LDM of the four weight words,
 * two input words, four SXTB16, eight SMLAD (15 instructions).
 * Pointwise layers (stride 1: pixels are contiguous) and the interior pixels of
 * other convolutions (the window rows are kw * kc contiguous bytes) both run it.
 * Conditions (checked by the callers): activation range all of int8, the
 * channels' requantisation fast (edgec_rq_fast_ok), kw * kc % 4 == 0 or padded
 * weights (edgec_ws_widen_padded).
 */
typedef struct {
    const int32_t *w;     /* 0: widened weights, per group {a (w0, w2), a (w1, w3), b (w0, w2), b (w1, w3)} */
    const int8_t *in;     /* 4: window of the first pixel (updated) */
    int32_t in_step;      /* 8: second pixel of a pair from the first, minus 4 */
    int8_t *out;          /* 12: output of the first pixel, channel a (updated) */
    int32_t out_c;        /* 16: output pixel stride (0: both pixels are one) */
    int32_t pairs;        /* 20: pixel pairs per output row, > 0 */
    int32_t groups;       /* 24: groups of 4 weights per window row */
    int32_t b_off;        /* 28: channel b's output minus channel a's (1: adjacent channels) */
    int32_t bias2[2];     /* 32: 2 (bias + input_offset * sum(w)) */
    int32_t mult[2];      /* 40 */
    int32_t k[2];         /* 48 */
    int32_t e[2];         /* 56 */
    int32_t row_skip;     /* 64: input row stride - 4 * groups */
    int32_t rows;         /* 68: window rows */
    int32_t px_step;      /* 72: input advance per pixel pair */
    int32_t rows_left;    /* 76: (the assembly's counter) */
    int32_t orows;        /* 80: output rows, > 0 (updated) */
    int32_t in_orow_step; /* 84: input advance from the end of an output row to the next */
    int32_t out_orow_step; /* 88: output advance from the end of an output row to the next */
    int32_t pairs_left;   /* 92: (the assembly's counter) */
} edgec_ws_job;

#if EDGEC_ARM_ASM
void edgec_nn_ws_asm(edgec_ws_job *job);
void edgec_nn_pw_asm(edgec_ws_job *job); /* rows == 1, orows == 1 */

#define EDGEC_WS_GROUP_ASM                                                                                             \
    "ldm     r11!, {r4, r5, r6, r7}\n\t"                                                                              \
    "ldr     r8, [r10], #4\n\t"                                                                                       \
    "sxtb16  r9, r8\n\t"                                                                                              \
    "sxtb16  r8, r8, ror #8\n\t"                                                                                      \
    "smlad   r0, r4, r9, r0\n\t"                                                                                      \
    "smlad   r2, r6, r9, r2\n\t"                                                                                      \
    "smlad   r0, r5, r8, r0\n\t"                                                                                      \
    "smlad   r2, r7, r8, r2\n\t"                                                                                      \
    "ldr     r8, [r10, lr]\n\t"                                                                                       \
    "sxtb16  r9, r8\n\t"                                                                                              \
    "sxtb16  r8, r8, ror #8\n\t"                                                                                      \
    "smlad   r1, r4, r9, r1\n\t"                                                                                      \
    "smlad   r3, r6, r9, r3\n\t"                                                                                      \
    "smlad   r1, r5, r8, r1\n\t"                                                                                      \
    "smlad   r3, r7, r8, r3\n\t"

/* One output from a doubled accumulator: ssat8(SMMLAR(acc, m, k + (acc >> 31)) >> e). */
#define EDGEC_WS_RQ_ASM(acc, m, k, e)                                                                                  \
    "add     r11, " k ", " acc ", asr #31\n\t"                                                                        \
    "smmlar  " acc ", " acc ", " m ", r11\n\t"                                                                        \
    "asr     " acc ", " acc ", " e "\n\t"                                                                             \
    "ssat    " acc ", #8, " acc "\n\t"

/* The groups of one window row: r12 = groups on entry. */
#define EDGEC_WS_GROUPS_ASM                                                                                            \
    "tst     r12, #1\n\t"                                                                                             \
    "beq     2f\n\t" EDGEC_WS_GROUP_ASM "2:\n\t"                                                                      \
    "tst     r12, #2\n\t"                                                                                             \
    "beq     7f\n\t" EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM "7:\n\t"                                                   \
    "lsrs    r12, r12, #2\n\t"                                                                                        \
    "beq     4f\n"                                                                                                    \
    "3:\n\t" EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM                              \
    "subs    r12, r12, #1\n\t"                                                                                        \
    "bne     3b\n"                                                                                                    \
    "4:\n\t"

/* Requantize the tile and store it (r9 = job on exit); boff: channel b's offset
 * ("r4", loaded from the job, or "#1"). */
#define EDGEC_WS_STORE_ASM(boffload, boff)                                                                             \
    "ldrd    r4, r5, [r9, #40]\n\t"                                                                                   \
    "ldrd    r6, r7, [r9, #48]\n\t"                                                                                   \
    "ldrd    r8, r9, [r9, #56]\n\t"                                                                                   \
    EDGEC_WS_RQ_ASM("r0", "r4", "r6", "r8")                                                                           \
    EDGEC_WS_RQ_ASM("r1", "r4", "r6", "r8")                                                                           \
    EDGEC_WS_RQ_ASM("r2", "r5", "r7", "r9")                                                                           \
    EDGEC_WS_RQ_ASM("r3", "r5", "r7", "r9")                                                                           \
    "ldr     r9, [sp]\n\t"                                                                                            \
    "ldrd    r11, r12, [r9, #12]\n\t"                                                                                 \
    boffload                                                                                                          \
    "strb    r0, [r11]\n\t"                                                                                           \
    "strb    r2, [r11, " boff "]\n\t"                                                                                 \
    "add     r11, r11, r12\n\t"                                                                                       \
    "strb    r1, [r11]\n\t"                                                                                           \
    "strb    r3, [r11, " boff "]\n\t"                                                                                 \
    "add     r11, r11, r12\n\t"                                                                                       \
    "ldr     r10, [r9, #4]\n\t"                                                                                       \
    "ldr     r12, [r9, #72]\n\t"                                                                                      \
    "add     r10, r10, r12\n\t"

#define EDGEC_WS_FUNC_BEGIN(name, pre)                                                                                 \
    EDGEC_ASM_FUNC(name) pre                                                                                  \
    "push    {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                                          \
    "ldr     lr, [r0, #8]\n\t"                                                                                        \
    "ldr     r1, [r0, #20]\n\t"                                                                                       \
    "str     r1, [r0, #92]\n"                                                                                         \
    "1:\n\t" /* a tile: 2 channels x 2 pixels */                                                                      \
    "ldr     r12, [sp]\n\t"                                                                                           \
    "ldrd    r0, r2, [r12, #32]\n\t"                                                                                  \
    "mov     r1, r0\n\t"                                                                                              \
    "mov     r3, r2\n\t"                                                                                              \
    "ldrd    r11, r10, [r12, #0]\n\t"

/* Both work in the caller's job (whose address they keep at [sp]): stack 40
 * bytes (edgec_nn_ws_asm 56: its row loop keeps counters in the frame).
 * edgec_nn_ws_asm: any window rows and output rows; edgec_nn_pw_asm: one window
 * row and one output row (pointwise), without that bookkeeping. */
__asm__(EDGEC_WS_FUNC_BEGIN("edgec_nn_ws_asm",
                            /* [sp + 40]: groups % 4, groups / 4, row_skip, rows left */
                            "sub     sp, sp, #16\n\t"
                            "ldr     r1, [r0, #24]\n\t"
                            "and     r2, r1, #3\n\t"
                            "lsr     r1, r1, #2\n\t"
                            "strd    r2, r1, [sp, #0]\n\t"
                            "ldr     r1, [r0, #64]\n\t"
                            "str     r1, [sp, #8]\n\t")
        "ldr     r9, [r12, #68]\n\t"
        "str     r9, [sp, #52]\n"
        "5:\n\t" /* a window row */
        "ldr     r12, [sp, #40]\n\t"
        "cmp     r12, #0\n\t"
        "beq     8f\n\t"
        "tst     r12, #1\n\t"
        "beq     2f\n\t" EDGEC_WS_GROUP_ASM "2:\n\t"
        "tst     r12, #2\n\t"
        "beq     8f\n\t" EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM "8:\n\t"
        "ldr     r12, [sp, #44]\n\t"
        "cmp     r12, #0\n\t"
        "beq     4f\n"
        "3:\n\t" EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM EDGEC_WS_GROUP_ASM
        "subs    r12, r12, #1\n\t"
        "bne     3b\n"
        "4:\n\t"
        "ldr     r12, [sp, #48]\n\t"
        "add     r10, r10, r12\n\t"
        "ldr     r12, [sp, #52]\n\t"
        "subs    r12, r12, #1\n\t"
        "str     r12, [sp, #52]\n\t"
        "ldr     r9, [sp]\n\t"
        "bne     5b\n\t" EDGEC_WS_STORE_ASM("", "#1")
        "str     r10, [r9, #4]\n\t"
        "str     r11, [r9, #12]\n\t"
        "ldr     r12, [r9, #92]\n\t"
        "subs    r12, r12, #1\n\t"
        "str     r12, [r9, #92]\n\t"
        "bne     1b\n\t"
        /* end of an output row */
        "ldr     r12, [r9, #80]\n\t"
        "subs    r12, r12, #1\n\t"
        "beq     9f\n\t"
        "str     r12, [r9, #80]\n\t"
        "ldr     r12, [r9, #84]\n\t"
        "add     r10, r10, r12\n\t"
        "str     r10, [r9, #4]\n\t"
        "ldr     r12, [r9, #88]\n\t"
        "add     r11, r11, r12\n\t"
        "str     r11, [r9, #12]\n\t"
        "ldr     r12, [r9, #20]\n\t"
        "str     r12, [r9, #92]\n\t"
        "b       1b\n"
        "9:\n\t"
        "pop     {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "add     sp, sp, #16\n\t"
        "bx      lr\n\t"
        ".size edgec_nn_ws_asm, .-edgec_nn_ws_asm\n\t"
        EDGEC_WS_FUNC_BEGIN("edgec_nn_pw_asm", "")
        "ldr     r12, [r12, #24]\n\t" EDGEC_WS_GROUPS_ASM
        "ldr     r9, [sp]\n\t" EDGEC_WS_STORE_ASM("ldr     r4, [r9, #28]\n\t", "r4")
        "str     r10, [r9, #4]\n\t"
        "str     r11, [r9, #12]\n\t"
        "ldr     r12, [r9, #92]\n\t"
        "subs    r12, r12, #1\n\t"
        "str     r12, [r9, #92]\n\t"
        "bne     1b\n\t"
        "pop     {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_nn_pw_asm, .-edgec_nn_pw_asm\n");
#else
#define edgec_nn_pw_asm edgec_nn_ws_asm
/* The same arithmetic in C (host builds). */
static void edgec_nn_ws_asm(edgec_ws_job *job)
{
    const int8_t *px = job->in;
    int8_t *out = job->out;
    for (int32_t orow = 0; orow < job->orows; orow++) {
        for (int32_t p = 0; p < job->pairs; p++) {
            int32_t a0 = job->bias2[0], a1 = a0, b0 = job->bias2[1], b1 = b0;
            const int32_t *w = job->w;
            const int8_t *r = px;
            for (int32_t row = 0; row < job->rows; row++) {
                for (int32_t g = 0; g < job->groups; g++, w += 4, r += 4) {
                    const int32_t v0 = edgec_read_s8x4(r), v1 = edgec_read_s8x4(r + job->in_step + 4);
                    const int32_t x0l = __sxtb16(v0), x0h = edgec_sxtb16_ror8(v0);
                    const int32_t x1l = __sxtb16(v1), x1h = edgec_sxtb16_ror8(v1);
                    a0 = __smlad(w[0], x0l, __smlad(w[1], x0h, a0));
                    b0 = __smlad(w[2], x0l, __smlad(w[3], x0h, b0));
                    a1 = __smlad(w[0], x1l, __smlad(w[1], x1h, a1));
                    b1 = __smlad(w[2], x1l, __smlad(w[3], x1h, b1));
                }
                r += job->row_skip;
            }
            const int32_t acc[4] = {a0, b0, a1, b1};
            int8_t *o = out;
            for (int32_t i = 0; i < 4; i++) {
                const int32_t c = i & 1;
                const int32_t t = edgec_smmlar(acc[i], job->mult[c], job->k[c] + (acc[i] >> 31)) >> job->e[c];
                o[c ? job->b_off : 0] = (int8_t)__ssat(t, 8);
                if (i == 1) {
                    o += job->out_c;
                }
            }
            out += 2 * job->out_c;
            px += job->px_step;
        }
        px += job->in_orow_step;
        out += job->out_orow_step;
    }
}
#endif

/* Widen rows a, b (k % 4 == 0) into the job's weight layout, doubled; returns
 * their sums (for folding the input offset into the bias). */
static EDGEC_NOINLINE void edgec_pw_widen_pair(const int8_t *wa, const int8_t *wb, int32_t k, int32_t *dst,
                                               int32_t sums[2])
{
    int32_t sa = 0, sb = 0;
    const int32_t ones = 0x00010001;
    for (int32_t g = 0; g < k >> 2; g++, dst += 4) {
        int32_t lo, hi;
        edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa + 4 * g), &lo, &hi);
        sa = __smlad(lo, ones, __smlad(hi, ones, sa));
        dst[0] = __sadd16(lo, lo);
        dst[1] = __sadd16(hi, hi);
        edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wb + 4 * g), &lo, &hi);
        sb = __smlad(lo, ones, __smlad(hi, ones, sb));
        dst[2] = __sadd16(lo, lo);
        dst[3] = __sadd16(hi, hi);
    }
    sums[0] = sa;
    sums[1] = sb;
}

/* Channels a and a + 1 (rows of K at wa), window rows of row_len % 4 != 0
 * bytes, zero-padded to whole groups, widened like edgec_pw_widen_pair. */
static EDGEC_NOINLINE void edgec_ws_widen_padded(const int8_t *wa, int32_t K, int32_t kh, int32_t row_len,
                                                 int32_t *dst, int32_t sums[2])
{
    const int32_t ones = 0x00010001;
    sums[0] = sums[1] = 0;
    for (int32_t r = 0; r < kh; r++) {
        for (int32_t i = 0; i < row_len; i += 4) {
            for (int32_t ch = 0; ch < 2; ch++) {
                const int8_t *w = wa + ch * K + r * row_len + i;
                uint32_t v = 0;
                for (int32_t j = 0; j < 4 && i + j < row_len; j++) {
                    v |= (uint32_t)(uint8_t)w[j] << (8 * j);
                }
                int32_t lo, hi;
                edgec_s8x4_to_s16x2x2((int32_t)v, &lo, &hi);
                sums[ch] = __smlad(lo, ones, __smlad(hi, ones, sums[ch]));
                dst[2 * ch] = __sadd16(lo, lo);
                dst[2 * ch + 1] = __sadd16(hi, hi);
            }
            dst += 4;
        }
    }
}

/* The pair's job fields that depend on its channels a, b. */
static void edgec_ws_pair_params(edgec_ws_job *job, const edgec_nn_rq *rq, const int32_t *bias, int32_t input_offset,
                                 int32_t a, int32_t b, const int32_t sums[2])
{
    job->b_off = b - a;
    for (int32_t i = 0; i < 2; i++) {
        const int32_t c = i ? b : a;
        const int32_t e = -rq->shift[c * rq->qstep];
        const int32_t bv = bias == NULL ? 0 : bias[c];
        job->bias2[i] = (int32_t)((uint32_t)(bv + input_offset * sums[i]) << 1);
        job->mult[i] = rq->mult[c * rq->qstep];
        job->e[i] = e;
        job->k[i] = edgec_rq_k(rq->out_offset, e);
    }
}

/* The output channel of filter row ch (pruned layers skip the constant channels). */
static inline int32_t edgec_pw_out_ch(const edgec_nn_conv *cv, int32_t ch)
{
    return cv->out_map != NULL ? cv->out_map[ch] : ch;
}

/* One channel (exact, slow) over all pixels, for channels the fast path cannot take. */
static EDGEC_DSP_COLD void edgec_pw_channel_c(const edgec_nn_conv *cv, int32_t pixels, int32_t ch)
{
    const int32_t in_c = cv->input_dims->c, out_c = cv->output_dims->c;
    const int8_t *w = cv->filter + ch * in_c;
    int8_t *out = cv->output + edgec_pw_out_ch(cv, ch);
    for (int32_t p = 0; p < pixels; p++) {
        int32_t acc = cv->bias != NULL ? cv->bias[ch] : 0;
        acc += edgec_dot_s8_offset(cv->input + p * in_c, w, in_c, cv->params->input_offset);
        out[p * out_c] = edgec_nn_rq_one(&cv->rq, ch, acc);
    }
}

/* The next channel >= ch the pair loop computes (fast, or all channels without a
 * classification); channels of other classes are handled on the way. */
static int32_t edgec_pw_next(const edgec_nn_conv *cv, int32_t pixels, int32_t ch)
{
    const uint32_t *cls = cv->rq.ch_class;
    const int32_t n_ch = cv->filter_dims->n;
    for (; ch < n_ch && cls != NULL; ch++) {
        const uint32_t c = edgec_ch_class(cls, ch);
        if (c == EDGEC_CH_FAST) {
            break;
        }
        if (c == EDGEC_CH_SLOW) {
            edgec_pw_channel_c(cv, pixels, ch);
        }
        /* EDGEC_CH_DEAD: written by edgec_nn_dead_fill */
    }
    return ch;
}

/* Stride-1 pointwise over all pixels (batches are contiguous too). Channels are
 * paired in order among those computed: dead channels (pruned filters) drop out
 * of the pairing, so they cost nothing. Scratch: the pair's widened weights.
 * Filter row ch goes to output channel edgec_pw_out_ch(ch) of out_c (pruned
 * layers: fewer rows than output channels). Returns 0 (nothing done) when the
 * layer is for the GEMM path. */
static EDGEC_NOINLINE int edgec_nn_pw_s8(edgec_nn_conv *cv)
{
    const int32_t in_c = cv->input_dims->c, out_c = cv->output_dims->c, n_ch = cv->filter_dims->n;
    const int32_t pixels = cv->input_dims->n * cv->input_dims->h * cv->input_dims->w;
    int32_t *const wbuf = (int32_t *)cv->buffer;
    uint32_t ch_class[EDGEC_NN_MAX_CLASSIFIED / 16];
    /* (pruned layers have no all-zero rows left; dead_fill writes through no map) */
    if (cv->out_map == NULL) {
        edgec_nn_dead_prepare(&cv->rq, cv->filter, cv->bias, out_c, in_c, ch_class);
    }
    if (!cv->rq.fast && cv->rq.ch_class == NULL) {
        return 0;
    }
    edgec_ws_job job;
    int32_t a = edgec_pw_next(cv, pixels, 0);
    while (a < n_ch) {
        int32_t b = edgec_pw_next(cv, pixels, a + 1);
        const int32_t next = b < n_ch ? b + 1 : n_ch;
        if (b >= n_ch) {
            b = a; /* a last single channel, as a pair with itself */
        }
        int32_t sums[2];
        const int32_t out_a = edgec_pw_out_ch(cv, a);
        edgec_pw_widen_pair(cv->filter + a * in_c, cv->filter + b * in_c, in_c, wbuf, sums);
        edgec_ws_pair_params(&job, &cv->rq, cv->bias, cv->params->input_offset, a, b, sums);
        job.b_off = edgec_pw_out_ch(cv, b) - out_a;
        job.w = wbuf;
        job.groups = in_c >> 2;
        job.row_skip = 0;
        job.rows = 1;
        job.px_step = 2 * in_c;
        job.in_orow_step = 0;
        job.out_orow_step = 0;
        if (pixels >= 2) {
            job.in = cv->input;
            job.in_step = in_c - 4;
            job.out = cv->output + out_a;
            job.out_c = out_c;
            job.pairs = pixels >> 1;
            job.orows = 1;
            edgec_nn_pw_asm(&job);
        }
        if (pixels & 1) {
            /* the odd last pixel, as a pair with itself */
            job.in = cv->input + (pixels - 1) * in_c;
            job.in_step = -4;
            job.out = cv->output + (pixels - 1) * out_c + out_a;
            job.out_c = 0;
            job.pairs = 1;
            job.orows = 1;
            edgec_nn_pw_asm(&job);
        }
        a = edgec_pw_next(cv, pixels, next);
    }
    edgec_nn_dead_fill(&cv->rq, cv->bias, out_c, cv->output, pixels);
    cv->rq.ch_class = NULL;
    return 1;
}

/* The live channels of a pruned layer by direct loops (out of line: its
 * argument list stays out of the frame that calls edgec_nn_pw_s8). */
static EDGEC_NOINLINE void edgec_pw_pruned_direct(const edgec_nn_conv *cv, const edgec_quant_params *quant,
                                                  const edgec_channel_map *map)
{
    edgec_nn_conv_1x1_direct(cv->params, quant, cv->input_dims, cv->input, map->live, map->live_ch, cv->filter,
                             cv->bias, cv->output_dims, cv->output);
}

edgec_status edgec_nn_pw_pruned_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                              const edgec_channel_map *map, const edgec_dims *input_dims, const int8_t *input,
                              const edgec_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const edgec_dims *output_dims, int8_t *output)
{
    const int32_t in_c = input_dims->c;
    edgec_nn_conv cv = {params, input_dims, input, filter_dims, filter, bias, output_dims, output, buffer,
                        {0}, {0, output_dims->h, 0, output_dims->w}, map->live_ch};
    edgec_nn_rq_init(&cv.rq, quant, map->live, bias, in_c, params->output_offset, params->act_min, params->act_max);
    if ((in_c & 3) != 0 || in_c == 0 || !cv.rq.full_range || !edgec_nn_pw_s8(&cv)) {
        edgec_pw_pruned_direct(&cv, quant, map);
    }
    edgec_nn_fill_channels(map, output_dims, output);
    return EDGEC_OK;
}

/* The interior output pixels cv->range (an even number of columns), one channel
 * pair at a time; wbuf holds the pair's widened weights. */
static EDGEC_NOINLINE void edgec_ws_channels(const edgec_nn_conv *cv, int32_t *wbuf)
{
    const edgec_conv_params *params = cv->params;
    const edgec_dims *in_d = cv->input_dims, *out_d = cv->output_dims;
    const int32_t C = in_d->c, out_c = out_d->c;
    const int32_t kh = cv->filter_dims->h, row_len = cv->filter_dims->w * C;
    const int32_t K = kh * row_len;
    const int32_t sw = params->stride.w;
    const int32_t pairs = (cv->range[3] - cv->range[2]) >> 1;
    edgec_ws_job job;

    job.w = wbuf;
    job.groups = (row_len + 3) >> 2;
    job.row_skip = in_d->w * C - 4 * job.groups;
    job.rows = kh;
    job.px_step = 2 * sw * C;
    job.in_orow_step = params->stride.h * in_d->w * C - pairs * job.px_step;
    job.out_orow_step = (out_d->w - 2 * pairs) * out_c;
    for (int32_t ch = 0; ch + 1 < out_c; ch += 2) {
        int32_t sums[2];
        if (row_len & 3) {
            edgec_ws_widen_padded(cv->filter + ch * K, K, kh, row_len, wbuf, sums);
        } else {
            edgec_pw_widen_pair(cv->filter + ch * K, cv->filter + (ch + 1) * K, K, wbuf, sums);
        }
        edgec_ws_pair_params(&job, &cv->rq, cv->bias, params->input_offset, ch, ch + 1, sums);
        for (int32_t b = 0; b < in_d->n; b++) {
            const int8_t *in = cv->input + ((b * in_d->h + cv->range[0] * params->stride.h - params->padding.h) *
                                                in_d->w + cv->range[2] * sw - params->padding.w) * C;
            int8_t *out = cv->output + ((b * out_d->h + cv->range[0]) * out_d->w + cv->range[2]) * out_c + ch;
            job.in_step = sw * C - 4;
            job.out_c = out_c;
            if (kh > 1) {
                job.in = in;
                job.out = out;
                job.pairs = pairs;
                job.orows = cv->range[1] - cv->range[0];
                edgec_nn_ws_asm(&job);
                continue;
            }
            /* one window row (strided 1x1): the pointwise routine, one output row at a time */
            for (int32_t r = cv->range[0]; r < cv->range[1]; r++) {
                job.in = in;
                job.out = out;
                job.pairs = pairs;
                job.orows = 1;
                edgec_nn_pw_asm(&job);
                in += params->stride.h * in_d->w * C;
                out += out_d->w * out_c;
            }
        }
    }
}

void edgec_nn_conv_interior_s8(const edgec_nn_conv *cv)
{
    int32_t *wbuf = (int32_t *)cv->buffer;
    if ((cv->filter_dims->w * cv->input_dims->c) & 3) {
        /* A window row of kw * kc % 4 != 0 bytes (3-channel first layers) is read as
         * whole words, against weights zero-padded per row; the caller keeps those
         * windows off the last input row, so the reads stay in the tensor. The padded
         * weights need a little more than the scratch: they are kept in the last
         * output row(s), which are border pixels written afterwards by the im2col
         * path (the caller checks there is room, EDGEC_WS_TAIL_BYTES). */
        int8_t *end = cv->output + cv->output_dims->n * cv->output_dims->h * cv->output_dims->w *
                                       cv->output_dims->c;
        wbuf = (int32_t *)(((uintptr_t)end - 4 * EDGEC_WS_STACK_WORDS) & ~(uintptr_t)3);
    }
    edgec_ws_channels(cv, wbuf);
}

/* Pointwise by im2col (widening two pixels) + GEMM: strides, and the layers the
 * weight-stationary paths do not take. */
static EDGEC_DSP_COLD void edgec_conv_1x1_gemm(const edgec_nn_conv *cv)
{
    const edgec_dims *in_d = cv->input_dims, *out_d = cv->output_dims;
    const int32_t in_c = in_d->c, out_c = out_d->c;
    const int32_t out_pixels = out_d->h * out_d->w;
    int32_t *const cols = (int32_t *)cv->buffer;
    const int32_t offset = cv->params->input_offset;
    for (int32_t b = 0; b < in_d->n; b++) {
        const int8_t *in_b = cv->input + b * in_d->h * in_d->w * in_c;
        int8_t *out = cv->output + b * out_pixels * out_c;
        int32_t oy = 0, ox = 0;
        for (int32_t p = 0; p < out_pixels; p += 2) {
            const int8_t *px0 = in_b + (oy * cv->params->stride.h * in_d->w + ox * cv->params->stride.w) * in_c;
            if (++ox == out_d->w) {
                ox = 0;
                oy++;
            }
            edgec_nn_im2col_s8_to_s16x2(px0, cols, 0, in_c, offset);
            if (p + 1 < out_pixels) {
                const int8_t *px1 = in_b + (oy * cv->params->stride.h * in_d->w + ox * cv->params->stride.w) * in_c;
                if (++ox == out_d->w) {
                    ox = 0;
                    oy++;
                }
                edgec_nn_im2col_s8_to_s16x2(px1, cols, 1, in_c, offset);
                edgec_nn_gemm_s8_s16(cv->filter, cols, out_c, in_c, cv->bias, &cv->rq, out, out + out_c);
                out += 2 * out_c;
            } else {
                edgec_nn_im2col_s8_to_s16x2(px0, cols, 1, in_c, offset);
                edgec_nn_gemm_s8_s16(cv->filter, cols, out_c, in_c, cv->bias, &cv->rq, out, out);
            }
        }
    }
}

edgec_status edgec_nn_conv_1x1_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                  const edgec_dims *input_dims, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const edgec_dims *output_dims, int8_t *output)
{
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t strided = params->stride.h != 1 || params->stride.w != 1;
    const edgec_dims fd = {out_c, 1, 1, in_c};
    edgec_nn_conv cv = {params, input_dims, input, &fd, filter, bias, output_dims, output, buffer,
                        {0}, {0, output_dims->h, 0, output_dims->w}};
    edgec_nn_rq_init(&cv.rq, quant, out_c, bias, in_c, params->output_offset, params->act_min, params->act_max);

    if (strided && (in_c & 3) == 0 && in_c >= 8 && cv.rq.full_range && cv.rq.fast && (out_c & 1) == 0 &&
        (output_dims->w & 1) == 0) {
        /* strided (ResNet shortcuts): every pixel is "interior" for a 1x1 window */
        edgec_ws_channels(&cv, (int32_t *)buffer);
        return EDGEC_OK;
    }
    if (!strided && (in_c & 3) == 0 && in_c > 0 && cv.rq.full_range && edgec_nn_pw_s8(&cv)) {
        return EDGEC_OK;
    }
    edgec_conv_1x1_gemm(&cv);
    return EDGEC_OK;
}

#else
/* ISO C wants a non-empty translation unit; portable builds need none of the above. */
typedef int edgec_nn_mat_mult_s8_unused;
#endif /* EDGEC_USE_DSP */
