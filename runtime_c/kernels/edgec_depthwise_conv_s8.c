/*
 * Depthwise int8 convolution, bit-exact with TFLite Micro's
 * DepthwiseConvPerChannel.
 *
 * DSP path for 3x3, depth multiplier 1, dilation 1 (any stride, padding <= 1),
 * the depthwise layers of MobileNets and DS-CNNs: four channels at a time,
 * channel group outermost. Two taps of one channel share an SMLAD: the input
 * words of taps A and B (four channels each) are re-paired with PKHBT/PKHTB and
 * widened with the input offset (SXTAB16) into (A_c, B_c) halfword pairs,
 * against weights paired the same way and doubled, so the accumulators come out
 * as the 2 acc the fast requantisation starts from. Taps are paired along the
 * window rows, (y, 0) with (y, 1), and down its last column, which lets two
 * vertically adjacent output pixels share their input pairs
 * (edgec_dw3x3_two_asm). Border pixels: a window row or column of padding is
 * left out where the kernels can skip it (EDGEC_DW_TWO_LINES, EDGEC_DW_BOTTOM);
 * otherwise the window is moved inside the image, with weights moved the other
 * way and zeros where a tap fell outside (edgec_dw_pack). Either way the
 * padding taps contribute nothing, as in TFLite (x + input_offset = 0 there).
 * Other shapes, groups whose requantisation is not fast (none in the MLPerf
 * models) and the channels past the last group of four: direct loops, four
 * channels in parallel with SMLABB/SMLATT.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

static edgec_status edgec_dw_generic(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                     const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                     int8_t *output, int32_t c_begin);

#if EDGEC_USE_DSP
/*
 * The group packed for one window placement, in the order the assembly reads
 * it: the doubled bias and the requantisation constants
 * (edgec_dw_group_prepare), the weights (edgec_dw_pack) as doubled int16 pairs
 * (tap A, tap B) per channel. w[y][x]: tap (y, x) of the moved window.
 *
 * one: a single pixel (edgec_dw3x3_one_asm), 136 bytes: rows 0 and 1, the last
 *   column's rows 0-1, then row 2 (not packed nor computed when it is padding:
 *   EDGEC_DW_TWO_LINES).
 * two: two vertically adjacent pixels p0, p1 (edgec_dw3x3_two_asm): the 4x3
 *   block of input rows 0..3 holds p0's window in rows 0..2 and p1's in rows
 *   1..3. Row pairs (y, 0)-(y, 1) of the block serve both pixels (p0 against
 *   h[y], p1 against h[y - 1]); the last column goes in two vertical pairs,
 *   rows 0-1 and rows 2-3, with weights v0 = (w[0][2], w[1][2]),
 *   v1 = (w[2][2], 0) for p0 and u0 = (0, w[0][2]), u1 = (w[1][2], w[2][2])
 *   for p1. Two halves of two channels each (c0, c1 then c2, c3), 88 bytes each.
 */
typedef union {
    struct {
        int32_t bias[4];
        int32_t h[2][4]; /* row y: per channel (w[y][0], w[y][1]) */
        int32_t v0[4];   /* per channel (w[0][2], w[1][2]) */
        int32_t h2[4];   /* row 2 */
        int32_t t8[2];   /* tap (2, 2): (w[c0], w[c2]), (w[c1], w[c3]) */
        int32_t rq[4][3];
    } one;
    struct {
        int32_t bias[2];
        int32_t h[3][2];
        int32_t v1[2], u1[2], v0[2], u0[2];
        int32_t rq[2][3];
    } two[2];
} edgec_dw_packed;

/* A run of rows x n output pixels (pairs of rows for edgec_dw3x3_two_asm) of one group. */
typedef struct {
    const int8_t *p;           /* 0: window (block) top-left of the first pixel, channel c */
    int8_t *out;               /* 4 */
    int32_t n;                 /* 8: pixels per row, > 0 */
    int32_t step;              /* 12: input advance per pixel */
    int32_t rs;                /* 16: input row stride */
    int32_t cs;                /* 20: input column stride = output pixel stride (channels) */
    int32_t offset2;           /* 24 */
    const edgec_dw_packed *w;  /* 28 */
    int32_t rows;              /* 32: rows (pairs of rows) of n pixels, > 0 */
    int32_t p_row_step;        /* 36: input advance from the end of a row to the next */
    int32_t out_row_step;      /* 40: output advance from the end of a row to the next */
    int32_t ors;               /* 44: output row stride (p1 of a pair) */
    int32_t edges;             /* 48: EDGEC_DW_* */
} edgec_dw_job;

/* The windows' third column (edgec_dw3x3_two_asm) or third row (edgec_dw3x3_one_asm)
 * is padding: not read, its weights not packed. */
#define EDGEC_DW_TWO_LINES 1
/* edgec_dw3x3_two_asm: p1 is on the bottom border, the block's row 3 is padding:
 * not read (the last column's rows 2-3 pair takes a padding word for row 3). */
#define EDGEC_DW_BOTTOM 2

/*
 * C twins of the assembly. The input words xa, xb of taps A, B (four channels
 * each) re-paired as PKHBT / PKHTB do: half 0 = bytes (A_c0, A_c1, B_c0, B_c1),
 * half 1 the same of channels c2, c3.
 */
EDGEC_FORCE_INLINE int32_t edgec_dw_pkh_half(int32_t xa, int32_t xb, int32_t hf)
{
    return hf ? edgec_pkhtb16(xa, xb) : edgec_pkhbt16(xa, xb);
}

/* A half widened with the input offset (SXTAB16: bytes 0, 2 then 1, 3) into the
 * (A, B) pairs of its two channels, against their weight pairs wa, wb. */
#define EDGEC_DW_MAC2(half, wa, wb, acc_a, acc_b)                                                                      \
    do {                                                                                                               \
        acc_a = __smlad(__sxtab16(offset2, half), (wa), acc_a);                                                        \
        acc_b = __smlad(edgec_sxtab16_ror8(offset2, half), (wb), acc_b);                                               \
    } while (0)

/* Taps A, B (at a, b) of the four channels against the weight pairs w[0..3]. */
#define EDGEC_DW_MAC4(a, b, w)                                                                                         \
    do {                                                                                                               \
        const int32_t xa_ = edgec_read_s8x4(a), xb_ = edgec_read_s8x4(b);                                             \
        EDGEC_DW_MAC2(edgec_dw_pkh_half(xa_, xb_, 0), (w)[0], (w)[1], a0, a1);                                        \
        EDGEC_DW_MAC2(edgec_dw_pkh_half(xa_, xb_, 1), (w)[2], (w)[3], a2, a3);                                        \
    } while (0)

