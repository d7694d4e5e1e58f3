/* Cortex-M7 L1 caches: invalidate, then enable the instruction and data
 * caches (what STM32CubeF7/H7 projects do at start-up). Without them an M7
 * running from flash or AXI SRAM is several times slower. The firmware does
 * no DMA, so there is no coherency to manage. */
#include <stdint.h>

#include "cortexm.h"

void edgec_cm7_enable_caches(void) {
    edgec_dsb_isb();
    SCB_ICIALLU = 0u;
    edgec_dsb_isb();
    SCB_CCR |= SCB_CCR_IC;
    edgec_dsb_isb();

    SCB_CSSELR = 0u; /* level 1 data cache */
    edgec_dsb_isb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu;
    uint32_t ways = (ccsidr >> 3) & 0x3FFu;
    for (uint32_t s = 0; s <= sets; s++) {
        for (uint32_t w = 0; w <= ways; w++) {
            /* M7: 4 ways (way field at bit 30), 32-byte lines (set at bit 5) */
            SCB_DCISW = (w << 30) | (s << 5);
        }
    }
    edgec_dsb_isb();
    SCB_CCR |= SCB_CCR_DC;
    edgec_dsb_isb();
}
