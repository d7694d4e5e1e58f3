/* The edgec counter on QEMU: SysTick, extended to 64 bits by counting its
 * wraps in the SysTick interrupt, converted to emulated instructions.
 *
 * DWT CYCCNT does not count under QEMU, but SysTick does, and under
 * `-icount shift=N` QEMU's virtual clock advances exactly 2^N ns per
 * instruction, so SysTick ticks (at the board's SysTick clock) map to an
 * exact instruction count: instructions = ticks * 10^9 / (2^N * f_systick).
 * The board build passes that ratio reduced to EDGEC_COUNTER_MUL /
 * EDGEC_COUNTER_DIV (40/1 on the 25 MHz MPS2 boards at shift 0, 125/4 on the
 * 32 MHz MPS3 AN547), and EDGEC_COUNTER_HZ = 10^9 / 2^N counter units per
 * virtual second. Resolution: one tick (e.g. 40 instructions).
 *
 * edgec_counter_start() restarts SysTick from a full reload, so a reading
 * taken a fixed number of instructions after it is the same in every run:
 * the phase of the tick no longer depends on how long the firmware waited
 * for the host. */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"

#if !defined(EDGEC_COUNTER_MUL) || !defined(EDGEC_COUNTER_DIV) || !defined(EDGEC_COUNTER_HZ)
#error "EDGEC_COUNTER_MUL, EDGEC_COUNTER_DIV and EDGEC_COUNTER_HZ must be defined by the board build"
#endif

#define RELOAD 0xFFFFFFu /* full 24-bit range: one interrupt per 2^24 ticks */

static volatile uint32_t g_wraps;

void SysTick_Handler(void) { g_wraps++; }

void edgec_counter_start(void) {
    SYST_CSR = 0u;
    SYST_RVR = RELOAD;
    SYST_CVR = 0u; /* any write clears the count: reloads on the next tick */
    SCB_ICSR = 1u << 25; /* PENDSTCLR: drop a wrap of the previous run */
    g_wraps = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t edgec_counter_read(void) {
    uint32_t w, v, pending;
    do {
        w = g_wraps;
        v = SYST_CVR;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
    } while (w != g_wraps);
    /* After the start the count reads 0, RELOAD, RELOAD-1, ..., 1, then 0
     * again with a wrap interrupt: a period of RELOAD+1 ticks, and
     * (RELOAD+1 - v) mod (RELOAD+1) ticks elapsed in the current one. A wrap
     * whose interrupt has not been taken yet (pending, and the count is at 0
     * or just reloaded) belongs to this reading. */
    if (pending && (v == 0u || v > RELOAD / 2u)) {
        w++;
    }
    uint64_t ticks = ((uint64_t)w << 24) + (uint64_t)((RELOAD + 1u - v) & RELOAD);
    return ticks * (uint64_t)(EDGEC_COUNTER_MUL) / (uint64_t)(EDGEC_COUNTER_DIV);
}

uint32_t edgec_counter_hz(void) { return (uint32_t)(EDGEC_COUNTER_HZ); }
