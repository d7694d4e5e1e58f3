/* Per-layer profiling hooks for the generated model.c: included before it
 * (firmware_model.c does `#include "edgec_profile.h"` then
 * `#include "model.c"`), so model.c's EDGEC_PROFILE_BEGIN/END(layer) read the
 * board counter around every layer. Each reading costs a few dozen
 * instructions (on QEMU) or cycles, which land in the layer's own count and in
 * the INVOKE total; that is the price of a per-layer profile. */
#ifndef EDGEC_PROFILE_H
#define EDGEC_PROFILE_H

#include <stdint.h>

#include "edgec_platform.h"

extern uint64_t edgec_fw_profile[];
extern uint64_t edgec_fw_profile_t0;

#define EDGEC_PROFILE_BEGIN(layer) (edgec_fw_profile_t0 = edgec_counter_read())
#define EDGEC_PROFILE_END(layer) (edgec_fw_profile[(layer)] = edgec_counter_read() - edgec_fw_profile_t0)

#endif /* EDGEC_PROFILE_H */
