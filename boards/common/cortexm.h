/* Core registers of the Arm v7-M / v8-M System Control Space used by the
 * board layer (no CMSIS dependency: the few addresses are architectural and
 * the same on every Cortex-M3/M4/M7/M33/M55). Private to boards/. */
#ifndef EDGEC_CORTEXM_H
#define EDGEC_CORTEXM_H

#include <stdint.h>

#define EDGEC_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System control block */
#define SCB_ICSR EDGEC_REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_VTOR EDGEC_REG32(0xE000ED08u)
#define SCB_AIRCR EDGEC_REG32(0xE000ED0Cu)
#define SCB_CCR EDGEC_REG32(0xE000ED14u)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_CCSIDR EDGEC_REG32(0xE000ED80u)
#define SCB_CSSELR EDGEC_REG32(0xE000ED84u)
#define SCB_CPACR EDGEC_REG32(0xE000ED88u)
#define SCB_ICIALLU EDGEC_REG32(0xE000EF50u)
#define SCB_DCISW EDGEC_REG32(0xE000EF60u)

/* SysTick (24-bit down counter) */
#define SYST_CSR EDGEC_REG32(0xE000E010u)
#define SYST_RVR EDGEC_REG32(0xE000E014u)
#define SYST_CVR EDGEC_REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1 = processor clock */

/* NVIC: interrupt clear-enable / clear-pending banks of 32 */
#define NVIC_ICER(n) EDGEC_REG32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n) EDGEC_REG32(0xE000E280u + 4u * (n))

/* Debug: trace enable and the DWT cycle counter */
#define DCB_DHCSR EDGEC_REG32(0xE000EDF0u)
#define DCB_DEMCR EDGEC_REG32(0xE000EDFCu)
#define DCB_DEMCR_TRCENA (1u << 24)
#define DWT_CTRL EDGEC_REG32(0xE0001000u)
#define DWT_CYCCNT EDGEC_REG32(0xE0001004u)
#define DWT_LAR EDGEC_REG32(0xE0001FB0u) /* Cortex-M7: software lock access */
#define DWT_CTRL_CYCCNTENA (1u << 0)

static inline void edgec_dsb_isb(void) { __asm__ volatile("dsb\n\tisb" ::: "memory"); }

static inline uint32_t edgec_irq_save(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void edgec_irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

#endif /* EDGEC_CORTEXM_H */
