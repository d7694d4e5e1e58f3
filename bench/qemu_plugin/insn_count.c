/* insn_count: a QEMU TCG plugin that counts exactly the guest instructions
 * executed between marker addresses. bench/int8.py (whole inferences between
 * two markers) and bench/kernels.py (kernel calls between repeated marks, and
 * instructions per function) both use it.
 *
 *   qemu-system-arm ... -plugin libinsn_count.so,start=0x8123,stop=0x8131 -d plugin -D qemu.log
 *   qemu-system-arm ... -plugin libinsn_count.so,mark=0x8123,profile=1 -d plugin -D qemu.log
 *
 * Every executed instruction adds one to a 64-bit total (an inline add, no
 * call); instructions at marker addresses also call back into the plugin,
 * which reads the total.
 *
 * - start/stop: a window opens when execution reaches `start` and closes when
 *   it next reaches `stop`; on closing the plugin writes
 *   `insn_count: window <n> insns <count>`, the instructions executed from the
 *   `start` instruction (inclusive) up to the `stop` instruction (exclusive):
 *   for markers at the entries of two empty functions called around a call,
 *   that is the marker's return, the call and the callee, and the second
 *   marker's call.
 * - mark: every time execution reaches `mark`, `insn_count: mark <total>`;
 *   differences between consecutive marks are the instructions in between
 *   (plus the constant cost of the mark call, which the caller calibrates).
 * - profile=1: also counts how often each translated block ran and writes
 *   `insn_count: tb <address> <instructions> <executions>` at exit (the
 *   caller maps addresses to functions).
 * At exit: `insn_count: total <all instructions> windows <n>`. Output goes
 * through qemu_plugin_outs (the QEMU log: `-d plugin -D FILE`), or with
 * out=FILE, appended and flushed to FILE.
 *
 * Exactness: the inline add and the snapshot callback are instrumentation of
 * the same instruction, so whatever their order, every marker sees it the
 * same way and differences count each executed instruction once. Under
 * -icount, an instruction that does I/O in the middle of a translation block
 * is re-executed from a one-instruction block translated with CF_MEMI_ONLY
 * (QEMU >= 7.0), which carries no instruction instrumentation, so it is not
 * counted twice. (The per-block profile counts blocks on entry: a block left
 * early by an exception counts whole there; the kernels bench runs without
 * interrupts.) Addresses are guest virtual addresses (on Cortex-M: the
 * function's address with the Thumb bit cleared; the plugin clears bit 0 of
 * what it is given).
 *
 * Debian's QEMU 7.2 ships no plugin header (qemu-plugin.h), so the part of the
 * plugin API (version 1) used here is declared below, as in QEMU 7.2's
 * include/qemu/qemu-plugin.h. The symbols resolve against the QEMU binary at
 * load time. Build:
 *
 *   gcc -O2 -shared -fPIC -o libinsn_count.so insn_count.c
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU 7.2 plugin API, version 1 (declared by hand) ------------------- */

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op, void *ptr,
                                                uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* ---- the counter ---------------------------------------------------------- */

static uint64_t g_start = UINT64_MAX; /* marker addresses */
static uint64_t g_stop = UINT64_MAX;
static uint64_t g_total;              /* every executed instruction (inline add) */
static uint64_t g_window_start;       /* g_total when the window opened */
static bool g_open;
static uint64_t g_windows;
static FILE *g_out;                   /* out=FILE, or NULL: qemu_plugin_outs */
static uint64_t g_mark = UINT64_MAX;  /* mark=ADDR */
static bool g_profile;                /* profile=1: executions per translated block */

typedef struct {
    uint64_t vaddr;
    uint64_t n_insns;
    uint64_t *runs; /* its own cell: the array may move, the inline counter must not */
} tb_stat;
static tb_stat *g_tbs;
static size_t g_n_tbs, g_cap_tbs;

static void emit(const char *line) {
    if (g_out != NULL) {
        fputs(line, g_out);
        fflush(g_out);
    } else {
        qemu_plugin_outs(line);
    }
}

