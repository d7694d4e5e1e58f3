/* edgec firmware entry: bring the board up, then serve the host. The front
 * end is chosen at build time: the edgec serial protocol (server.c, the
 * default) or, with -DEDGEC_HARNESS_MLPERF, the MLPerf Tiny / EEMBC
 * device-under-test text mode (mlperf_tiny.c). */
#include "edgec_firmware.h"
#include "edgec_platform.h"

int main(void) {
    edgec_platform_init();
#if defined(EDGEC_HARNESS_MLPERF)
    edgec_mlperf_main();
#else
    edgec_server_main();
#endif
}
