/* The edgec counter on real Cortex-M3/M4/M7/M33/M55 parts: the DWT cycle
 * counter (CYCCNT, 32 bits), extended to 64 bits in software.
 *
 * CYCCNT wraps every 2^32 cycles (19.9 s at 216 MHz, 10.7 s at 400 MHz). A
 * wrap is noticed whenever the counter is read (a smaller value than the last
 * one), and SysTick interrupts every 2^24 cycles only to read it, so even an
 * inference that runs for minutes is counted right. EDGEC_COUNTER_HZ is the
 * core clock (board.toml [clock] cpu_hz); Cortex-M7 boards define
 * EDGEC_DWT_UNLOCK (board.toml [build] defines) to unlock the DWT first. */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"

#ifndef EDGEC_COUNTER_HZ
#error "EDGEC_COUNTER_HZ must be defined by the board build"
#endif

static uint32_t g_high;
static uint32_t g_last;

static uint64_t extend(void) {
    uint32_t now = DWT_CYCCNT;
    if (now < g_last) {
        g_high++;
    }
    g_last = now;
    return ((uint64_t)g_high << 32) | now;
}

void SysTick_Handler(void) { (void)extend(); }

void edgec_counter_start(void) {
    DCB_DEMCR |= DCB_DEMCR_TRCENA; /* power the DWT */
#if defined(EDGEC_DWT_UNLOCK)
    DWT_LAR = 0xC5ACCE55u; /* Cortex-M7: the DWT ignores writes until unlocked */
#endif
    uint32_t primask = edgec_irq_save();
    DWT_CTRL &= ~DWT_CTRL_CYCCNTENA;
    DWT_CYCCNT = 0u;
    g_high = 0u;
    g_last = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    SYST_CSR = 0u;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    edgec_irq_restore(primask);
}

uint64_t edgec_counter_read(void) {
    uint32_t primask = edgec_irq_save();
    uint64_t v = extend();
    edgec_irq_restore(primask);
    return v;
}

uint32_t edgec_counter_hz(void) { return (uint32_t)(EDGEC_COUNTER_HZ); }
