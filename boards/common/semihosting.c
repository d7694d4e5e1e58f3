/* edgec_abort() on QEMU: end the emulator with an exit code through Arm
 * semihosting (SYS_EXIT_EXTENDED, reason ADP_Stopped_ApplicationExit).
 * QEMU must run with `-semihosting-config enable=on,target=native` (edgec's
 * QEMU launcher does); never use this on a real part without a debugger:
 * BKPT would fault. Real boards link boards/common/halt.c instead. */
#include <stdint.h>

#include "edgec_platform.h"

#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

void edgec_abort(int code) {
    __asm__ volatile("cpsid i" ::: "memory");
    volatile uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t r0 __asm__("r0") = SYS_EXIT_EXTENDED;
    register uint32_t r1 __asm__("r1") = (uint32_t)(uintptr_t)block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
        /* semihosting disabled: stay here */
    }
}
