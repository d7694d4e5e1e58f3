/* Start-up code shared by every edgec application (boards/<name>/ selects it
 * in board.toml [build] sources): the vector table and the reset handler.
 *
 * The application may be entered from a hardware reset (STM32 parts, flashed
 * at the start of flash) or from a bootloader's GO (emulated boards: edgec's
 * bootloader at flash_base jumps here with its own state behind it), so the
 * reset handler assumes nothing: it sets its own stack, VTOR and FPU access,
 * masks and clears every NVIC interrupt the bootloader may have left, copies
 * .data, zeroes .bss and calls main().
 *
 * Board defines: EDGEC_NUM_IRQS (device interrupt lines of the part; sizes
 * the vector table). Linker symbols (boards/common/app_sections.ld): _estack,
 * _sidata, _sdata, _edata, _sbss, _ebss. */
#include <stdint.h>
#include <string.h>

#include "cortexm.h"
#include "edgec_platform.h"

#ifndef EDGEC_NUM_IRQS
#error "EDGEC_NUM_IRQS must be defined by the board (board.toml [build] defines)"
#endif

extern uint32_t _estack[];
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];

int main(void);
void Reset_Handler(void) __attribute__((naked, noreturn));
void edgec_reset_c(void) __attribute__((noreturn, used));
void edgec_default_handler(void); /* never returns (edgec_abort); not declared noreturn so handlers may alias it */

/* Exception handlers a board or driver may provide; unhandled ones abort
 * with 100 + the exception number (HardFault: 103) as the exit code. */
void NMI_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void HardFault_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void MemManage_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void BusFault_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void SVC_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void PendSV_Handler(void) __attribute__((weak, alias("edgec_default_handler")));
void SysTick_Handler(void) __attribute__((weak, alias("edgec_default_handler")));

typedef void (*edgec_vector_t)(void);

/* Placed first in the application image by app_sections.ld (aligned for VTOR). */
__attribute__((section(".vectors"), used)) const edgec_vector_t edgec_vectors[16 + EDGEC_NUM_IRQS] = {
    (edgec_vector_t)(uintptr_t)_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler, /* v8-M only; reserved on v7-M */
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 15 + EDGEC_NUM_IRQS] = edgec_default_handler,
};

/* Naked: no prologue may touch the stack before it is ours. */
void Reset_Handler(void) {
    __asm__ volatile(
        "cpsid i\n\t"
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
        "movs r0, #0\n\t"
        "msr msplim, r0\n\t" /* a bootloader's stack limit must not fault ours */
#endif
        "ldr r0, =_estack\n\t"
        "msr msp, r0\n\t"
        "b edgec_reset_c\n\t"
        ".ltorg");
}

void edgec_reset_c(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: FPU (and MVE) */
    edgec_dsb_isb();
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)edgec_vectors;
    /* Nothing the bootloader started may interrupt us. */
    SYST_CSR = 0u;
    SCB_ICSR = 1u << 25; /* PENDSTCLR */
    for (unsigned i = 0; i < (EDGEC_NUM_IRQS + 31u) / 32u; i++) {
        NVIC_ICER(i) = 0xFFFFFFFFu;
        NVIC_ICPR(i) = 0xFFFFFFFFu;
    }
    edgec_dsb_isb();

    memcpy(_sdata, _sidata, (size_t)((uintptr_t)_edata - (uintptr_t)_sdata));
    memset(_sbss, 0, (size_t)((uintptr_t)_ebss - (uintptr_t)_sbss));
    __asm__ volatile("cpsie i" ::: "memory");

    int rc = main();
    edgec_abort(rc);
}

void edgec_default_handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    edgec_abort(100 + (int)(ipsr & 0x1FFu));
}
