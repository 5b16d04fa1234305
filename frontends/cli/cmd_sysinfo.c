/* cmd_sysinfo.c — `smallmind sysinfo`: what this machine and process may use, and what a budget of
 * "auto" means here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: smallmind sysinfo [--json]\n"
           "  Memory (RAM, available, container limit), the budget `auto` stands for, CPUs, OpenMP threads,\n"
           "  the CPU features the kernels use, and the recommended context for that budget (a documented\n"
           "  rule of thumb: `smallmind fit` answers from real plans).\n");
}

int sm_cmd_sysinfo(int argc, char **argv)
{
    const char *cmd = "sysinfo";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return help(), 0;
        else if (!strcmp(argv[i], "--json")) json = true;
        else {
            fprintf(stderr, "smallmind %s: unknown argument '%s' (see --help)\n", cmd, argv[i]);
            return 2;
        }
    }
    sm_sysinfo si;
    if (sm_sysinfo_get(&si)) return sm_cli_fail(cmd, "%s", sm_last_error());
    uint64_t rss = 0;
    sm_peak_rss(&rss);
    if (json) {
        printf("{\"total\": %llu, \"available\": %llu, \"cgroup_limit\": %llu, \"cgroup_version\": %d, "
               "\"budget_auto\": %llu, \"cpus\": %d, \"threads\": %d, \"features\": \"%s\", \"recommended_context\": %lld}\n",
               (unsigned long long)si.total, (unsigned long long)si.available, (unsigned long long)si.cgroup_limit,
               si.cgroup_version, (unsigned long long)si.budget_auto, si.n_cpus, si.n_threads, si.features,
               (long long)si.recommended_context);
        return 0;
    }
    char b[4][SM_BYTES_STR_MAX];
    printf("memory      %s total, %s available\n", sm_format_bytes(si.total, b[0], sizeof b[0]),
           si.available ? sm_format_bytes(si.available, b[1], sizeof b[1]) : "unknown");
    if (si.cgroup_limit)
        printf("container   limit %s (cgroup v%d)\n", sm_format_bytes(si.cgroup_limit, b[2], sizeof b[2]),
               si.cgroup_version);
    else
        printf("container   no memory limit found\n");
    printf("budget auto %s (the smallest of the above)\n", sm_format_bytes(si.budget_auto, b[3], sizeof b[3]));
    printf("cpus        %d usable, OpenMP uses %d threads\n", si.n_cpus, si.n_threads);
    printf("features    %s\n", si.features[0] ? si.features : "(none of interest found)");
    printf("context     %lld tokens recommended for that budget (a rule of thumb, docs/memory.md; `smallmind fit`\n"
           "            answers from real plans)\n", (long long)si.recommended_context);
    return 0;
}
