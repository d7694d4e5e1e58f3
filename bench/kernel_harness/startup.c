/*
 * Bare-metal runtime of the kernel benchmark on QEMU mps2-an500 (Cortex-M7):
 * vector table, reset (FPU on, .data copied, .bss zeroed), semihosting output
 * and exit, and the mark function whose every execution the insn_count plugin
 * logs. No interrupts are enabled, so instruction counts are exact.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <string.h>

#include "bench.h"

extern uint32_t _estack[], _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
int main(void);
void bench_reset(void) __attribute__((noreturn));
static void bench_fault(void) __attribute__((noreturn));

__attribute__((section(".vectors"), used)) void (*const bench_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)_estack, bench_reset, bench_fault, bench_fault, bench_fault, bench_fault, bench_fault,
};

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register uint32_t r1 __asm__("r1") = (uint32_t)(uintptr_t)arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void bench_exit(int code)
{
    const uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    semihost(0x20u /* SYS_EXIT_EXTENDED */, block);
    for (;;) {
    }
}

void bench_puts(const char *s)
{
    semihost(0x04u /* SYS_WRITE0 */, s);
}

void bench_put_hex32(uint32_t v)
{
    char buf[9];
    for (int i = 0; i < 8; i++) {
        buf[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[8] = 0;
    bench_puts(buf);
}

uint32_t bench_fnv1a(const void *p, uint32_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 16777619u;
    }
    return h;
}

/* The plugin counts up to the first instruction of this function. */
__attribute__((noinline)) void bench_mark(void)
{
    __asm__ volatile("" ::: "memory");
}

static void bench_fault(void)
{
    bench_puts("fault\n");
    bench_exit(3);
}

void bench_reset(void)
{
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(_sdata, _sidata, (size_t)((uintptr_t)_edata - (uintptr_t)_sdata));
    memset(_sbss, 0, (size_t)((uintptr_t)_ebss - (uintptr_t)_sbss));
    bench_exit(main());
}
