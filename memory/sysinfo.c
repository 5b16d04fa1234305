/* sysinfo.c — RAM, CPUs, CPU features and RSS of this machine and process, read from /proc (under a
 * root prefix for tests), and the recommended-context table. The cgroup limit is in cgroup.c. */
#include "sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../base/error.h"
#include "procfs.h"

static int is_real(const char *root) { return !root || !root[0]; }

/* ---- RAM ----------------------------------------------------------------------------------------- */

static sm_status read_meminfo(const char *root, uint64_t *total, uint64_t *available)
{
    char *text = sm_procfs_slurp(root, "/proc/meminfo");
    if (!text)
        return sm_error(SM_ERR_IO, "cannot read %s/proc/meminfo: the total RAM is unknown "
                        "(is /proc mounted?)", root ? root : "");
    int ok = sm_procfs_field(text, "MemTotal", 1, total) && *total > 0;
    /* MemAvailable exists since Linux 3.14; without it "available" stays unknown (0). */
    if (!sm_procfs_field(text, "MemAvailable", 1, available)) *available = 0;
    free(text);
    if (!ok)
        return sm_error(SM_ERR_FORMAT, "%s/proc/meminfo: no valid \"MemTotal: N kB\" line", root ? root : "");
    return SM_OK;
}

static uint64_t min_known(uint64_t a, uint64_t b)
{
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

/* ---- CPUs ---------------------------------------------------------------------------------------- */

/* Number of CPUs in a kernel CPU list ("0-3,8,10-11" -> 7); 0 if malformed. */
static int count_cpu_list(const char *p, size_t len)
{
    const char *end = p + len;
    int n = 0;
    while (p < end) {
        char *q;
        long lo = strtol(p, &q, 10);
        if (q == p || lo < 0) return 0;
        long hi = lo;
        if (q < end && *q == '-') {
            p = q + 1;
            hi = strtol(p, &q, 10);
            if (q == p || hi < lo) return 0;
        }
        n += (int)(hi - lo + 1);
        p = q;
        if (p < end && *p == ',') p++;
        else if (p < end && *p != '\n' && *p != ' ') return 0;
        else break;
    }
    return n;
}

/* CPUs this process may run on: its affinity list in /proc/self/status (what sched_getaffinity
 * gives, but readable from a fake tree), else the processor count of cpuinfo, else sysconf. */
static int count_cpus(const char *root, const char *status, const char *cpuinfo)
{
    size_t len;
    const char *list = sm_procfs_line_value(status ? status : "", "Cpus_allowed_list", &len);
    int n = list ? count_cpu_list(list, len) : 0;
    if (n > 0) return n;
    for (const char *p = cpuinfo; p && *p;) {
        if (strncmp(p, "processor", 9) == 0 && (p[9] == ' ' || p[9] == '\t' || p[9] == ':')) n++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (n > 0) return n;
    if (is_real(root)) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        if (c > 0) return (int)c;
    }
    return 1;
}

/* ---- CPU features -------------------------------------------------------------------------------- */

/* The features our kernels (or a future one) dispatch on, in the order they are listed. x86 names as
 * /proc/cpuinfo "flags" spells them, arm64 as its "Features" line does. */
static const char *const known_features[] = {
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "bf16", "i8mm", "sme",
};

/* 1 if the blank-separated words of text[0..len) contain word. */
static int has_word(const char *text, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    const char *p = text, *end = text + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *w = p;
        while (p < end && *p != ' ' && *p != '\t' && *p != '\n') p++;
        if ((size_t)(p - w) == wlen && strncmp(w, word, wlen) == 0) return 1;
        if (p < end && *p == '\n') break;
    }
    return 0;
}

static void append_word(char *buf, size_t cap, const char *word)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? " " : "", word);
}

/* Without a readable cpuinfo (some sandboxes), ask the CPU itself: only the x86 names GCC and Clang
 * both know. */
static void builtin_features(char *buf, size_t cap)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) append_word(buf, cap, "sse4_2");
    if (__builtin_cpu_supports("avx")) append_word(buf, cap, "avx");
    if (__builtin_cpu_supports("avx2")) append_word(buf, cap, "avx2");
    if (__builtin_cpu_supports("fma")) append_word(buf, cap, "fma");
    if (__builtin_cpu_supports("avx512f")) append_word(buf, cap, "avx512f");
    if (__builtin_cpu_supports("avx512dq")) append_word(buf, cap, "avx512dq");
    if (__builtin_cpu_supports("avx512bw")) append_word(buf, cap, "avx512bw");
    if (__builtin_cpu_supports("avx512vl")) append_word(buf, cap, "avx512vl");
#else
    (void)buf;
    (void)cap;
#endif
}

