/* procfs.c — small text files of /proc and /sys, under a root prefix (see procfs.h). */
#include "procfs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sm_procfs_path(const char *root, const char *path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s%s", root ? root : "", path);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int sm_procfs_exists(const char *root, const char *path)
{
    char full[4096];
    if (sm_procfs_path(root, path, full, sizeof full) != 0) return 0;
    return access(full, F_OK) == 0;
}

char *sm_procfs_slurp(const char *root, const char *path)
{
    char full[4096];
    if (sm_procfs_path(root, path, full, sizeof full) != 0) return NULL;
    FILE *f = fopen(full, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - 1 - len, f);
        if (len < cap - 1) break;   /* EOF or error: a short read */
        char *bigger = realloc(text, cap * 2);
        if (!bigger) {
            free(text);
            text = NULL;
        } else {
            text = bigger;
            cap *= 2;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (!text) return NULL;
    if (failed) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* The line of text that begins with key followed by optional blanks and ':'; *after_colon points
 * just past the ':'. NULL if no line matches. */
static const char *find_key_line(const char *text, const char *key, const char **after_colon)
{
    size_t klen = strlen(key);
    const char *line = text;
    while (*line) {
        if (strncmp(line, key, klen) == 0) {
            const char *p = line + klen;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == ':') {
                *after_colon = p + 1;
                return line;
            }
        }
        const char *nl = strchr(line, '\n');
        if (!nl) break;
        line = nl + 1;
    }
    return NULL;
}

int sm_procfs_field(const char *text, const char *key, int unit_kb, uint64_t *out)
{
    const char *p;
    if (!text || !find_key_line(text, key, &p)) return 0;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return 0;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (unit_kb) {
        if (v > UINT64_MAX / 1024) return 0;
        v *= 1024;
    }
    *out = v;
    return 1;
}

const char *sm_procfs_line_value(const char *text, const char *key, size_t *len)
{
    const char *p;
    if (!text || !find_key_line(text, key, &p)) return NULL;
    while (*p == ' ' || *p == '\t') p++;
    const char *end = strchr(p, '\n');
    *len = end ? (size_t)(end - p) : strlen(p);
    return p;
}
