/* cgroup.c — the memory limit a container puts on this process.
 *
 * Which cgroup: /proc/self/cgroup names it, one line per hierarchy, "id:controllers:path":
 *   "0::/user.slice/app.scope"    cgroup v2 (the unified hierarchy)
 *   "4:memory:/docker/abc"        cgroup v1, the memory controller's hierarchy
 * Where it is mounted: the usual places, no /proc/self/mountinfo parsing —
 *   v2: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid), whichever holds cgroup.controllers
 *   v1: /sys/fs/cgroup/memory
 * What limits it: the limits of the cgroup and of every ancestor up to the mount root, because limits
 * are hierarchical (a parent's limit caps its children even when the child says "max"). Walking up
 * also covers containers without a cgroup namespace, where /proc/self/cgroup shows the host's path
 * but the mount root is the container's own cgroup: the missing host path is skipped and the mount
 * root is read. Files read:
 *   v2: memory.max and memory.high ("max" = none). memory.high counts because above it the kernel
 *       throttles and reclaims hard: a budget past it would thrash rather than fail.
 *   v1: memory.limit_in_bytes; values of 2^60 or more mean "unlimited" (the kernel writes
 *       PAGE_COUNTER_MAX pages, 9223372036854771712 with 4 KiB pages).
 * Usage (memory.current) is not subtracted: it includes page cache that the kernel reclaims on
 * demand, so limit - usage would understate what a new allocation can get. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"
#include "sysinfo.h"

#define UNLIMITED_V1 (UINT64_C(1) << 60)
#define PATH_CAP 4096

/* A limit file's value: 0 for "max", a missing/garbled file or a huge v1 value. */
static uint64_t read_limit(const char *root, const char *dir, const char *file)
{
    char path[PATH_CAP];
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof path) return 0;
    char *text = sm_procfs_slurp(root, path);
    if (!text) return 0;
    uint64_t v = 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t') p++;
    if (*p >= '0' && *p <= '9') {
        char *end;
        unsigned long long x = strtoull(p, &end, 10);
        if (*end == '\0' || *end == '\n' || *end == ' ') v = (uint64_t)x;
    }
    free(text);
    return v >= UNLIMITED_V1 ? 0 : v;
}

static uint64_t min_known(uint64_t a, uint64_t b)
{
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

/* Smallest limit over the cgroup at mount + cgpath and its ancestors up to the mount root. */
static uint64_t walk_up(const char *root, const char *mount, const char *cgpath, const char *const *files,
                        int n_files)
{
    char rel[PATH_CAP];
    /* A path escaping the namespace ("/../..") cannot be followed: read the mount root only. */
    if (cgpath[0] != '/' || strstr(cgpath, "/..")) cgpath = "/";
    if (snprintf(rel, sizeof rel, "%s", cgpath) >= (int)sizeof rel) return 0;

    uint64_t limit = 0;
    for (;;) {
        char dir[PATH_CAP];
        size_t len = strlen(rel);
        while (len > 1 && rel[len - 1] == '/') rel[--len] = '\0';   /* "/a/" -> "/a" */
        int n = snprintf(dir, sizeof dir, "%s%s", mount, strcmp(rel, "/") == 0 ? "" : rel);
        if (n < 0 || (size_t)n >= sizeof dir) return limit;
        for (int i = 0; i < n_files; i++) limit = min_known(limit, read_limit(root, dir, files[i]));
        if (strcmp(rel, "/") == 0) break;
        char *slash = strrchr(rel, '/');
        if (slash == rel) rel[1] = '\0';
        else *slash = '\0';
    }
    return limit;
}

/* 1 if the comma-separated list contains word. */
static int has_controller(const char *list, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (n == wlen && strncmp(p, word, wlen) == 0) return 1;
        p += n + 1;
    }
    return 0;
}

uint64_t sm_cgroup_memory_limit(const char *root, int *version)
{
    if (version) *version = 0;
    char *text = sm_procfs_slurp(root, "/proc/self/cgroup");
    if (!text) return 0;

    char v2path[PATH_CAP] = "", v1path[PATH_CAP] = "";
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            const char *path = c2 + 1;
            size_t clen = (size_t)(c2 - (c1 + 1));
            if (c1 - line == 1 && line[0] == '0' && clen == 0)
                snprintf(v2path, sizeof v2path, "%s", path);
            else if (has_controller(c1 + 1, clen, "memory"))
                snprintf(v1path, sizeof v1path, "%s", path);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);

    uint64_t v2 = 0, v1 = 0;
    if (v2path[0]) {
        static const char *const files[] = {"memory.max", "memory.high"};
        const char *mount = NULL;
        if (sm_procfs_exists(root, "/sys/fs/cgroup/cgroup.controllers")) mount = "/sys/fs/cgroup";
        else if (sm_procfs_exists(root, "/sys/fs/cgroup/unified/cgroup.controllers"))
            mount = "/sys/fs/cgroup/unified";
        if (mount) v2 = walk_up(root, mount, v2path, files, 2);
    }
    if (v1path[0]) {
        static const char *const files[] = {"memory.limit_in_bytes"};
        v1 = walk_up(root, "/sys/fs/cgroup/memory", v1path, files, 1);
    }
    uint64_t limit = min_known(v2, v1);
    if (version && limit) *version = (limit == v2) ? 2 : 1;
    return limit;
}