static void read_features(const char *root, const char *cpuinfo, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t len = 0;
    const char *flags = sm_procfs_line_value(cpuinfo ? cpuinfo : "", "flags", &len);
    if (!flags) flags = sm_procfs_line_value(cpuinfo ? cpuinfo : "", "Features", &len);
    if (!flags) {
        if (is_real(root)) builtin_features(buf, cap);
        return;
    }
    for (size_t i = 0; i < sizeof known_features / sizeof known_features[0]; i++)
        if (has_word(flags, len, known_features[i])) append_word(buf, cap, known_features[i]);
}

int sm_sysinfo_has_feature(const sm_sysinfo *s, const char *name)
{
    return s && name && has_word(s->features, strlen(s->features), name);
}

/* ---- recommended context ------------------------------------------------------------------------- */

/* Budget (GiB) -> tokens. Anchors double in bytes, so interpolating linearly in log2(bytes) gives
 * each doubling of RAM the same share of the step, rather than crowding the change near the low
 * end of each segment as plain linear interpolation of bytes would. */
static const struct { uint64_t gib; int64_t tokens; } context_table[] = {
    {8, 8 * 1024}, {16, 32 * 1024}, {32, 48 * 1024}, {64, 64 * 1024}, {128, 128 * 1024},
};

int64_t sm_recommended_context(uint64_t budget_bytes)
{
    const int n = (int)(sizeof context_table / sizeof context_table[0]);
    const uint64_t gib = UINT64_C(1) << 30;
    if (budget_bytes <= context_table[0].gib * gib) return context_table[0].tokens;
    if (budget_bytes >= context_table[n - 1].gib * gib) return context_table[n - 1].tokens;
    int i = 0;
    while (budget_bytes >= context_table[i + 1].gib * gib) i++;
    double lo = (double)(context_table[i].gib * gib), hi = (double)(context_table[i + 1].gib * gib);
    double frac = log2((double)budget_bytes / lo) / log2(hi / lo);
    double t = (double)context_table[i].tokens +
               frac * (double)(context_table[i + 1].tokens - context_table[i].tokens);
    return ((int64_t)t / 256) * 256;
}

/* ---- RSS ----------------------------------------------------------------------------------------- */

sm_status sm_sysinfo_rss(const char *root, uint64_t *current, uint64_t *peak)
{
    char *text = sm_procfs_slurp(root, "/proc/self/status");
    if (!text) {
        struct rusage ru;
        if (is_real(root) && !current && peak && getrusage(RUSAGE_SELF, &ru) == 0) {
            *peak = (uint64_t)ru.ru_maxrss * 1024;   /* Linux reports kilobytes */
            return SM_OK;
        }
        return sm_error(SM_ERR_UNSUPPORTED, "cannot read %s/proc/self/status: the resident set size is "
                        "only available on Linux with /proc mounted", root ? root : "");
    }
    int ok = 1;
    if (current) ok &= sm_procfs_field(text, "VmRSS", 1, current);
    if (peak) ok &= sm_procfs_field(text, "VmHWM", 1, peak);
    free(text);
    if (!ok)
        return sm_error(SM_ERR_FORMAT, "%s/proc/self/status: no valid VmRSS/VmHWM line", root ? root : "");
    return SM_OK;
}

sm_status sm_sysinfo_reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "5", 1) != 1) {
        char e[128];
        if (strerror_r(errno, e, sizeof e) != 0) snprintf(e, sizeof e, "errno %d", errno);
        if (fd >= 0) close(fd);
        return sm_error(SM_ERR_UNSUPPORTED, "cannot reset the peak RSS through /proc/self/clear_refs: %s "
                        "(needs Linux 4.0+)", e);
    }
    close(fd);
    return SM_OK;
}

sm_status sm_peak_rss(uint64_t *out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_peak_rss: out is NULL");
    return sm_sysinfo_rss(NULL, NULL, out);
}

/* ---- everything ---------------------------------------------------------------------------------- */

sm_status sm_sysinfo_read(const char *root, sm_sysinfo *out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_sysinfo_read: out is NULL");
    memset(out, 0, sizeof *out);
    sm_status st = read_meminfo(root, &out->total, &out->available);
    if (st != SM_OK) return st;
    out->cgroup_limit = sm_cgroup_memory_limit(root, &out->cgroup_version);
    out->budget_auto = min_known(min_known(out->total, out->available), out->cgroup_limit);

    char *status = sm_procfs_slurp(root, "/proc/self/status");
    char *cpuinfo = sm_procfs_slurp(root, "/proc/cpuinfo");
    out->n_cpus = count_cpus(root, status, cpuinfo);
    read_features(root, cpuinfo, out->features, sizeof out->features);
    free(status);
    free(cpuinfo);

    out->n_threads = omp_get_max_threads();
    out->recommended_context = sm_recommended_context(out->budget_auto);
    return SM_OK;
}

sm_status sm_sysinfo_get(sm_sysinfo *out) { return sm_sysinfo_read(NULL, out); }
