/* What the firmware (runtime_c/firmware/) knows of the model: the generated
 * firmware_info.c (written by edgec/build/firmware.py for one model and one
 * board) defines these, so the command server and the MLPerf harness are the
 * same C for every model. Buffers are static; nothing is allocated. */
#ifndef EDGEC_FIRMWARE_H
#define EDGEC_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;  /* the tensor's bytes, in the C API's layout (row-major float32) */
    uint32_t bytes;
} edgec_fw_tensor_t;

extern const char edgec_fw_info_json[]; /* INFO (docs/protocol.md) */
extern const uint32_t edgec_fw_info_json_len;
extern const char edgec_fw_model_name[];   /* e.g. "kws_dscnn" */
extern const char edgec_fw_mlperf_model[]; /* MLPerf Tiny model id (e.g. "kws01") or the model name */

extern const edgec_fw_tensor_t edgec_fw_inputs[];
extern const uint32_t edgec_fw_num_inputs;
extern const edgec_fw_tensor_t edgec_fw_outputs[];
extern const uint32_t edgec_fw_num_outputs;

/* Per-layer counter values of the last run (edgec_profile.h fills them). */
extern uint64_t edgec_fw_profile[];
extern const uint32_t edgec_fw_num_layers;

/* One inference on the input buffers into the output buffers; 0 on success. */
int edgec_fw_run(void);

/* Zero the model's activation arena (firmware_model.c). */
void edgec_fw_clear_arena(void);

/* The two firmware front ends; main() runs the one selected at build time. */
void edgec_server_main(void) __attribute__((noreturn)); /* server.c: the edgec serial protocol */
void edgec_mlperf_main(void) __attribute__((noreturn)); /* mlperf_tiny.c: EEMBC/MLPerf Tiny DUT text mode */

#endif /* EDGEC_FIRMWARE_H */
