/* test_eval_cli.c — `smallmind eval --window W --stride S` as a user runs it: the strided figure next
 * to the non-overlapping one, which stays what eval always reported, the same from text and from ids,
 * and a stride above the window refused with the reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/cli_run.h"

static char dir[256];
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_eval_cli_XXXXXX");
    cr_assert(mkdtemp(dir));
    /* a small held-out text: the first 3000 bytes of the corpus, and the same as byte ids */
    cr_assert_eq(sm_test_sh("head -c 3000 %s > %s/t.txt && od -An -v -tu1 %s/t.txt > %s/t.ids", sm_test_corpus(), dir,
                            dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s train gpt-tiny -B 2 -T 16 --val-every 0 --steps 2 --data %s --save %s/m.st >/dev/null",
                            sm_test_cli(), sm_test_corpus(), dir), 0);
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(eval_cli, .init = setup, .fini = teardown, .timeout = 300);

static double json_num(const char *file, const char *key)
{
    char path[512], buf[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *at = strstr(buf, key);
    cr_assert(at, "no %s in %s", key, buf);
    return strtod(at + strlen(key), NULL);
}

Test(eval_cli, strided_next_to_non_overlapping)
{
    const char *cli = sm_test_cli();
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s/t.txt -B 3 --json > %s/flat", cli, dir, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s/t.txt -B 3 --window 16 --stride 4 --json > %s/s",
                            cli, dir, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s/t.ids --ids -B 2 -T 16 --stride 4 --json > %s/i",
                            cli, dir, dir, dir), 0);
    cr_assert_eq(json_num("s", "\"predicted\": "), 2999);
    cr_assert_eq(json_num("s", "\"cross_entropy\": "), json_num("flat", "\"cross_entropy\": "),
                 "the non-overlapping figure is unchanged by --stride");
    cr_assert_eq(json_num("s", "\"context_min\": "), 12);
    double strided = json_num("s", "\"strided\": {\"stride\": 4, \"context_min\": 12, \"windows\": 747, "
                                   "\"cross_entropy\": ");
    cr_assert(strided > 0 && strided < 10, "%g", strided);
    cr_assert_float_eq(json_num("i", "\"windows\": 747, \"cross_entropy\": "), strided, 1e-5,
                       "ids and text, B=2 and B=3 give the same figure");
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s/t.txt -T 16 --stride 17 2>%s/err", cli, dir, dir,
                            dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'stride cannot be greater than window' %s/err", dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s/t.txt --stride 0 2>/dev/null", cli, dir, dir), 2);
}
