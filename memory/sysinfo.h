/* sysinfo.h — what the machine and the process may use: RAM, container limit, CPUs, CPU features,
 * resident set size. The public entry points (sm_sysinfo_get, sm_peak_rss, sm_recommended_context)
 * are in smallmind.h; these are the same readers with an injectable root so tests can feed fake
 * /proc and /sys trees.
 *
 * root: a directory put in front of every /proc and /sys path; "" or NULL reads the real system. */
#ifndef SM_MEMORY_SYSINFO_H
#define SM_MEMORY_SYSINFO_H

#include <stdint.h>

#include "smallmind.h"

/* Fills out from the files under root. Reads /proc/meminfo (required: MemTotal), /proc/self/cgroup
 * and the cgroup files (see sm_cgroup_memory_limit), /proc/self/status (Cpus_allowed_list) and
 * /proc/cpuinfo (flags, processor count). n_threads is always OpenMP's, whatever the root. */
sm_status sm_sysinfo_read(const char *root, sm_sysinfo *out);

/* The tightest cgroup memory limit on this process (v2 memory.max/memory.high, v1
 * memory.limit_in_bytes, over the cgroup and its ancestors), 0 if none; *version (may be NULL)
 * gets 2, 1 or 0 for where it came from. Details and reasons in cgroup.c. */
uint64_t sm_cgroup_memory_limit(const char *root, int *version);

/* Current (VmRSS) and peak (VmHWM) resident set size in bytes from root/proc/self/status; either
 * pointer may be NULL. On the real system a missing status file falls back to getrusage for the
 * peak. */
sm_status sm_sysinfo_rss(const char *root, uint64_t *current, uint64_t *peak);
/* Resets the kernel's peak RSS (VmHWM) to the current RSS, so a later phase can be measured alone
 * (writes "5" to /proc/self/clear_refs, Linux 4.0+). */
sm_status sm_sysinfo_reset_peak_rss(void);

/* 1 if name is one of the words of s->features ("avx2"). */
int sm_sysinfo_has_feature(const sm_sysinfo *s, const char *name);

#endif
