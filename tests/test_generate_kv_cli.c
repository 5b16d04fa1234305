/* test_generate_kv_cli.c — `smallmind generate` with the KV cache, end to end: the same greedy text as
 * the uncached path (past the window T too), a KV file resumed with --continue giving the text of an
 * uninterrupted run, the file's refusals, and `plan --decode` showing the KV arena. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/cli_run.h"

#define TINY "gpt-tiny -B 2 -T 32 --val-every 0"

static char dir[256];

static const char *at(const char *name) { return sm_test_path(dir, name); }

/* m.st: two steps of gpt-tiny at T = 32 (generation's window) */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_generate_kv_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 2 --save %s >/dev/null", sm_test_cli(),
                            sm_test_corpus(), at("m.st")), 0);
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(generate_kv_cli, .init = setup, .fini = teardown, .timeout = 300);

/* Greedy text with and without the cache: 60 tokens after a 10-byte prompt run past the window of
 * 32, where the cached path re-runs the window as the uncached one does. Sampled text too (the
 * sampler's draws are the same). */
Test(generate_kv_cli, cached_text_equals_uncached)
{
    const char *opts[] = {"--temperature 0", "--temperature 0.9 --seed 5"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(sm_test_sh("%s generate --checkpoint %s --prompt 'In the beg' -n 60 %s > %s", sm_test_cli(),
                                at("m.st"), opts[i], at("c.txt")), 0);
        cr_assert_eq(sm_test_sh("%s generate --checkpoint %s --prompt 'In the beg' -n 60 %s --no-kv-cache > %s",
                                sm_test_cli(), at("m.st"), opts[i], at("u.txt")), 0);
        cr_assert_eq(sm_test_sh("cmp -s %s %s", at("c.txt"), at("u.txt")), 0, "%s: cached and uncached text differ",
                     opts[i]);
    }
}

/* A session in a KV file, resumed: the text of the two runs is the text of one uninterrupted run.
 * (--raw: the bytes as they are, so the first run's text is the uninterrupted run's prompt exactly;
 * the model and its greedy text are deterministic.) */
Test(generate_kv_cli, resume_from_kv_file_equals_uninterrupted)
{
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s --prompt 'And God' -n 5 --temperature 0 --raw --kv file:%s "
                            "| head -c -1 > %s", sm_test_cli(), at("m.st"), at("a.kv"), at("a1.txt")), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s --kv-file %s --continue ' said' -n 6 --temperature 0 --raw "
                            "| head -c -1 | tail -c +6 > %s", sm_test_cli(), at("m.st"), at("a.kv"), at("r2.txt")), 0);
    /* the uninterrupted run: the first run's text and " said" as one prompt, through the uncached path */
    cr_assert_eq(sm_test_sh("printf ' said' >> %s", at("a1.txt")), 0);
    cr_assert_eq(sm_test_sh("test \"$(tr -d '\\000' < %s | wc -c)\" = 17", at("a1.txt")),
                 0, "the first run's text has a NUL or a trailing newline, which a --prompt cannot carry: change "
                 "its prompt");
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s --prompt \"$(cat %s)\" -n 6 --temperature 0 --raw --no-kv-cache "
                            "| head -c -1 | tail -c +18 > %s", sm_test_cli(), at("m.st"), at("a1.txt"), at("u2.txt")), 0);
    cr_assert_eq(sm_test_sh("test -s %s && cmp -s %s %s", at("u2.txt"), at("r2.txt"), at("u2.txt")), 0,
                 "the resumed text differs from the uninterrupted run's");
    /* a new session never overwrites the file; --continue without a file is a usage error */
    cr_assert_neq(sm_test_sh("%s generate --checkpoint %s -n 1 --kv file:%s 2> %s", sm_test_cli(), at("m.st"),
                             at("a.kv"), at("err")), 0);
    cr_assert_eq(sm_test_sh("grep -q 'already exists' %s", at("err")), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s -n 1 --continue x 2>/dev/null", sm_test_cli(), at("m.st")), 2);
    /* a corrupt header is refused, naming it */
    cr_assert_eq(sm_test_sh("printf 'X' | dd of=%s bs=1 seek=100 conv=notrunc 2>/dev/null", at("a.kv")), 0);
    cr_assert_neq(sm_test_sh("%s generate --checkpoint %s --kv-file %s --continue '' -n 1 2> %s", sm_test_cli(),
                             at("m.st"), at("a.kv"), at("err")), 0);
    cr_assert_eq(sm_test_sh("grep -q 'corrupt' %s", at("err")), 0);
}

/* plan --decode: the KV arena of the decode step, 131072 positions of the gpt template in 16 GiB. */
Test(generate_kv_cli, plan_decode_shows_the_kv_arena)
{
    cr_assert_eq(sm_test_sh("%s plan gpt --infer --decode -T 131072 --budget 16G --json > %s", sm_test_cli(),
                            at("p.json")), 0, "the plan must fit 16 GiB");
    /* 6 layers x (K + V) x 131072 x 384 x 4 bytes = 2.25 GiB */
    cr_assert_eq(sm_test_sh("grep -q '\"kv_bytes\": 2415919104' %s", at("p.json")), 0);
    cr_assert_eq(sm_test_sh("%s plan gpt --infer --decode -T 131072 --window 1024 --sink 4 > %s", sm_test_cli(),
                            at("r.txt")), 0);
    /* a ring of 1028 rows: 6 x 2 x 1028 x 384 x 4 = 18.07 MiB */
    cr_assert_eq(sm_test_sh("grep -q 'KV cache *18.07 MiB' %s", at("r.txt")), 0);
}