/* edgec_dw3x3_one_asm's arithmetic: the accumulators of one pixel (window at p). */
EDGEC_FORCE_INLINE void edgec_dw_one_px(const edgec_dw_packed *w, const int8_t *p, int32_t rs, int32_t cs,
                                        int32_t offset2, int two_lines, int32_t acc[4])
{
    int32_t a0 = w->one.bias[0], a1 = w->one.bias[1], a2 = w->one.bias[2], a3 = w->one.bias[3];
    EDGEC_DW_MAC4(p, p + cs, w->one.h[0]);
    EDGEC_DW_MAC4(p + rs, p + rs + cs, w->one.h[1]);
    EDGEC_DW_MAC4(p + 2 * cs, p + rs + 2 * cs, w->one.v0);
    if (!two_lines) {
        EDGEC_DW_MAC4(p + 2 * rs, p + 2 * rs + cs, w->one.h2);
        const int32_t x = edgec_read_s8x4(p + 2 * rs + 2 * cs);
        const int32_t x02 = __sxtab16(offset2, x), x13 = edgec_sxtab16_ror8(offset2, x);
        a0 = __smlabb(x02, w->one.t8[0], a0);
        a2 = __smlatt(x02, w->one.t8[0], a2);
        a1 = __smlabb(x13, w->one.t8[1], a1);
        a3 = __smlatt(x13, w->one.t8[1], a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* edgec_rq_fast of a doubled accumulator, saturated to int8. */
EDGEC_FORCE_INLINE int8_t edgec_dw_rq2(int32_t acc2, const int32_t rq[3])
{
    return (int8_t)__ssat(edgec_smmlar(acc2, rq[0], rq[1] + (acc2 >> 31)) >> rq[2], 8);
}

#if !EDGEC_ARM_ASM
/* C twin of edgec_dw3x3_two_asm (host builds): pairs of rows x n pixels. */
static EDGEC_NOINLINE void edgec_dw3x3_two_asm(const edgec_dw_job *job)
{
    const int32_t rs = job->rs, cs = job->cs, offset2 = job->offset2;
    const int bottom = (job->edges & EDGEC_DW_BOTTOM) != 0, two_lines = job->edges & EDGEC_DW_TWO_LINES;
    /* the padding word: x + input_offset = 0 */
    const int32_t pad = (int32_t)(0x01010101u * (uint8_t)(-(int16_t)offset2));
    const int8_t *p = job->p;
    int8_t *o = job->out;
    for (int32_t r = 0; r < job->rows; r++, p += job->p_row_step, o += job->out_row_step) {
        for (int32_t i = 0; i < job->n; i++, p += job->step, o += cs) {
            for (int32_t hf = 0; hf < 2; hf++) {
                const int32_t *b = job->w->two[hf].bias, *v1 = job->w->two[hf].v1, *u1 = job->w->two[hf].u1;
                const int32_t *v0 = job->w->two[hf].v0, *u0 = job->w->two[hf].u0;
                int32_t a0 = b[0], a1 = b[1], b0 = b[0], b1 = b[1]; /* p0, p1 x channels a, b */
                int32_t x;
                for (int32_t y = 0; y < 4 - bottom; y++) {
                    x = edgec_dw_pkh_half(edgec_read_s8x4(p + y * rs), edgec_read_s8x4(p + y * rs + cs), hf);
                    if (y < 3) {
                        EDGEC_DW_MAC2(x, job->w->two[hf].h[y][0], job->w->two[hf].h[y][1], a0, a1);
                    }
                    if (y > 0) {
                        EDGEC_DW_MAC2(x, job->w->two[hf].h[y - 1][0], job->w->two[hf].h[y - 1][1], b0, b1);
                    }
                }
                if (!two_lines) {
                    x = edgec_dw_pkh_half(edgec_read_s8x4(p + 2 * rs + 2 * cs),
                                          bottom ? pad : edgec_read_s8x4(p + 3 * rs + 2 * cs), hf);
                    EDGEC_DW_MAC2(x, v1[0], v1[1], a0, a1);
                    EDGEC_DW_MAC2(x, u1[0], u1[1], b0, b1);
                    x = edgec_dw_pkh_half(edgec_read_s8x4(p + 2 * cs), edgec_read_s8x4(p + rs + 2 * cs), hf);
                    EDGEC_DW_MAC2(x, v0[0], v0[1], a0, a1);
                    EDGEC_DW_MAC2(x, u0[0], u0[1], b0, b1);
                }
                const int32_t(*rq)[3] = job->w->two[hf].rq;
                o[2 * hf] = edgec_dw_rq2(a0, rq[0]);
                o[2 * hf + 1] = edgec_dw_rq2(a1, rq[1]);
                o[job->ors + 2 * hf] = edgec_dw_rq2(b0, rq[0]);
                o[job->ors + 2 * hf + 1] = edgec_dw_rq2(b1, rq[1]);
            }
        }
    }
}
#endif

#if !EDGEC_ARM_ASM
/* C twin of edgec_dw3x3_one_asm (host builds): rows x n pixels, one at a time. */
static EDGEC_NOINLINE void edgec_dw3x3_one_asm(const edgec_dw_job *job)
{
    const int8_t *p = job->p;
    int8_t *o = job->out;
    for (int32_t r = 0; r < job->rows; r++, p += job->p_row_step, o += job->out_row_step) {
        for (int32_t i = 0; i < job->n; i++, p += job->step, o += job->cs) {
            int32_t acc[4];
            edgec_dw_one_px(job->w, p, job->rs, job->cs, job->offset2, job->edges & EDGEC_DW_TWO_LINES, acc);
            for (int32_t j = 0; j < 4; j++) {
                o[j] = edgec_dw_rq2(acc[j], job->w->one.rq[j]);
            }
        }
    }
}
#endif

#if EDGEC_ARM_ASM
/*
 * The assembly kernels, fast requantisation and the full int8 range only
 * (the same arithmetic as edgec_dw_one_px / edgec_dw3x3_two_asm's C twin):
 *
 * edgec_dw3x3_one_asm: rows x n pixels, one at a time: 101 instructions per
 *   pixel of four channels (36 MACs): 9 input loads, four tap pairs of 12
 *   (PKHBT/PKHTB, 4 SXTAB16, 2 LDRD, 4 SMLAD) and tap (2, 2) by SMLABB/SMLATT,
 *   then 5 per output (LDM of multiplier, k, e; ADD, SMMLAR, ASR, SSAT) and the
 *   stores. The packed weights are walked with post-increments. On the top and
 *   bottom border rows (EDGEC_DW_TWO_LINES) row 2 is skipped: 79. Stack: 68 bytes.
 * edgec_dw3x3_two_asm: rows x n pairs of vertically adjacent pixels (stride 1
 *   along y): 178 instructions per pair (89 per pixel of four channels). The
 *   pair's 4x3 input block is loaded once: the first half (channels c0, c1)
 *   re-pairs each row's words with PKHBT and keeps the PKHTB half (c2, c3) on
 *   the stack for the second; a row pair serves p0 and p1 with one weight load.
 *   Padding lines are not computed (edges): a border column's last column
 *   (EDGEC_DW_TWO_LINES, 138 per pair), the padding row below p1 when p1 is on
 *   the bottom border (EDGEC_DW_BOTTOM, 169). Stack: 100 bytes.
 */
void edgec_dw3x3_one_asm(const edgec_dw_job *job);
void edgec_dw3x3_two_asm(const edgec_dw_job *job);

/* edgec_dw3x3_one_asm: taps A (r10), B (r11) of four channels against the next
 * four weight pairs (r8 walks the packing). r0-r3 accumulators, r7 offset2. */
#define EDGEC_DW_ONE_PAIR                                                                                              \
    "pkhbt   r12, r10, r11, lsl #16\n\t"                                                                              \
    "pkhtb   r10, r11, r10, asr #16\n\t"                                                                              \
    "sxtab16 r11, r7, r12\n\t"                                                                                        \
    "sxtab16 r12, r7, r12, ror #8\n\t"                                                                                \
    "ldrd    r9, lr, [r8], #8\n\t"                                                                                    \
    "smlad   r0, r11, r9, r0\n\t"                                                                                     \
    "smlad   r1, r12, lr, r1\n\t"                                                                                     \
    "sxtab16 r11, r7, r10\n\t"                                                                                        \
    "sxtab16 r10, r7, r10, ror #8\n\t"                                                                                \
    "ldrd    r9, lr, [r8], #8\n\t"                                                                                    \
    "smlad   r2, r11, r9, r2\n\t"                                                                                     \
    "smlad   r3, r10, lr, r3\n\t"

/* One output of a doubled accumulator: ssat8(SMMLAR(acc, m, k + (acc >> 31)) >> e),
 * m, k, e from the next three words of the packing (k's register, r10, is reused). */
#define EDGEC_DW_ONE_RQ(acc)                                                                                           \
    "ldm     r8!, {r9, r10, r11}\n\t"                                                                                 \
    "add     r10, r10, " acc ", asr #31\n\t"                                                                          \
    "smmlar  " acc ", " acc ", r9, r10\n\t"                                                                           \
    "asr     " acc ", " acc ", r11\n\t"                                                                               \
    "ssat    " acc ", #8, " acc "\n\t"

__asm__(EDGEC_ASM_FUNC("edgec_dw3x3_one_asm")
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub     sp, sp, #32\n\t"
        /* frame: 0 out, 4 step, 8 end of the output row, 12 out_row_step,
         * 16 p_row_step, 20 rows left, 24 n * cs, 28 where to go after the last
         * column: row 2 (2:), or past it with EDGEC_DW_TWO_LINES (6:) */
        "ldr     r1, [r0, #48]\n\t"
        "adr     r2, 2f\n\t"
        "adr     r3, 6f\n\t"
        "cmp     r1, #0\n\t"
        "it      ne\n\t"
        "movne   r2, r3\n\t"
        "orr     r2, r2, #1\n\t"
        "str     r2, [sp, #28]\n\t"
        "ldrd    r4, r1, [r0, #0]\n\t"
        "ldrd    r3, r2, [r0, #8]\n\t"
        "ldrd    r5, r6, [r0, #16]\n\t"
        "ldrd    r7, r8, [r0, #24]\n\t"
        "mul     r3, r3, r6\n\t"
        "strd    r1, r2, [sp, #0]\n\t"
        "add     r1, r1, r3\n\t"
        "str     r1, [sp, #8]\n\t"
        "str     r3, [sp, #24]\n\t"
        "ldrd    r1, r2, [r0, #32]\n\t"
        "ldr     r3, [r0, #40]\n\t"
        "str     r3, [sp, #12]\n\t"
        "strd    r2, r1, [sp, #16]\n"
        "1:\n\t"
        "ldm     r8!, {r0, r1, r2, r3}\n\t"
        "ldr     r10, [r4]\n\t"
        "ldr     r11, [r4, r6]\n\t" EDGEC_DW_ONE_PAIR
        "add     r4, r4, r5\n\t"
        "ldr     r10, [r4]\n\t"
        "ldr     r11, [r4, r6]\n\t" EDGEC_DW_ONE_PAIR
        /* taps (0, 2), (1, 2), walking back to the window's first row */
        "ldr     r11, [r4, r6, lsl #1]\n\t"
        "sub     r4, r4, r5\n\t"
        "ldr     r10, [r4, r6, lsl #1]\n\t" EDGEC_DW_ONE_PAIR
        "ldr     pc, [sp, #28]\n"
        "2:\n\t"
        /* row 2 */
        "add     r4, r4, r5, lsl #1\n\t"
        "ldr     r10, [r4]\n\t"
        "ldr     r11, [r4, r6]\n\t" EDGEC_DW_ONE_PAIR
        "ldr     r10, [r4, r6, lsl #1]\n\t"
        "sub     r4, r4, r5, lsl #1\n\t"
        "sxtab16 r11, r7, r10\n\t"
        "sxtab16 r10, r7, r10, ror #8\n\t"
        "ldrd    r12, lr, [r8], #8\n\t"
        "smlabb  r0, r11, r12, r0\n\t"
        "smlatt  r2, r11, r12, r2\n\t"
        "smlabb  r1, r10, lr, r1\n\t"
        "smlatt  r3, r10, lr, r3\n"
        "3:\n\t"
        EDGEC_DW_ONE_RQ("r0") EDGEC_DW_ONE_RQ("r1") EDGEC_DW_ONE_RQ("r2") EDGEC_DW_ONE_RQ("r3")
        "sub     r8, r8, #136\n\t"
        "ldm     sp, {r9, r10, lr}\n\t"
        "strb    r0, [r9]\n\t"
        "strb    r1, [r9, #1]\n\t"
        "strb    r2, [r9, #2]\n\t"
        "strb    r3, [r9, #3]\n\t"
        "add     r9, r9, r6\n\t"
        "str     r9, [sp]\n\t"
        "add     r4, r4, r10\n\t"
        "cmp     r9, lr\n\t"
        "bne     1b\n\t"
        /* next row */
        "ldrd    r10, r11, [sp, #16]\n\t"
        "subs    r11, r11, #1\n\t"
        "beq     9f\n\t"
        "str     r11, [sp, #20]\n\t"
        "add     r4, r4, r10\n\t"
        "ldr     r10, [sp, #12]\n\t"
        "add     r9, r9, r10\n\t"
        "ldr     r10, [sp, #24]\n\t"
        "add     r10, r9, r10\n\t"
        "str     r9, [sp, #0]\n\t"
        "str     r10, [sp, #8]\n\t"
        "b       1b\n"
        "9:\n\t"
        "add     sp, sp, #32\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n"
        /* EDGEC_DW_TWO_LINES: past row 2's weights (h2, t8) */
        "6:\n\t"
        "add     r8, r8, #24\n\t"
        "b       3b\n\t"
        ".size edgec_dw3x3_one_asm, .-edgec_dw3x3_one_asm\n");

/* edgec_dw3x3_two_asm, first half: taps A (r9), B (r10) of four channels; the
 * (c2, c3) halves go to the stack slot for the second half, the (c0, c1) halves
 * are widened into r10 (c0) and r9 (c1). */
#define EDGEC_DW_TWO_SPLIT(slot)                                                                                       \
    "pkhtb   lr, r10, r9, asr #16\n\t"                                                                                \
    "str     lr, [sp, #" slot "]\n\t"                                                                                 \
    "pkhbt   r9, r9, r10, lsl #16\n\t"                                                                                \
    "sxtab16 r10, r7, r9\n\t"                                                                                         \
    "sxtab16 r9, r7, r9, ror #8\n\t"

/* Second half: the stashed (c2, c3) pairs, two at a time (r9, then lr),
 * widened into r10 (c2) and r9 (c3). */
#define EDGEC_DW_TWO_STASHED(slot)                                                                                     \
    "ldrd    r9, lr, [sp, #" slot "]\n\t"                                                                             \
    "sxtab16 r10, r7, r9\n\t"                                                                                         \
    "sxtab16 r9, r7, r9, ror #8\n\t"
#define EDGEC_DW_TWO_STASHED_LR                                                                                        \
    "sxtab16 r10, r7, lr\n\t"                                                                                         \
    "sxtab16 r9, r7, lr, ror #8\n\t"

/* The widened pair against weights r11, r12: p0 (r0, r1) or p1 (r2, r3). */
#define EDGEC_DW_TWO_P0                                                                                                \
    "smlad   r0, r10, r11, r0\n\t"                                                                                    \
    "smlad   r1, r9, r12, r1\n\t"
#define EDGEC_DW_TWO_P1                                                                                                \
    "smlad   r2, r10, r11, r2\n\t"                                                                                    \
    "smlad   r3, r9, r12, r3\n\t"
#define EDGEC_DW_TWO_W "ldrd    r11, r12, [r8], #8\n\t"

/* The half's bias (channels a, b) into p0's and p1's accumulators. */
#define EDGEC_DW_TWO_BIAS                                                                                              \
    "ldrd    r0, r1, [r8]\n\t"                                                                                       \
    "ldrd    r2, r3, [r8], #8\n\t"

/* Rows 0..2 of the block, given how each row's pair is obtained (ROWn). */
#define EDGEC_DW_TWO_ROWS(ROW0, ROW1, ROW2)                                                                            \
    ROW0 EDGEC_DW_TWO_W EDGEC_DW_TWO_P0                                                                               \
    ROW1 EDGEC_DW_TWO_P1 EDGEC_DW_TWO_W EDGEC_DW_TWO_P0                                                               \
    ROW2 EDGEC_DW_TWO_P1 EDGEC_DW_TWO_W EDGEC_DW_TWO_P0

/* The last column's rows 2-3 pair (given as r9, r10) then rows 0-1 (COL01). */
#define EDGEC_DW_TWO_COL2(COL23, COL01)                                                                                \
    COL23 EDGEC_DW_TWO_W EDGEC_DW_TWO_P0 EDGEC_DW_TWO_W EDGEC_DW_TWO_P1                                               \
    COL01 EDGEC_DW_TWO_W EDGEC_DW_TWO_P0 EDGEC_DW_TWO_W EDGEC_DW_TWO_P1

/* First half, block row 3 (only p1 against h[2], still in r11, r12). */
#define EDGEC_DW_TWO_ROW3                                                                                              \
    "add     r4, r4, r5\n\t"                                                                                          \
    "ldr     r9, [r4]\n\t"                                                                                            \
    "ldr     r10, [r4, r6]\n\t" EDGEC_DW_TWO_SPLIT("44") EDGEC_DW_TWO_P1

#define EDGEC_DW_TWO_RQ(acc)                                                                                           \
    "add     r12, r10, " acc ", asr #31\n\t"                                                                          \
    "smmlar  " acc ", " acc ", r9, r12\n\t"                                                                           \
    "asr     " acc ", " acc ", r11\n\t"                                                                               \
    "ssat    " acc ", #8, " acc "\n\t"

/* Requantize the half's four outputs and store them at out + c (p0) and
 * out + ors + c (p1); r9 = out afterwards. */
#define EDGEC_DW_TWO_STORE(c, c1)                                                                                      \
    "ldm     r8!, {r9, r10, r11}\n\t" EDGEC_DW_TWO_RQ("r0") EDGEC_DW_TWO_RQ("r2")                                     \
    "ldm     r8!, {r9, r10, r11}\n\t" EDGEC_DW_TWO_RQ("r1") EDGEC_DW_TWO_RQ("r3")                                     \
    "ldrd    r9, r10, [sp, #0]\n\t"                                                                                   \
    "strb    r0, [r9, #" c "]\n\t"                                                                                    \
    "strb    r1, [r9, #" c1 "]\n\t"                                                                                   \
    "add     r10, r9, r10\n\t"                                                                                        \
    "strb    r2, [r10, #" c "]\n\t"                                                                                   \
    "strb    r3, [r10, #" c1 "]\n\t"

__asm__(EDGEC_ASM_FUNC("edgec_dw3x3_two_asm")
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub     sp, sp, #64\n\t"
        /* frame: 0 out, 4 ors, 8 step, 12 end of the output row, 16 out_row_step,
         * 20 p_row_step, 24 row pairs left, 28 n * cs, 32..52 the (c2, c3) pairs,
         * 56, 60 where each half goes after its row 2 (the table at 20:, by edges) */
        "ldr     r1, [r0, #48]\n\t"
        "adr     r3, 20f\n\t"
        "ldr     r2, [r3, r1, lsl #3]\n\t"
        "add     r3, r3, #4\n\t"
        "ldr     r3, [r3, r1, lsl #3]\n\t"
        "strd    r2, r3, [sp, #56]\n\t"
        "ldrd    r4, r1, [r0, #0]\n\t"
        "ldrd    r3, r2, [r0, #8]\n\t"
        "ldrd    r5, r6, [r0, #16]\n\t"
        "ldrd    r7, r8, [r0, #24]\n\t"
        "mul     r3, r3, r6\n\t"
        "str     r1, [sp, #0]\n\t"
        "str     r2, [sp, #8]\n\t"
        "add     r1, r1, r3\n\t"
        "str     r1, [sp, #12]\n\t"
        "str     r3, [sp, #28]\n\t"
        "ldrd    r1, r2, [r0, #32]\n\t"
        "strd    r2, r1, [sp, #20]\n\t"
        "ldrd    r1, r2, [r0, #40]\n\t"
        "str     r2, [sp, #4]\n\t"
        "str     r1, [sp, #16]\n"
        "1:\n\t"
        /* channels c0, c1: the block's rows walking down, its last column walking back up */
        EDGEC_DW_TWO_BIAS EDGEC_DW_TWO_ROWS("ldr     r9, [r4]\n\t"
                                            "ldr     r10, [r4, r6]\n\t" EDGEC_DW_TWO_SPLIT("32"),
                                            "add     r4, r4, r5\n\t"
                                            "ldr     r9, [r4]\n\t"
                                            "ldr     r10, [r4, r6]\n\t" EDGEC_DW_TWO_SPLIT("36"),
                                            "add     r4, r4, r5\n\t"
                                            "ldr     r9, [r4]\n\t"
                                            "ldr     r10, [r4, r6]\n\t" EDGEC_DW_TWO_SPLIT("40"))
        "ldr     pc, [sp, #56]\n"
        "2:\n\t" EDGEC_DW_TWO_ROW3
        "ldr     r10, [r4, r6, lsl #1]\n\t"
        "sub     r4, r4, r5\n\t"
        "ldr     r9, [r4, r6, lsl #1]\n"
        "3:\n\t"
        EDGEC_DW_TWO_COL2(EDGEC_DW_TWO_SPLIT("48"),
                          "sub     r4, r4, r5\n\t"
                          "ldr     r10, [r4, r6, lsl #1]\n\t"
                          "sub     r4, r4, r5\n\t"
                          "ldr     r9, [r4, r6, lsl #1]\n\t" EDGEC_DW_TWO_SPLIT("52"))
        "4:\n\t"
        EDGEC_DW_TWO_STORE("0", "1")
        /* channels c2, c3 from the stack */
        EDGEC_DW_TWO_BIAS EDGEC_DW_TWO_ROWS(EDGEC_DW_TWO_STASHED("32"), EDGEC_DW_TWO_STASHED_LR,
                                            EDGEC_DW_TWO_STASHED("40"))
        "ldr     pc, [sp, #60]\n"
        "5:\n\t" EDGEC_DW_TWO_STASHED_LR EDGEC_DW_TWO_P1
        "6:\n\t"
        EDGEC_DW_TWO_COL2(EDGEC_DW_TWO_STASHED("48"), EDGEC_DW_TWO_STASHED_LR)
        "7:\n\t"
        EDGEC_DW_TWO_STORE("2", "3")
        "sub     r8, r8, #176\n\t"
        "add     r9, r9, r6\n\t"
        "str     r9, [sp, #0]\n\t"
        "ldrd    r10, lr, [sp, #8]\n\t"
        "add     r4, r4, r10\n\t"
        "cmp     r9, lr\n\t"
        "bne     1b\n\t"
        /* next pair of rows */
        "ldrd    r10, r11, [sp, #20]\n\t"
        "subs    r11, r11, #1\n\t"
        "beq     9f\n\t"
        "str     r11, [sp, #24]\n\t"
        "add     r4, r4, r10\n\t"
        "ldr     r10, [sp, #16]\n\t"
        "add     r9, r9, r10\n\t"
        "ldr     r10, [sp, #28]\n\t"
        "add     r10, r9, r10\n\t"
        "str     r9, [sp, #0]\n\t"
        "str     r10, [sp, #12]\n\t"
        "b       1b\n"
        "9:\n\t"
        "add     sp, sp, #64\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n"
        /* Where the halves go after row 2 (they skip v1, u1, v0, u0 when the last
         * column is padding; the first half ends back at the block's row 0):
         * EDGEC_DW_TWO_LINES, first half */
        "10:\n\t" EDGEC_DW_TWO_ROW3
        "sub     r4, r4, r5, lsl #1\n\t"
        "sub     r4, r4, r5\n\t"
        "add     r8, r8, #32\n\t"
        "b       4b\n"
        /* EDGEC_DW_BOTTOM, first half: row 2's last column paired with a padding word (x + offset = 0) */
        "11:\n\t"
        "ldr     r9, [r4, r6, lsl #1]\n\t"
        "sxth    r10, r7\n\t"
        "rsb     r10, r10, #0\n\t"
        "uxtb    r10, r10\n\t"
        "orr     r10, r10, r10, lsl #8\n\t"
        "orr     r10, r10, r10, lsl #16\n\t"
        "b       3b\n"
        /* EDGEC_DW_TWO_LINES and EDGEC_DW_BOTTOM, first half */
        "12:\n\t"
        "sub     r4, r4, r5, lsl #1\n\t"
        "add     r8, r8, #32\n\t"
        "b       4b\n"
        /* EDGEC_DW_TWO_LINES, second half: row 3, then on as below */
        "13:\n\t" EDGEC_DW_TWO_STASHED_LR EDGEC_DW_TWO_P1
        /* EDGEC_DW_TWO_LINES and EDGEC_DW_BOTTOM, second half */
        "14:\n\t"
        "add     r8, r8, #32\n\t"
        "b       7b\n\t"
        ".p2align 2\n"
        "20:\n\t" /* by edges: the first half's way, the second half's */
        ".word   2b + 1, 5b + 1\n\t"
        ".word   10b + 1, 13b + 1\n\t"
        ".word   11b + 1, 6b + 1\n\t"
        ".word   12b + 1, 14b + 1\n\t"
        ".size edgec_dw3x3_two_asm, .-edgec_dw3x3_two_asm\n");
#endif

/* Four channels' weight pairs (A_c, B_c) from the words of taps A and B,
 * doubled: channels c0, c1 at lo[0], lo[1], channels c2, c3 at hi[0], hi[1]. */
static inline void edgec_dw_wpairs(int32_t a, int32_t b, int32_t *lo, int32_t *hi)
{
    const int32_t l = edgec_pkhbt16(a, b), h = edgec_pkhtb16(a, b);
    const int32_t s0 = __sxtb16(l), s1 = edgec_sxtb16_ror8(l), s2 = __sxtb16(h), s3 = edgec_sxtb16_ror8(h);
    lo[0] = __sadd16(s0, s0);
    lo[1] = __sadd16(s1, s1);
    hi[0] = __sadd16(s2, s2);
    hi[1] = __sadd16(s3, s3);
}

/*
 * The group's weights (filter at its first channel) for a window moved by
 * (sy, sx), |sy|, |sx| <= 1: tap (y, x) is the filter's tap (y + sy, x + sx), or
 * zero outside the 3x3 window. Layout `one`, or `two` when two != 0. A border
 * row of `one` (sy != 0) or column of `two` (sx != 0) is for EDGEC_DW_TWO_LINES:
 * the window's two rows / columns inside the image only, not moved on the
 * bottom / right border.
 */
static EDGEC_NOINLINE void edgec_dw_pack(edgec_dw_packed *pk, const int8_t *filter, int32_t channels, int32_t sy,
                                         int32_t sx, int two)
{
    /* rows and columns read clamped into the filter; the ones outside are zeroed after */
    const int8_t *f0 = filter + 3 * EDGEC_MAX(sy, 0) * channels;
    const int8_t *f1 = filter + 3 * (1 + sy) * channels;
    const int8_t *f2 = filter + 3 * EDGEC_MIN(2 + sy, 2) * channels;
    const int32_t x0 = EDGEC_MAX(sx, 0) * channels, x1 = (1 + sx) * channels, x2 = EDGEC_MIN(2 + sx, 2) * channels;
    int32_t t00 = edgec_read_s8x4(f0 + x0), t01 = edgec_read_s8x4(f0 + x1), t02 = edgec_read_s8x4(f0 + x2);
    int32_t t10 = edgec_read_s8x4(f1 + x0), t11 = edgec_read_s8x4(f1 + x1), t12 = edgec_read_s8x4(f1 + x2);
    int32_t t20 = edgec_read_s8x4(f2 + x0), t21 = edgec_read_s8x4(f2 + x1), t22 = edgec_read_s8x4(f2 + x2);
    if (sy < 0) {
        t00 = t01 = t02 = 0;
    } else if (sy > 0) {
        t20 = t21 = t22 = 0;
    }
    if (sx < 0) {
        t00 = t10 = t20 = 0;
    } else if (sx > 0) {
        t02 = t12 = t22 = 0;
    }
    if (!two) {
        if (sy < 0) {
            /* the bottom border: the window's rows 0 and 1 are the filter's 0 and 1 */
            t00 = t10, t01 = t11, t02 = t12;
            t10 = t20, t11 = t21, t12 = t22;
        }
        edgec_dw_wpairs(t00, t01, &pk->one.h[0][0], &pk->one.h[0][2]);
        edgec_dw_wpairs(t10, t11, &pk->one.h[1][0], &pk->one.h[1][2]);
        edgec_dw_wpairs(t02, t12, &pk->one.v0[0], &pk->one.v0[2]);
        if (sy == 0) {
            const int32_t w02 = __sxtb16(t22), w13 = edgec_sxtb16_ror8(t22);
            edgec_dw_wpairs(t20, t21, &pk->one.h2[0], &pk->one.h2[2]);
            pk->one.t8[0] = __sadd16(w02, w02);
            pk->one.t8[1] = __sadd16(w13, w13);
        }
        return;
    }
    if (sx < 0) {
        /* the right border: the window's columns 0 and 1 are the filter's 0 and 1 */
        t00 = t01, t01 = t02;
        t10 = t11, t11 = t12;
        t20 = t21, t21 = t22;
    }
    edgec_dw_wpairs(t00, t01, pk->two[0].h[0], pk->two[1].h[0]);
    edgec_dw_wpairs(t10, t11, pk->two[0].h[1], pk->two[1].h[1]);
    edgec_dw_wpairs(t20, t21, pk->two[0].h[2], pk->two[1].h[2]);
    if (sx == 0) {
        /* the last column: v0 = (w[0][2], w[1][2]), v1 = (w[2][2], 0) for p0,
         * u0 = (0, w[0][2]), u1 = (w[1][2], w[2][2]) for p1 */
        edgec_dw_wpairs(t02, t12, pk->two[0].v0, pk->two[1].v0);
        edgec_dw_wpairs(t22, 0, pk->two[0].v1, pk->two[1].v1);
        for (int32_t hf = 0; hf < 2; hf++) {
            for (int32_t j = 0; j < 2; j++) {
                const uint32_t v0 = (uint32_t)pk->two[hf].v0[j];
                pk->two[hf].u1[j] = (int32_t)((v0 >> 16) | ((uint32_t)pk->two[hf].v1[j] << 16));
                pk->two[hf].u0[j] = (int32_t)(v0 << 16);
            }
        }
    }
}

/* The channels [0, end) the 3x3 path takes: whole groups of four, up to the
 * first one whose requantisation is not fast (edgec_rq_fast and the full int8
 * range apply to every channel of the MLPerf layers). */
static int32_t edgec_dw_fast_end(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                 const int32_t *bias, int32_t channels)
{
    const int32_t qs = quant->per_channel ? 1 : 0;
    const int32_t o = params->output_offset;
    if (params->act_min > -128 || params->act_max < 127 || o < -128 || o > 127) {
        return 0;
    }
    for (int32_t c = 0; c < (channels & ~3); c++) {
        const int32_t b = bias != NULL ? bias[c] : 0;
        const int32_t e = -quant->shift[c * qs];
        if (e < 1 || e > 23 || quant->multiplier[c * qs] < 0 || b >= EDGEC_RQ_MAX_ACC / 2 ||
            b <= -EDGEC_RQ_MAX_ACC / 2) {
            return c & ~3;
        }
    }
    return channels & ~3;
}

/* The group's doubled bias and requantisation constants (channels c..c+3), layout `one`. */
static EDGEC_NOINLINE void edgec_dw_group_prepare(edgec_dw_packed *pk, const int32_t *bias,
                                                  const edgec_quant_params *quant, int32_t c, int32_t out_offset)
{
    const int32_t qs = quant->per_channel ? 1 : 0;
    const int32_t *mult = quant->multiplier + c * qs, *shift = quant->shift + c * qs;
    for (int32_t i = 0; i < 4; i++) {
        const int32_t e = -shift[i * qs];
        pk->one.bias[i] = bias != NULL ? 2 * bias[c + i] : 0;
        pk->one.rq[i][0] = mult[i * qs];
        pk->one.rq[i][1] = edgec_rq_k(out_offset, e);
        pk->one.rq[i][2] = e;
    }
}

/* The constants of layout `one` moved to their places in layout `two`. */
static EDGEC_NOINLINE void edgec_dw_one_to_two(edgec_dw_packed *pk)
{
    int32_t b[4], rq[4][3];
    memcpy(b, pk->one.bias, sizeof b);
    memcpy(rq, pk->one.rq, sizeof rq);
    for (int32_t i = 0; i < 4; i++) {
        pk->two[i >> 1].bias[i & 1] = b[i];
        memcpy(pk->two[i >> 1].rq[i & 1], rq[i], sizeof rq[i]);
    }
}

/* How far a window starting at i (3 taps) must move to lie inside [0, n). */
static inline int32_t edgec_dw_shift(int32_t i, int32_t n)
{
    return i < 0 ? -i : (i + 3 > n ? n - 3 - i : 0);
}

/* Channel groups [0, c_end) (edgec_dw_fast_end; 9 arguments like its caller,
 * which tail-calls it). The output is cut into row blocks (a border row alone,
 * the interior rows together, or with pairs the interior and bottom rows)
 * times column blocks the same way; each block runs with the group packed for
 * its window shift (edgec_dw_shift). */
static EDGEC_NOINLINE edgec_status edgec_dw3x3_dsp(const edgec_dw_conv_params *params,
                                                    const edgec_quant_params *quant, const edgec_dims *input_dims,
                                                    const int8_t *input, int32_t c_end, const int8_t *filter,
                                                    const int32_t *bias, const edgec_dims *output_dims,
                                                    int8_t *output)
{
    edgec_dw_packed pk;
    edgec_dw_job job;
    const int32_t sh = params->stride.h, sw = params->stride.w;
    /* Interior output range [oy0, oy1) x [ox0, ox1): the whole 3x3 window inside the image. */
    const int32_t oy0 = EDGEC_MIN((params->padding.h + sh - 1) / sh, output_dims->h);
    const int32_t ox0 = EDGEC_MIN((params->padding.w + sw - 1) / sw, output_dims->w);
    const int32_t oy1 =
        EDGEC_MIN(EDGEC_MAX((input_dims->h - 3 + params->padding.h) / sh + 1, oy0), output_dims->h);
    const int32_t ox1 =
        EDGEC_MIN(EDGEC_MAX((input_dims->w - 3 + params->padding.w) / sw + 1, ox0), output_dims->w);
    /* Pairs of rows (stride 1 along y) from the first interior row to the last
     * row, the bottom border row as p1 of the last pair (EDGEC_DW_BOTTOM); with
     * an odd number of rows the last pair overlaps the one before. */
    const int pairs = sh == 1 && output_dims->h - oy0 >= 2;
    job.cs = input_dims->c;
    job.rs = input_dims->w * job.cs;
    job.offset2 = edgec_dup_s16(params->input_offset);
    job.w = &pk;
    job.step = sw * job.cs;
    job.ors = output_dims->w * job.cs;

    for (int32_t c = 0; c < c_end; c += 4) {
        /* the blocks of single pixels first, then those of pairs: one layout change per group */
        edgec_dw_group_prepare(&pk, bias, quant, c, params->output_offset);
        for (int two = 0; two <= pairs; two++) {
            if (two) {
                edgec_dw_one_to_two(&pk);
            }
            for (int32_t ry = 0; ry < input_dims->n * output_dims->h;) {
                const int32_t r = ry % output_dims->h; /* (ry: the row of all batches' rows) */
                const int in_pairs = pairs && r >= oy0;
                const int32_t nry = in_pairs ? output_dims->h - r : (r == oy0 && oy1 > oy0) ? oy1 - oy0 : 1;
                const int32_t iy = r * sh - params->padding.h;
                const int32_t sy = edgec_dw_shift(iy, input_dims->h);
                /* (EDGEC_DW_TWO_LINES on the bottom border: the window not moved) */
                const int32_t y0 = ry / output_dims->h * input_dims->h + iy + sy + (sy < 0);
                const int8_t *in_row = input + y0 * job.rs + c;
                int8_t *out_row = output + ry * job.ors + c;
                ry += nry;
                if (in_pairs != two) {
                    continue;
                }
                for (int32_t rx = 0; rx < output_dims->w;) {
                    const int32_t nrx = (rx == ox0 && ox1 > ox0) ? ox1 - ox0 : 1;
                    const int32_t ix = rx * sw - params->padding.w;
                    const int32_t sx = edgec_dw_shift(ix, input_dims->w);
                    edgec_dw_pack(&pk, filter + c, job.cs, sy, sx, two);
                    job.edges = (two ? sx != 0 : sy != 0) ? EDGEC_DW_TWO_LINES : 0;
                    job.p = in_row + (ix + sx + (two && sx < 0)) * job.cs;
                    job.out = out_row + rx * job.cs;
                    job.n = nrx;
                    rx += nrx;
                    if (!two) {
                        job.rows = nry;
                        job.p_row_step = sh * job.rs - nrx * job.step;
                        job.out_row_step = job.ors - nrx * job.cs;
                        edgec_dw3x3_one_asm(&job);
                        continue;
                    }
                    const int32_t bottom = oy1 < output_dims->h ? EDGEC_DW_BOTTOM : 0;
                    job.rows = (nry >> 1) - (bottom && !(nry & 1));
                    job.p_row_step = 2 * job.rs - nrx * job.step;
                    job.out_row_step = 2 * job.ors - nrx * job.cs;
                    if (job.rows > 0) {
                        edgec_dw3x3_two_asm(&job);
                    }
                    if ((nry & 1) || bottom) {
                        job.p += (nry - 2) * job.rs;
                        job.out += (nry - 2) * job.ors;
                        job.rows = 1;
                        job.edges |= bottom;
                        edgec_dw3x3_two_asm(&job);
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
#endif /* EDGEC_USE_DSP */

/* Output channels [c, c_end) of one output pixel, depth multiplier 1, taps
 * [ky0, ky1) x [kx0, kx1). in_px points at the input pixel of tap (0, 0)
 * (possibly outside the image: only valid taps are dereferenced). */
/* Kept out of line: inlined into the pixel loop it needs > 256 bytes of stack. */
static EDGEC_NOINLINE void edgec_dw_pixel_dm1(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                               int32_t c_begin, int32_t channels,
                               int32_t in_row_stride, const int8_t *in_px, const int8_t *filter, int32_t kw,
                               int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, const int32_t *bias, int8_t *out)
{
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    int32_t c = c_begin;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                int32_t x02, x13, w02, w13;
                edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(in_row + kx * dil_w * channels), offset2, &x02, &x13);
                edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w_row + kx * channels), &w02, &w13);
                acc0 = __smlabb(x02, w02, acc0);
                acc2 = __smlatt(x02, w02, acc2);
                acc1 = __smlabb(x13, w13, acc1);
                acc3 = __smlatt(x13, w13, acc3);
            }
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                acc += (int32_t)w_row[kx * channels] * ((int32_t)in_row[kx * dil_w * channels] + in_offset);
            }
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}

/* 3x3, depth multiplier 1, dilation 1, all nine taps inside the image. */
static EDGEC_DSP_COLD void edgec_dw_pixel_3x3_inner(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     int32_t c_begin, int32_t channels, int32_t in_row_stride, const int8_t *in_px,
                                     const int8_t *filter, const int32_t *bias, int8_t *out)
{
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t cs = channels;
    const int32_t rs = in_row_stride;
    int32_t c = c_begin;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        for (int32_t ky = 0; ky < 3; ky++) {
            int32_t x02, x13, w02, w13;
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + 2 * cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + 2 * cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            ip += rs;
            wp += 3 * cs;
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = 0; ky < 3; ky++) {
            acc += (int32_t)wp[0] * ((int32_t)ip[0] + in_offset);
            acc += (int32_t)wp[cs] * ((int32_t)ip[cs] + in_offset);
            acc += (int32_t)wp[2 * cs] * ((int32_t)ip[2 * cs] + in_offset);
            ip += rs;
            wp += 3 * cs;
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}


edgec_status edgec_depthwise_conv_s8(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                     const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                     int8_t *output)
{
    const int32_t dm = params->depth_multiplier;
    const int32_t out_c = output_dims->c;
    if (dm <= 0 || out_c != input_dims->c * dm || filter_dims->c != out_c || input_dims->n != output_dims->n ||
        params->stride.h <= 0 || params->stride.w <= 0 || params->dilation.h <= 0 || params->dilation.w <= 0) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    /* 3x3, depth multiplier 1, dilation 1, padding <= 1 (the MobileNet / DS-CNN layers) */
    if (filter_dims->h == 3 && filter_dims->w == 3 && dm == 1 && params->dilation.h == 1 &&
        params->dilation.w == 1 && out_c >= 4 && input_dims->h >= 3 && input_dims->w >= 3 &&
        params->padding.h <= 1 && params->padding.w <= 1 &&
        (output_dims->h - 1) * params->stride.h - params->padding.h + 3 <= input_dims->h + 1 &&
        (output_dims->w - 1) * params->stride.w - params->padding.w + 3 <= input_dims->w + 1) {
        const int32_t end = edgec_dw_fast_end(params, quant, bias, out_c);
        if (end < out_c) {
            edgec_dw_generic(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output, end);
        }
        /* a tail call: this frame does not add to the stack */
        return edgec_dw3x3_dsp(params, quant, input_dims, input, end, filter, bias, output_dims, output);
    }
#endif
    return edgec_dw_generic(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output, 0);
}

/* Any shape: direct loops, the window clipped to the image once per output pixel. */
static EDGEC_NOINLINE edgec_status edgec_dw_generic(const edgec_dw_conv_params *params,
                                                    const edgec_quant_params *quant, const edgec_dims *input_dims,
                                                    const int8_t *input, const edgec_dims *filter_dims,
                                                    const int8_t *filter, const int32_t *bias,
                                                    const edgec_dims *output_dims, int8_t *output, int32_t c_begin)
{
    const int32_t dm = params->depth_multiplier;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_row_stride = input_dims->w * in_c;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int is_3x3 = kh == 3 && kw == 3 && dm == 1 && dil_h == 1 && dil_w == 1;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * input_dims->h * in_row_stride;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t in_y0 = oy * params->stride.h - params->padding.h;
            int32_t ky0 = 0, ky1 = kh;
            while (ky0 < kh && in_y0 + ky0 * dil_h < 0) {
                ky0++;
            }
            while (ky1 > ky0 && in_y0 + (ky1 - 1) * dil_h >= input_dims->h) {
                ky1--;
            }
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int32_t in_x0 = ox * params->stride.w - params->padding.w;
                int32_t kx0 = 0, kx1 = kw;
                while (kx0 < kw && in_x0 + kx0 * dil_w < 0) {
                    kx0++;
                }
                while (kx1 > kx0 && in_x0 + (kx1 - 1) * dil_w >= input_dims->w) {
                    kx1--;
                }
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                /* The first in-image tap (no pointer is formed outside the tensor). */
                const int8_t *in_px = (ky0 < ky1 && kx0 < kx1)
                                          ? in_b + (in_y0 + ky0 * dil_h) * in_row_stride + (in_x0 + kx0 * dil_w) * in_c
                                          : in_b;
                if (dm == 1) {
                    if (is_3x3 && ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                        edgec_dw_pixel_3x3_inner(params, quant, c_begin, out_c, in_row_stride, in_px, filter, bias, out);
                    } else {
                        /* Rebase so tap (ky0, kx0) is at in_px and the filter starts there too. */
                        edgec_dw_pixel_dm1(params, quant, c_begin, out_c, in_row_stride, in_px,
                                           filter + (ky0 * kw + kx0) * out_c, kw, 0, ky1 - ky0, 0, kx1 - kx0, bias,
                                           out);
                    }
                    continue;
                }
                /* Depth multiplier > 1: output channel oc reads input channel oc / dm. */
                for (int32_t ic = 0; ic < in_c; ic++) {
                    for (int32_t m = 0; m < dm; m++) {
                        const int32_t oc = ic * dm + m;
                        int32_t acc = bias != NULL ? bias[oc] : 0;
                        for (int32_t ky = ky0; ky < ky1; ky++) {
                            const int8_t *in_row = in_b + (in_y0 + ky * dil_h) * in_row_stride + ic;
                            const int8_t *w_row = filter + ky * kw * out_c + oc;
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                acc += (int32_t)w_row[kx * out_c] *
                                       ((int32_t)in_row[(in_x0 + kx * dil_w) * in_c] + params->input_offset);
                            }
                        }
                        out[oc] = edgec_requantize_clamp(acc, quant->multiplier[oc * qstep], quant->shift[oc * qstep],
                                                         params->output_offset, params->act_min, params->act_max);
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