static void on_start(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    (void)userdata;
    if (!g_open) { /* a nested start (re-entry before stop) keeps the first */
        g_open = true;
        g_window_start = g_total;
    }
}

static void on_stop(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    (void)userdata;
    if (!g_open) {
        return; /* stop without start: nothing to close */
    }
    g_open = false;
    char line[96];
    snprintf(line, sizeof line, "insn_count: window %" PRIu64 " insns %" PRIu64 "\n", g_windows,
             g_total - g_window_start);
    g_windows++;
    emit(line);
}

static void on_mark(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "insn_count: mark %" PRIu64 "\n", g_total);
    emit(line);
}

static void profile_tb(struct qemu_plugin_tb *tb, size_t n) {
    if (g_n_tbs == g_cap_tbs) {
        g_cap_tbs = g_cap_tbs ? 2 * g_cap_tbs : 4096;
        g_tbs = realloc(g_tbs, g_cap_tbs * sizeof *g_tbs);
        if (g_tbs == NULL) {
            abort();
        }
    }
    tb_stat *t = &g_tbs[g_n_tbs++];
    t->vaddr = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
    t->n_insns = n;
    t->runs = calloc(1, sizeof *t->runs);
    if (t->runs == NULL) {
        abort();
    }
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, t->runs, 1);
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (g_profile && n > 0) {
        profile_tb(tb, n);
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc == g_start) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc == g_stop) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc == g_mark) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &g_total, 1);
    }
}

static void on_exit_(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    char line[96];
    snprintf(line, sizeof line, "insn_count: total %" PRIu64 " windows %" PRIu64 "\n", g_total, g_windows);
    emit(line);
    for (size_t i = 0; i < g_n_tbs; i++) {
        if (*g_tbs[i].runs) {
            snprintf(line, sizeof line, "insn_count: tb %" PRIx64 " %" PRIu64 " %" PRIu64 "\n", g_tbs[i].vaddr,
                     g_tbs[i].n_insns, *g_tbs[i].runs);
            emit(line);
        }
    }
    if (g_out != NULL) {
        fclose(g_out);
        g_out = NULL;
    }
}

static bool parse_addr(const char *text, uint64_t *out) {
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 0);
    if (end == text || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v & ~(uint64_t)1; /* Thumb bit */
    return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        if (eq == NULL) {
            fprintf(stderr, "insn_count: argument '%s' is not key=value\n", arg);
            return -1;
        }
        size_t klen = (size_t)(eq - arg);
        const char *val = eq + 1;
        if (klen == 5 && strncmp(arg, "start", 5) == 0) {
            if (!parse_addr(val, &g_start)) {
                fprintf(stderr, "insn_count: bad start address '%s'\n", val);
                return -1;
            }
        } else if (klen == 4 && strncmp(arg, "stop", 4) == 0) {
            if (!parse_addr(val, &g_stop)) {
                fprintf(stderr, "insn_count: bad stop address '%s'\n", val);
                return -1;
            }
        } else if (klen == 4 && strncmp(arg, "mark", 4) == 0) {
            if (!parse_addr(val, &g_mark)) {
                fprintf(stderr, "insn_count: bad mark address '%s'\n", val);
                return -1;
            }
        } else if (klen == 7 && strncmp(arg, "profile", 7) == 0) {
            g_profile = strcmp(val, "0") != 0;
        } else if (klen == 3 && strncmp(arg, "out", 3) == 0) {
            g_out = fopen(val, "a");
            if (g_out == NULL) {
                fprintf(stderr, "insn_count: cannot open '%s'\n", val);
                return -1;
            }
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (start=ADDR, stop=ADDR, mark=ADDR, profile=0|1, "
                            "out=FILE)\n", arg);
            return -1;
        }
    }
    if ((g_start == UINT64_MAX) != (g_stop == UINT64_MAX) || (g_start == UINT64_MAX && g_mark == UINT64_MAX)) {
        fprintf(stderr, "insn_count: give start=ADDR and stop=ADDR, and/or mark=ADDR\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_, NULL);
    return 0;
}
