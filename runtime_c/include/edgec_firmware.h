/* What the firmware (runtime_c/firmware/) knows of the model: the generated
 * firmware_info.c (written by edgec/build/firmware.py for one model and one
 * board) defines these, so the command server and the MLPerf harness are the
 * same C for every model. Buffers are static; nothing is allocated. */
#ifndef EDGEC_FIRMWARE_H
#define EDGEC_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

/* Element types of the model's graph inputs and outputs (edgec_fw_tensor_t.dtype). */
enum {
    EDGEC_FW_FLOAT32 = 1,
    EDGEC_FW_INT8 = 2,
    EDGEC_FW_UINT8 = 3,
    EDGEC_FW_INT16 = 4,
    EDGEC_FW_INT32 = 5,
};

typedef struct {
    uint8_t *data;  /* the tensor's bytes, in the C API's layout (row-major, its element type) */
    uint32_t bytes;
    uint8_t dtype;      /* EDGEC_FW_* */
    uint8_t elem_bytes; /* bytes per element */
    float scale;        /* quantized tensors: real = scale * (q - zero_point); 0 if not quantized */
    int32_t zero_point;
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

/* Benchmark markers (server.c): empty functions that are never inlined, merged or
 * removed, called right before and right after the run call of every INVOKE. An
 * instruction counter outside the firmware (bench/qemu_plugin/insn_count.c, given the
 * two entry addresses from the ELF) counts exactly the instructions between them:
 * one inference, with the input written before the window opens. */
void edgec_bench_begin(void);
void edgec_bench_end(void);

/* MLPerf Tiny harness only (firmware_info.c, edgec.build.firmware.mlperf_modes):
 * input mode 0 raw bytes, 1 uint8 -> int8 (x - 128: vww01, ic01), 2 float32 ->
 * int8 quantized with the input's scale and zero point (ad01); result mode 0 every
 * output value (int8 dequantized), 1 the mean squared error between the
 * dequantized output and the float input (ad01). */
extern const uint8_t edgec_fw_mlperf_input_mode;
extern const uint8_t edgec_fw_mlperf_result_mode;
extern float edgec_fw_mlperf_f32[]; /* input mode 2: the runner's float32 input */
extern const uint32_t edgec_fw_mlperf_f32_len;

/* The two firmware front ends; main() runs the one selected at build time. */
void edgec_server_main(void) __attribute__((noreturn)); /* server.c: the edgec serial protocol */
void edgec_mlperf_main(void) __attribute__((noreturn)); /* mlperf_tiny.c: EEMBC/MLPerf Tiny DUT text mode */

#endif /* EDGEC_FIRMWARE_H */
