/* MLPerf Tiny / EEMBC ULPMark-ML device-under-test text mode (built with
 * -DEDGEC_HARNESS_MLPERF), so the MLPerf Tiny host runner
 * (mlcommons/tiny benchmark/runner) and EEMBC's runner drive an edgec board.
 *
 * The dialogue follows the reference firmware's API layer
 * (benchmark/api/internally_implemented.cpp) and what the runner parses
 * (benchmark/runner/device_under_test.py, script.py): a command ends with '%',
 * every line ends with "\r\n", and every command is answered, after its own
 * lines, with "m-ready".
 *
 *   name%            m-name-dut-[edgec-<model>]
 *   profile%         m-profile-[ULPMark for tinyML Firmware V0.0.1]
 *                    m-model-[<model id, e.g. kws01>]
 *   timestamp%       m-lap-us-<microseconds>
 *   db load N%       m-[Expecting N bytes]
 *   db <hex>%        (bytes appended; when N are in:) m-load-done
 *   db print%        m-buffer-xx-xx-... (8 bytes a line)
 *   infer N W%       m-warmup-start-W, m-warmup-done, m-infer-start-N,
 *                    m-lap-us-<start>, m-lap-us-<end>, m-infer-done,
 *                    m-results-[v0,v1,...]
 *   results%         m-results-[v0,v1,...]
 *   help%            the command list
 *
 * The db buffer is the model's input tensors themselves (input 0's bytes, then
 * input 1's, ...: raw bytes in the C API's layout), so loading costs no extra
 * RAM, with the reference firmware's conversions for int8 models
 * (edgec_fw_mlperf_input_mode, chosen by edgec.build.firmware.mlperf_modes):
 * vww01 and ic01 send uint8 pixels, stored as int8 (x - 128, i.e. x ^ 0x80);
 * ad01 sends float32 features, kept in a float buffer and quantized into the
 * int8 input (roundf(x / scale) + zero_point, clamped) before the warm-up, as
 * the reference's th_load_tensor does. "db print" shows the bytes as sent.
 *
 * Results are every output value, in order, as decimal floats with 9
 * significant digits: enough to give back the exact float32. int8 outputs are
 * dequantized as the reference firmware does, (float)(q - zero_point) * scale,
 * because the runner reads floats (it normalises them by their sum before
 * arg-max/AUC: raw int8 values would break that); the int8 values themselves
 * follow on an extra line, m-results-int8-[q0,q1,...], that the runner ignores.
 * ad01 (edgec_fw_mlperf_result_mode 1) reports one value, as its reference
 * does: the mean squared error between the dequantized output and the float
 * input, summed in float in order.
 *
 * Time: "m-lap-us" is the board counter in microseconds: real time on
 * hardware (cycles / MHz); on QEMU virtual time, i.e. emulated instructions x
 * 2^shift ns, which is deterministic. Energy mode (a GPIO timestamp pulse for
 * the EEMBC energy monitor) is not implemented. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "edgec_firmware.h"
#include "edgec_platform.h"

#define FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define CMD_MAX 128u /* the reference keeps 80 characters; the runner sends at most 3 + 62 */
#define MAX_TOKENS 5

static char g_cmd[CMD_MAX + 1u];
static size_t g_cmd_len;
static uint32_t g_db_size; /* bytes announced by "db load" */
static uint32_t g_db_pos;  /* bytes received since */

/* ---- output ---------------------------------------------------------------- */

static void out_str(const char *s) {
    while (*s) {
        edgec_uart_putc((uint8_t)*s++);
    }
}

