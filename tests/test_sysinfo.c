/* test_sysinfo.c — RAM, cgroup limits, CPUs, features and RSS read from fake /proc and /sys trees
 * (tests/fixtures/sysinfo, described in its README.md) and from temp dirs; the recommended-context
 * table against hand-computed values; and a sanity pass over the real machine. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/sysinfo.h"

#define GIB (UINT64_C(1) << 30)

static const char *fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("SM_FIXTURES");
    cr_assert_not_null(dir, "SM_FIXTURES is not set: run through ctest or set it to tests/fixtures");
    snprintf(path, sizeof path, "%s/sysinfo/%s", dir, name);
    return path;
}

static sm_sysinfo read_fixture(const char *name)
{
    sm_sysinfo s;
    sm_status st = sm_sysinfo_read(fixture(name), &s);
    cr_assert_eq(st, SM_OK, "%s: %s", name, sm_last_error());
    return s;
}

/* ---- cgroup v2 ----------------------------------------------------------------------------------- */

Test(sysinfo, v2_limit_on_ancestor)
{
    sm_sysinfo s = read_fixture("v2_limit");
    cr_assert_eq(s.total, 16 * GIB);
    cr_assert_eq(s.available, 6 * GIB);
    cr_assert_eq(s.cgroup_limit, 4 * GIB, "the parent's memory.max caps the leaf that says max");
    cr_assert_eq(s.cgroup_version, 2);
    cr_assert_eq(s.budget_auto, 4 * GIB, "budget = min(total, available, limit)");
    cr_assert_eq(s.recommended_context, 8192);
}

Test(sysinfo, v2_memory_high_counts)
{
    sm_sysinfo s = read_fixture("v2_high");
    cr_assert_eq(s.cgroup_limit, 6 * GIB);
    cr_assert_eq(s.cgroup_version, 2);
    cr_assert_eq(s.budget_auto, 6 * GIB);
}

Test(sysinfo, v2_max_is_no_limit)
{
    sm_sysinfo s = read_fixture("v2_max");
    cr_assert_eq(s.cgroup_limit, 0);
    cr_assert_eq(s.cgroup_version, 0);
    cr_assert_eq(s.budget_auto, 4 * GIB, "no limit: the budget is what is available");
    cr_assert_eq(s.n_cpus, 2);
}

/* ---- cgroup v1 ----------------------------------------------------------------------------------- */

Test(sysinfo, v1_limit_available_is_smaller)
{
    sm_sysinfo s = read_fixture("v1");
    cr_assert_eq(s.cgroup_limit, 2 * GIB, "the huge root value is 'unlimited', the container's is 2 GiB");
    cr_assert_eq(s.cgroup_version, 1);
    cr_assert_eq(s.budget_auto, 1 * GIB, "MemAvailable (1 GiB) is below the limit (2 GiB)");
}

Test(sysinfo, v1_huge_is_unlimited)
{
    sm_sysinfo s = read_fixture("v1_unlimited");
    cr_assert_eq(s.cgroup_limit, 0);
    cr_assert_eq(s.cgroup_version, 0);
    cr_assert_eq(s.budget_auto, 8 * GIB);
}

Test(sysinfo, v1_host_path_falls_back_to_mount_root)
{
    sm_sysinfo s = read_fixture("v1_host_path");
    cr_assert_eq(s.cgroup_limit, 3 * GIB);
    cr_assert_eq(s.cgroup_version, 1);
    cr_assert_eq(s.budget_auto, 3 * GIB);
}

Test(sysinfo, no_cgroup)
{
    sm_sysinfo s = read_fixture("none");
    cr_assert_eq(s.total, 8 * GIB);
    cr_assert_eq(s.cgroup_limit, 0);
    cr_assert_eq(s.cgroup_version, 0);
    cr_assert_eq(s.budget_auto, 7 * GIB);
    cr_assert_eq(sm_cgroup_memory_limit(fixture("none"), NULL), 0);
}

/* ---- CPUs and features --------------------------------------------------------------------------- */

