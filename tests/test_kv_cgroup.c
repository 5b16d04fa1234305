/* test_kv_cgroup.c — a 131,072-token inference of the gpt template with its KV cache in a file, run for
 * real inside a memory cgroup whose limit is smaller than the KV bytes: the file-backed cache pages are
 * written back and dropped under the limit instead of the process being killed. It needs a writable
 * cgroup v2 hierarchy with the memory controller; without one it is skipped, saying which part is
 * missing (the plan of the same session is checked either way). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smallmind.h"

#define CGROUP2_MAGIC 0x63677270
#define N_POS 131072

/* The gpt template at its narrowest useful width, so the 131,072 positions run in minutes on two
 * cores: L = 2, C = 64, byte vocabulary. KV = 2 layers x (K + V) x 131072 x 64 x 4 bytes = 128 MiB. */
static sm_gpt_config model(void)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.context = N_POS;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 64;
    c.batch = 1;
    c.with_loss = 0;
    return c;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A new child cgroup under this process's own, with the memory controller; NULL (and why) if not. */
static const char *make_cgroup(char *dir, size_t cap, char *why, size_t why_cap)
{
    struct statfs fs;
    if (statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != CGROUP2_MAGIC) {
        snprintf(why, why_cap, "/sys/fs/cgroup is not a cgroup v2 hierarchy");
        return NULL;
    }
    char line[512] = "", own[256] = "";
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) snprintf(own, sizeof own, "%.200s", line + 3);
    if (f) fclose(f);
    own[strcspn(own, "\n")] = '\0';
    char ctl[512];
    snprintf(ctl, sizeof ctl, "/sys/fs/cgroup%s/cgroup.subtree_control", own);
    if (write_file(ctl, "+memory") != 0) {
        snprintf(why, why_cap, "cannot enable the memory controller in %s: %s", ctl, strerror(errno));
        return NULL;
    }
    snprintf(dir, cap, "/sys/fs/cgroup%s/sm_kv_test_%ld", own, (long)getpid());
    if (mkdir(dir, 0755) != 0) {
        snprintf(why, why_cap, "cannot create the cgroup %s: %s", dir, strerror(errno));
        return NULL;
    }
    return dir;
}

/* The child: joins the cgroup, fills a file KV cache with N_POS positions in chunks, checks the last
 * logits are finite. Exit 0 on success. */
static int child(const char *cg, const char *kv_path)
{
    char procs[600];
    snprintf(procs, sizeof procs, "%.512s/cgroup.procs", cg);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (write_file(procs, pid) != 0) return 10;
    sm_gpt_config c = model();
    sm_infer_options o;
    sm_infer_options_default(&o);
    o.chunk = 512;
    o.kv_file = kv_path;
    sm_infer *s;
    if (sm_infer_create(&c, NULL, &o, &s)) {
        fprintf(stderr, "%s\n", sm_last_error());
        return 11;
    }
    enum { PIECE = 4096 };
    static int32_t tok[PIECE];
    static float lg[256];
    for (int i = 0; i < PIECE; i++) tok[i] = (int32_t)((i * 7919u) % 256u);
    for (int p = 0; p < N_POS; p += PIECE)
        if (sm_infer_append(s, tok, PIECE, lg, 0)) {
            fprintf(stderr, "%s\n", sm_last_error());
            return 12;
        }
    int ok = sm_infer_length(s) == N_POS;
    for (int v = 0; v < 256; v++) ok &= lg[v] == lg[v] && lg[v] > -1e30f && lg[v] < 1e30f;
    sm_infer_free(s);
    return ok ? 0 : 13;
}

Test(kv_cgroup, context_131072_with_a_file_kv_inside_a_smaller_memory_cgroup, .timeout = 1800)
{
    /* the plan of the session: the KV arena is 128 MiB, everything fits 16 GiB */
    sm_gpt_config c = model();
    c.seq = 1;
    c.kv_positions = N_POS;
    sm_graph *g;
    sm_gpt_tensors io;
    sm_plan *p;
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_gpt_build(g, &c, &io), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK, "%s", sm_last_error());
    sm_plan_arena_info kv;
    cr_assert_eq(sm_plan_arena_stats(p, SM_ARENA_KV, &kv), SM_OK);
    const uint64_t kv_bytes = 2ull * 2 * N_POS * 64 * 4;
    cr_assert_eq(kv.size, kv_bytes);
    cr_assert(sm_plan_can_fit(p, 16ull << 30));
    sm_plan_free(p);
    sm_graph_free(g);

    char dir[512], why[1024];
    if (!make_cgroup(dir, sizeof dir, why, sizeof why))
        cr_skip_test("needs a writable cgroup v2 with the memory controller to run inside a limit: %s", why);
    /* the limit: 96 MiB, under the cache's 128 MiB (the weights, 33 MiB of them the position table,
     * and the activations take the rest) */
    char path[1024], kv_path[256];
    snprintf(path, sizeof path, "%.512s/memory.max", dir);
    cr_assert_eq(write_file(path, "100663296\n"), 0, "cannot set %s", path);
    snprintf(path, sizeof path, "%.512s/memory.swap.max", dir);
    write_file(path, "0\n");   /* absent without swap accounting: then there is no swap to use anyway */
    const char *tmp = getenv("TMPDIR");
    snprintf(kv_path, sizeof kv_path, "%s/sm_kv_cgroup_%ld.kv", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    unlink(kv_path);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) _exit(child(dir, kv_path));
    int st = 0;
    waitpid(pid, &st, 0);
    unlink(kv_path);
    rmdir(dir);
    cr_assert(WIFEXITED(st), "the child was killed by signal %d inside the %s memory limit",
              WIFSIGNALED(st) ? WTERMSIG(st) : 0, "96 MiB");
    cr_assert_eq(WEXITSTATUS(st), 0, "the child failed (exit %d: 10 join, 11 create, 12 append, 13 check)",
                 WEXITSTATUS(st));
}
