/* Start-up code of the edgec bootloader (and of its GO test application):
 * the vector table, the reset handler (copy .data, zero .bss, FPU access),
 * and fault handlers. Freestanding C99 plus two lines of inline assembly.
 *
 * Symbols come from link.ld.in: __stack_top, __data_load, __data_start,
 * __data_end, __bss_start, __bss_end. */
#include <stdint.h>
#include <string.h>

extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

int main(void);

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

void bl_reset_handler(void) __attribute__((noreturn));
void bl_fault_handler(void) __attribute__((noreturn));

typedef void (*vector_t)(void);

/* 16 system exceptions; no device interrupt is used. */
__attribute__((section(".vectors"), used)) const vector_t bl_vectors[16] = {
    (vector_t)(uintptr_t)&__stack_top,
    bl_reset_handler,
    bl_fault_handler, /* NMI */
    bl_fault_handler, /* HardFault */
    bl_fault_handler, /* MemManage */
    bl_fault_handler, /* BusFault */
    bl_fault_handler, /* UsageFault */
    bl_fault_handler, /* SecureFault (v8-M) */
    0, 0, 0,
    bl_fault_handler, /* SVCall */
    bl_fault_handler, /* DebugMonitor */
    0,
    bl_fault_handler, /* PendSV */
    bl_fault_handler, /* SysTick */
};

void bl_reset_handler(void) {
#ifndef BL_STARTUP_KEEP_VTOR /* the GO test app checks the VTOR the bootloader set */
    SCB_VTOR = (uint32_t)(uintptr_t)bl_vectors;
#endif
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: hard-float code may touch FP registers */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    size_t data_len = (size_t)((uintptr_t)&__data_end - (uintptr_t)&__data_start);
    if (data_len) {
        memcpy(&__data_start, &__data_load, data_len);
    }
    memset(&__bss_start, 0, (size_t)((uintptr_t)&__bss_end - (uintptr_t)&__bss_start));
    (void)main();
    bl_fault_handler();
}

/* Any fault: request a system reset, which restarts the bootloader (QEMU
 * reloads its -kernel image on reset). */
void bl_fault_handler(void) {
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}
