/* cmd_sysinfo.c — `smallmind sysinfo`: what this machine and process may use, and what a budget of
 * "auto" means here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: smallmind sysinfo [--json]\n"
           "  Memory (RAM, available, container limit), the budget `auto` stands for, CPUs, OpenMP threads,\n"
           "  the CPU features the kernels use, the recommended context for that budget (a documented\n"
           "  rule of thumb: `smallmind fit` answers from real plans), the window and stride for that\n"
           "  context, and the recompute, precision and KV placement a default plan gets.\n");
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
    sm_memory_config mc;
    char *report = NULL;
    if (sm_memory_config_get(NULL, 0, &mc) || sm_memory_config_report(&mc, json ? SM_REPORT_JSON : SM_REPORT_TEXT, &report))
        return sm_cli_fail(cmd, "%s", sm_last_error());
    const sm_sysinfo *si = &mc.sys;
    if (json)
        printf("{\"total\": %llu, \"available\": %llu, \"cgroup_limit\": %llu, \"cgroup_version\": %d, "
               "\"budget_auto\": %llu, \"cpus\": %d, \"threads\": %d, \"features\": \"%s\", \"recommended_context\": %lld, "
               "\"memory_config\": %s}\n",
               (unsigned long long)si->total, (unsigned long long)si->available, (unsigned long long)si->cgroup_limit,
               si->cgroup_version, (unsigned long long)si->budget_auto, si->n_cpus, si->n_threads, si->features,
               (long long)si->recommended_context, report);
    else
        printf("%scpus        %d usable, OpenMP uses %d threads\nfeatures    %s\n", report, si->n_cpus, si->n_threads,
               si->features[0] ? si->features : "(none of interest found)");
    free(report);
    return 0;
}