Test(sysinfo, cpus_from_affinity_list_and_x86_features)
{
    sm_sysinfo s = read_fixture("v2_limit");
    cr_assert_eq(s.n_cpus, 5, "Cpus_allowed_list 0-3,6 is 5 CPUs, not cpuinfo's 2 processors");
    cr_assert_eq(s.n_threads, omp_get_max_threads());
    cr_assert_str_eq(s.features, "sse4_2 avx avx2 fma f16c avx512f avx512dq avx512bw avx512vl avx512_vnni");
    cr_assert(sm_sysinfo_has_feature(&s, "avx512bw"));
    cr_assert(sm_sysinfo_has_feature(&s, "avx"));
    cr_assert_not(sm_sysinfo_has_feature(&s, "avx512"), "whole words only");
    cr_assert_not(sm_sysinfo_has_feature(&s, "avx512_bf16"));
}

Test(sysinfo, cpus_from_cpuinfo_and_arm_features)
{
    sm_sysinfo s = read_fixture("none");
    cr_assert_eq(s.n_cpus, 3, "no status file: count cpuinfo's processor lines");
    cr_assert_str_eq(s.features, "asimd asimdhp asimddp fphp sve bf16 i8mm", "got \"%s\"", s.features);
}

/* ---- RSS ----------------------------------------------------------------------------------------- */

Test(sysinfo, rss_from_fake_status)
{
    uint64_t cur = 0, peak = 0;
    cr_assert_eq(sm_sysinfo_rss(fixture("v2_limit"), &cur, &peak), SM_OK, "%s", sm_last_error());
    cr_assert_eq(cur, UINT64_C(100000) * 1024);
    cr_assert_eq(peak, UINT64_C(123456) * 1024);
    cr_assert_eq(sm_sysinfo_rss(fixture("v2_limit"), NULL, &peak), SM_OK);
    cr_assert_eq(sm_sysinfo_rss(fixture("none"), &cur, &peak), SM_ERR_UNSUPPORTED);
    cr_assert(strstr(sm_last_error(), "/none/proc/self/status"), "message: %s", sm_last_error());
}

Test(sysinfo, real_machine)
{
    sm_sysinfo s;
    cr_assert_eq(sm_sysinfo_get(&s), SM_OK, "%s", sm_last_error());
    cr_assert_gt(s.total, 0);
    cr_assert_leq(s.available, s.total);
    cr_assert_gt(s.budget_auto, 0);
    cr_assert_leq(s.budget_auto, s.total);
    if (s.cgroup_limit) cr_assert_leq(s.budget_auto, s.cgroup_limit);
    cr_assert_geq(s.n_cpus, 1);
    cr_assert_geq(s.n_threads, 1);
    cr_assert_eq(s.recommended_context, sm_recommended_context(s.budget_auto));

    uint64_t cur = 0, peak = 0, peak2 = 0;
    cr_assert_eq(sm_sysinfo_rss(NULL, &cur, &peak), SM_OK, "%s", sm_last_error());
    cr_assert_gt(cur, 0);
    cr_assert_geq(peak, cur);
    cr_assert_eq(sm_peak_rss(&peak2), SM_OK);
    cr_assert_geq(peak2, peak);
    cr_assert_eq(sm_peak_rss(NULL), SM_ERR_INVALID_ARG);
}

/* ---- malformed and missing files (temp dirs) ----------------------------------------------------- */

static char tmp_root[256];

static void make_root(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/sm_sysinfo_XXXXXX", t && t[0] ? t : "/tmp");
    cr_assert_not_null(mkdtemp(tmp_root));
    char p[512];
    snprintf(p, sizeof p, "%s/proc", tmp_root);
    cr_assert_eq(mkdir(p, 0755), 0);
}

static void write_meminfo(const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/proc/meminfo", tmp_root);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_root(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/proc/meminfo", tmp_root);
    unlink(p);
    snprintf(p, sizeof p, "%s/proc", tmp_root);
    rmdir(p);
    rmdir(tmp_root);
}

