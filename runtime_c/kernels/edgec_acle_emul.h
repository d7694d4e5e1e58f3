/*
 * Portable C versions of the ACLE DSP intrinsics the kernels use, so the DSP
 * code path can be compiled and tested on the host (define EDGEC_EMULATE_DSP).
 * Never used in firmware builds. Semantics from the Arm ARM (ARMv7E-M):
 * SXTB16 sign-extends bytes 0 and 2 into two halfwords; SXTAB16 adds them to
 * the halfwords of its first operand (modulo 2^16), SADD16 adds halfwords
 * (modulo 2^16, GE flags not modelled); SMLAD/SMLABB/SMLATT are
 * 16x16 multiplies accumulated modulo 2^32 (the Q flag is not modelled).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef EDGEC_ACLE_EMUL_H
#define EDGEC_ACLE_EMUL_H

#include <stdint.h>

static inline int32_t edgec_emul_lo16(uint32_t x)
{
    return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu);
}

static inline int32_t edgec_emul_hi16(uint32_t x)
{
    return (int32_t)(int16_t)(uint16_t)(x >> 16);
}

static inline uint32_t edgec_emul_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16);
}

/* Same types as arm_acle.h: int8x4_t and int16x2_t are int32_t there. */
static inline int32_t __sxtb16(int32_t v)
{
    const uint32_t x = (uint32_t)v;
    return (int32_t)edgec_emul_pack16((int8_t)(uint8_t)(x & 0xFFu), (int8_t)(uint8_t)((x >> 16) & 0xFFu));
}

static inline int32_t __sxtab16(int32_t va, int32_t v)
{
    const uint32_t a = (uint32_t)va;
    const uint32_t x = (uint32_t)v;
    return (int32_t)edgec_emul_pack16(edgec_emul_lo16(a) + (int8_t)(uint8_t)(x & 0xFFu),
                                      edgec_emul_hi16(a) + (int8_t)(uint8_t)((x >> 16) & 0xFFu));
}

static inline int32_t __smlad(int32_t a, int32_t b, int32_t acc)
{
    const uint32_t p0 = (uint32_t)(edgec_emul_lo16((uint32_t)a) * edgec_emul_lo16((uint32_t)b));
    const uint32_t p1 = (uint32_t)(edgec_emul_hi16((uint32_t)a) * edgec_emul_hi16((uint32_t)b));
    return (int32_t)((uint32_t)acc + p0 + p1);
}

static inline int32_t __sadd16(int32_t a, int32_t b)
{
    return (int32_t)edgec_emul_pack16(edgec_emul_lo16((uint32_t)a) + edgec_emul_lo16((uint32_t)b),
                                      edgec_emul_hi16((uint32_t)a) + edgec_emul_hi16((uint32_t)b));
}

static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(edgec_emul_lo16((uint32_t)a) * edgec_emul_lo16((uint32_t)b)));
}

static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(edgec_emul_hi16((uint32_t)a) * edgec_emul_hi16((uint32_t)b)));
}

static inline int32_t __ssat_emul(int32_t x, int32_t bits)
{
    const int32_t max = (int32_t)((1u << (bits - 1)) - 1u);
    const int32_t min = -max - 1;
    return x > max ? max : (x < min ? min : x);
}
#define __ssat(x, bits) __ssat_emul((x), (bits))

#endif /* EDGEC_ACLE_EMUL_H */
