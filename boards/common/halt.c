/* edgec_abort() on real boards: stop for good. With a debugger attached
 * (DHCSR.C_DEBUGEN) break into it first so the reason can be inspected;
 * without one a BKPT would escalate to a fault, so just spin with interrupts
 * off. The exit code stays in r0 for the debugger. */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"

volatile int edgec_abort_code;

void edgec_abort(int code) {
    __asm__ volatile("cpsid i" ::: "memory");
    edgec_abort_code = code;
    if (DCB_DHCSR & 1u) {
        __asm__ volatile("mov r0, %0\n\tbkpt 0" ::"r"(code) : "r0", "memory");
    }
    for (;;) {
    }
}
