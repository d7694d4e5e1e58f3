/* qemu-m55: QEMU mps3-an547 (Cortex-M55). The emulated MPS2/MPS3 FPGA has no clock tree
 * or pin multiplexing to set up: the CMSDK UART only needs its divisor. */
#include "edgec_platform.h"

void edgec_cmsdk_uart_init(void);

void edgec_platform_init(void) {
    edgec_cmsdk_uart_init();
    edgec_counter_start();
}