static void out_u64(uint64_t v) {
    char buf[21];
    int n = 0;
    do {
        buf[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) {
        edgec_uart_putc((uint8_t)buf[--n]);
    }
}

static void out_line(const char *s) {
    out_str(s);
    out_str("\r\n");
}

/* A float32 as "-d.dddddddde-XX": 9 significant digits, which always read
 * back (e.g. Python's float()) to the same float32. The value is scaled into
 * [1e8, 1e9) in double precision; the scaling error (< 1e-14 relative) is far
 * below half a float32 ulp (> 3e-8 relative), so rounding stays faithful. */
static void out_float(float f) {
    union {
        float f;
        uint32_t u;
    } bits = {f};
    if ((bits.u & 0x7F800000u) == 0x7F800000u) {
        out_str((bits.u & 0x007FFFFFu) ? "nan" : (bits.u >> 31) ? "-inf" : "inf");
        return;
    }
    if (bits.u >> 31) {
        edgec_uart_putc('-');
    }
    double v = (double)f;
    if (v < 0) {
        v = -v;
    }
    if (v == 0.0) {
        out_str("0.0");
        return;
    }
    int exp10 = 8;
    while (v >= 1e9) {
        v /= 10.0;
        exp10++;
    }
    while (v < 1e8) {
        v *= 10.0;
        exp10--;
    }
    uint32_t digits = (uint32_t)(v + 0.5);
    if (digits >= 1000000000u) { /* rounded up to the next decade */
        digits /= 10u;
        exp10++;
    }
    char buf[10];
    for (int i = 8; i >= 0; i--) {
        buf[i] = (char)('0' + (int)(digits % 10u));
        digits /= 10u;
    }
    int last = 8;
    while (last > 1 && buf[last] == '0') {
        last--;
    }
    edgec_uart_putc((uint8_t)buf[0]);
    edgec_uart_putc('.');
    for (int i = 1; i <= last; i++) {
        edgec_uart_putc((uint8_t)buf[i]);
    }
    edgec_uart_putc('e');
    if (exp10 < 0) {
        edgec_uart_putc('-');
        exp10 = -exp10;
    }
    out_u64((uint64_t)exp10);
}

/* ---- helpers --------------------------------------------------------------- */

static uint32_t input_capacity(void) {
    if (edgec_fw_mlperf_input_mode == 2u) {
        return edgec_fw_mlperf_f32_len * (uint32_t)sizeof(float);
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < edgec_fw_num_inputs; i++) {
        total += edgec_fw_inputs[i].bytes;
    }
    return total;
}

static void db_store(uint32_t pos, uint8_t byte) {
    if (edgec_fw_mlperf_input_mode == 2u) {
        ((uint8_t *)edgec_fw_mlperf_f32)[pos] = byte;
        return;
    }
    if (edgec_fw_mlperf_input_mode == 1u) {
        byte ^= 0x80u; /* uint8 pixel -> int8: x - 128 */
    }
    for (uint32_t i = 0; i < edgec_fw_num_inputs; i++) {
        if (pos < edgec_fw_inputs[i].bytes) {
            edgec_fw_inputs[i].data[pos] = byte;
            return;
        }
        pos -= edgec_fw_inputs[i].bytes;
    }
}

static uint8_t db_load(uint32_t pos) {
    if (edgec_fw_mlperf_input_mode == 2u) {
        return ((const uint8_t *)edgec_fw_mlperf_f32)[pos];
    }
    for (uint32_t i = 0; i < edgec_fw_num_inputs; i++) {
        if (pos < edgec_fw_inputs[i].bytes) {
            uint8_t b = edgec_fw_inputs[i].data[pos];
            return edgec_fw_mlperf_input_mode == 1u ? (uint8_t)(b ^ 0x80u) : b;
        }
        pos -= edgec_fw_inputs[i].bytes;
    }
    return 0;
}

/* ad01: the float features into the int8 input, as the reference's
 * QuantizeFloatToInt8 (round half away from zero, then clamp). */
static void quantize_f32_input(void) {
    const edgec_fw_tensor_t *t = &edgec_fw_inputs[0];
    int8_t *q = (int8_t *)(void *)t->data;
    for (uint32_t i = 0; i < edgec_fw_mlperf_f32_len; i++) {
        float r = roundf(edgec_fw_mlperf_f32[i] / t->scale) + (float)t->zero_point;
        int32_t v;
        if (r != r) {
            v = t->zero_point; /* NaN */
        } else if (r <= -128.0f) {
            v = -128;
        } else if (r >= 127.0f) {
            v = 127;
        } else {
            v = (int32_t)r;
        }
        q[i] = (int8_t)v;
    }
}

static uint64_t counter_us(void) {
    uint64_t c = edgec_counter_read();
    uint64_t hz = edgec_counter_hz();
    return (c / hz) * 1000000u + (c % hz) * 1000000u / hz;
}

static void timestamp(void) {
    out_str("m-lap-us-");
    out_u64(counter_us());
    out_str("\r\n");
}

/* Decimal integer, or -1 if the token is not one (the reference's atoi would
 * read "abc" as 0; a clear error is better). */
static long parse_long(const char *s) {
    long v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Element i of a tensor as a float: float32 as is, integer types dequantized
 * ((float)(q - zero_point) * scale, the reference's DequantizeInt8ToFloat) when
 * quantized, else their value. */
static float element(const edgec_fw_tensor_t *t, uint32_t i) {
    int32_t q;
    switch (t->dtype) {
    case EDGEC_FW_FLOAT32:
        return ((const float *)(const void *)t->data)[i];
    case EDGEC_FW_INT8:
        q = ((const int8_t *)(const void *)t->data)[i];
        break;
    case EDGEC_FW_UINT8:
        q = t->data[i];
        break;
    case EDGEC_FW_INT16:
        q = ((const int16_t *)(const void *)t->data)[i];
        break;
    default:
        q = ((const int32_t *)(const void *)t->data)[i];
        break;
    }
    return t->scale != 0.0f ? (float)(q - t->zero_point) * t->scale : (float)q;
}

static void out_i32(int32_t v) {
    if (v < 0) {
        edgec_uart_putc('-');
        out_u64((uint64_t)(-(int64_t)v));
    } else {
        out_u64((uint64_t)v);
    }
}

static void results(void) {
    out_str("m-results-[");
    if (edgec_fw_mlperf_result_mode == 1u) {
        /* ad01: mean squared error of the dequantized output against the float input */
        const edgec_fw_tensor_t *o = &edgec_fw_outputs[0];
        const edgec_fw_tensor_t *in = &edgec_fw_inputs[0];
        uint32_t n = o->bytes / o->elem_bytes;
        float diffsum = 0.0f;
        for (uint32_t i = 0; i < n; i++) {
            float x = edgec_fw_mlperf_input_mode == 2u ? edgec_fw_mlperf_f32[i] : element(in, i);
            float diff = element(o, i) - x;
            diffsum += diff * diff;
        }
        diffsum /= (float)n;
        out_float(diffsum);
    } else {
        bool first = true;
        for (uint32_t k = 0; k < edgec_fw_num_outputs; k++) {
            const edgec_fw_tensor_t *t = &edgec_fw_outputs[k];
            uint32_t n = t->bytes / t->elem_bytes;
            for (uint32_t i = 0; i < n; i++) {
                if (!first) {
                    edgec_uart_putc(',');
                }
                out_float(element(t, i));
                first = false;
            }
        }
    }
    out_str("]\r\n");
    /* the raw int8 outputs, exactly (an extra line the MLPerf runner ignores) */
    bool all_int8 = edgec_fw_num_outputs > 0u;
    for (uint32_t k = 0; k < edgec_fw_num_outputs; k++) {
        all_int8 = all_int8 && edgec_fw_outputs[k].dtype == EDGEC_FW_INT8;
    }
    if (all_int8) {
        out_str("m-results-int8-[");
        bool first = true;
        for (uint32_t k = 0; k < edgec_fw_num_outputs; k++) {
            const int8_t *v = (const int8_t *)(const void *)edgec_fw_outputs[k].data;
            for (uint32_t i = 0; i < edgec_fw_outputs[k].bytes; i++) {
                if (!first) {
                    edgec_uart_putc(',');
                }
                out_i32(v[i]);
                first = false;
            }
        }
        out_str("]\r\n");
    }
}

/* ---- commands -------------------------------------------------------------- */

static void cmd_db(char **tok, int ntok) {
    if (ntok < 2) {
        out_line("e-[Command 'db' requires a subcommand]");
        return;
    }
    if (strcmp(tok[1], "load") == 0) {
        if (ntok < 3) {
            out_line("e-[Command 'db load' requires the # of bytes]");
            return;
        }
        long n = parse_long(tok[2]);
        if (n <= 0) {
            out_line("e-[Command 'db load' must be >0 bytes]");
            return;
        }
        g_db_pos = 0;
        if ((uint64_t)n > input_capacity()) {
            g_db_size = 0;
            out_str("e-[Supplied buffer size ");
            out_u64((uint64_t)n);
            out_str(" exceeds maximum of ");
            out_u64(input_capacity());
            out_str("]\r\n");
            return;
        }
        g_db_size = (uint32_t)n;
        out_str("m-[Expecting ");
        out_u64(g_db_size);
        out_str(" bytes]\r\n");
        return;
    }
    if (strcmp(tok[1], "print") == 0) {
        for (uint32_t i = 0; i < g_db_pos; i++) {
            static const char hex[] = "0123456789abcdef";
            uint8_t b = db_load(i);
            if (i % 8u == 0u) {
                out_str("m-buffer-");
            }
            edgec_uart_putc((uint8_t)hex[b >> 4]);
            edgec_uart_putc((uint8_t)hex[b & 0xFu]);
            out_str((i % 8u == 7u || i + 1u == g_db_pos) ? "\r\n" : "-");
        }
        return;
    }
    const char *hex = tok[1];
    size_t len = strlen(hex);
    if (len & 1u) {
        out_line("e-[Insufficent number of hex digits]"); /* sic: the reference's text */
        return;
    }
    if (g_db_pos >= g_db_size) {
        out_line("e-[No db load in progress]");
        return;
    }
    for (size_t i = 0; i < len; i += 2u) {
        int hi = hex_digit(hex[i]);
        int lo = hex_digit(hex[i + 1u]);
        if (hi < 0 || lo < 0) {
            out_str("e-[Invalid hex digit '");
            edgec_uart_putc((uint8_t)hex[i]);
            edgec_uart_putc((uint8_t)hex[i + 1u]);
            out_str("']\r\n");
            return;
        }
        db_store(g_db_pos++, (uint8_t)((hi << 4) | lo));
        if (g_db_pos == g_db_size) {
            out_line("m-load-done"); /* the rest of the digits is ignored, as in the reference */
            return;
        }
    }
}

static bool run_once(void) {
    int rc = edgec_fw_run();
    if (rc != 0) {
        out_str("e-[Inference failed: ");
        out_u64((uint64_t)(unsigned)rc);
        out_str("]\r\n");
        return false;
    }
    return true;
}

static void cmd_infer(char **tok, int ntok) {
    long n = 1;
    long warmup = 10; /* the reference's default */
    if (ntok >= 2) {
        n = parse_long(tok[1]);
        if (n <= 0) {
            out_line("e-[Inference iterations must be >0]");
            return;
        }
        if (ntok >= 3) {
            warmup = parse_long(tok[2]);
            if (warmup < 0) {
                out_line("e-[Inference warmup must be >=0]");
                return;
            }
        }
    }
    uint32_t need = input_capacity();
    if (g_db_size != need || g_db_pos != need) {
        out_str("e-[Input db has ");
        out_u64(g_db_pos);
        out_str(" bytes, expected ");
        out_u64(need);
        out_str("]\r\n");
        return;
    }
    if (edgec_fw_mlperf_input_mode == 2u) {
        quantize_f32_input(); /* outside the timed runs, as the reference's th_load_tensor */
    }
    out_str("m-warmup-start-");
    out_u64((uint64_t)warmup);
    out_str("\r\n");
    for (long i = 0; i < warmup; i++) {
        if (!run_once()) {
            return;
        }
    }
    out_line("m-warmup-done");
    out_str("m-infer-start-");
    out_u64((uint64_t)n);
    out_str("\r\n");
    timestamp();
    for (long i = 0; i < n; i++) {
        if (!run_once()) {
            return;
        }
    }
    timestamp();
    out_line("m-infer-done");
    results();
}

static void cmd_help(void) {
    out_line(FW_VERSION);
    out_line("");
    out_line("help         : Print this information");
    out_line("name         : Print the name of the device");
    out_line("timestamp    : Generate a timestamp");
    out_line("db SUBCMD    : Manipulate a generic byte buffer");
    out_line("  load N     : Allocate N bytes and set load counter");
    out_line("  db HH[HH]* : Load 8-bit hex byte(s) until N bytes");
    out_line("  print      : Print the loaded bytes as hex");
    out_line("infer N [W=10]: Load input, execute N inferences after W warmup loops");
    out_line("results      : Return the result fp32 vector");
}

static void dispatch(char *line) {
    char *tok[MAX_TOKENS];
    int ntok = 0;
    size_t len = strlen(line);
    for (size_t i = 0; i < len; i++) {
        if (line[i] == ' ') {
            line[i] = '\0';
        }
    }
    for (size_t i = 0; i < len && ntok < MAX_TOKENS;) {
        if (line[i] != '\0') {
            tok[ntok++] = &line[i];
            i += strlen(&line[i]);
        } else {
            i++;
        }
    }
    if (ntok == 0) {
        return; /* an empty command: only m-ready */
    }
    if (strcmp(tok[0], "name") == 0) {
        out_str("m-name-dut-[edgec-");
        out_str(edgec_fw_model_name);
        out_str("]\r\n");
    } else if (strcmp(tok[0], "timestamp") == 0) {
        timestamp();
    } else if (strcmp(tok[0], "profile") == 0) {
        out_line("m-profile-[" FW_VERSION "]");
        out_str("m-model-[");
        out_str(edgec_fw_mlperf_model);
        out_str("]\r\n");
    } else if (strcmp(tok[0], "help") == 0) {
        cmd_help();
    } else if (strcmp(tok[0], "db") == 0) {
        cmd_db(tok, ntok);
    } else if (strcmp(tok[0], "infer") == 0) {
        cmd_infer(tok, ntok);
    } else if (strcmp(tok[0], "results") == 0) {
        results();
    } else {
        out_str("e-[Unknown command: ");
        out_str(tok[0]);
        out_str("]\r\n");
    }
}

void edgec_mlperf_main(void) {
    /* The reference firmware's start-up lines (timestamp initialisation, then
     * the monitor is ready). */
    out_line("m-timestamp-mode-performance");
    timestamp();
    out_line("m-init-done");
    out_line("m-ready");
    for (;;) {
        int c = edgec_uart_getc();
        if (c < 0) {
            continue;
        }
        if (c == '%') {
            g_cmd[g_cmd_len] = '\0';
            dispatch(g_cmd);
            out_line("m-ready");
            g_cmd_len = 0;
        } else if (c == '\r' || c == '\n' || c == '\0') {
            /* line ends from a terminal: not part of the command */
        } else if (g_cmd_len < CMD_MAX) {
            g_cmd[g_cmd_len++] = (char)c;
        }
    }
}