Test(sysinfo, missing_meminfo_names_the_file, .init = make_root, .fini = remove_root)
{
    sm_sysinfo s;
    cr_assert_eq(sm_sysinfo_read(tmp_root, &s), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), tmp_root) && strstr(sm_last_error(), "/proc/meminfo"), "message: %s",
              sm_last_error());
}

Test(sysinfo, meminfo_without_total_is_a_format_error, .init = make_root, .fini = remove_root)
{
    write_meminfo("MemFree: 100 kB\nMemAvailable: 200 kB\n");
    sm_sysinfo s;
    cr_assert_eq(sm_sysinfo_read(tmp_root, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "MemTotal"), "message: %s", sm_last_error());
    write_meminfo("MemTotal: lots kB\n");
    cr_assert_eq(sm_sysinfo_read(tmp_root, &s), SM_ERR_FORMAT);
}

Test(sysinfo, old_kernel_without_memavailable, .init = make_root, .fini = remove_root)
{
    write_meminfo("MemTotal:  2097152 kB\nMemFree:  1000 kB\n");
    sm_sysinfo s;
    cr_assert_eq(sm_sysinfo_read(tmp_root, &s), SM_OK, "%s", sm_last_error());
    cr_assert_eq(s.total, 2 * GIB);
    cr_assert_eq(s.available, 0, "unknown");
    cr_assert_eq(s.budget_auto, 2 * GIB, "unknown values are left out of the minimum");
    cr_assert_eq(s.n_cpus, 1, "nothing to count: 1");
    cr_assert_str_eq(s.features, "", "no cpuinfo under a fake root: no features");
}

/* ---- recommended context ------------------------------------------------------------------------- */

Test(recommended_context, anchors)
{
    cr_assert_eq(sm_recommended_context(8 * GIB), 8192);
    cr_assert_eq(sm_recommended_context(16 * GIB), 32768);
    cr_assert_eq(sm_recommended_context(32 * GIB), 49152);
    cr_assert_eq(sm_recommended_context(64 * GIB), 65536);
    cr_assert_eq(sm_recommended_context(128 * GIB), 131072);
}

Test(recommended_context, clamped_outside)
{
    cr_assert_eq(sm_recommended_context(0), 8192);
    cr_assert_eq(sm_recommended_context(1 * GIB), 8192);
    cr_assert_eq(sm_recommended_context(8 * GIB - 1), 8192);
    cr_assert_eq(sm_recommended_context(128 * GIB + 1), 131072);
    cr_assert_eq(sm_recommended_context(1024 * GIB), 131072);
    cr_assert_eq(sm_recommended_context(UINT64_MAX), 131072);
}

/* Expected values by hand: t = t_lo + (t_hi - t_lo) * log2(b / b_lo), log2(1.5) = 0.5849625,
 * then rounded down to a multiple of 256. */
Test(recommended_context, log_linear_between)
{
    /* 12 GiB: 8192 + 24576 * 0.5849625 = 22568.0 -> 22528 */
    cr_assert_eq(sm_recommended_context(12 * GIB), 22528);
    /* 24 GiB: 32768 + 16384 * 0.5849625 = 42351.9 -> 42240 */
    cr_assert_eq(sm_recommended_context(24 * GIB), 42240);
    /* 96 GiB: 65536 + 65536 * 0.5849625 = 103872.3 -> 103680 */
    cr_assert_eq(sm_recommended_context(96 * GIB), 103680);
    /* sqrt(2) * 32 GiB: halfway in log: 49152 + 16384 / 2 = 57344 (exact, already a multiple) */
    uint64_t mid = (uint64_t)(32.0 * 1.4142135623730951 * (double)GIB) + 1;
    cr_assert_eq(sm_recommended_context(mid), 57344);
}

Test(recommended_context, monotonic_and_multiple_of_256)
{
    int64_t prev = 0;
    for (uint64_t b = 4 * GIB; b <= 160 * GIB; b += GIB / 8) {
        int64_t t = sm_recommended_context(b);
        cr_assert_geq(t, prev, "not monotonic at %llu bytes", (unsigned long long)b);
        cr_assert_eq(t % 256, 0);
        prev = t;
    }
}
