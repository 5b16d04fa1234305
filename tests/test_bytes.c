/* test_bytes.c — sm_parse_bytes and sm_format_bytes against values written out by hand. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "smallmind.h"

static const struct { const char *text; uint64_t bytes; } good[] = {
    {"0", 0},
    {"123456", 123456},
    {"18446744073709551615", UINT64_MAX},
    {"100B", 100},
    {"100 b", 100},
    {"1K", 1024},
    {"1KiB", 1024},
    {"1KB", 1000},
    {"512M", 512ull * 1024 * 1024},
    {"512MB", 512000000ull},
    {"8G", 8589934592ull},
    {"8GiB", 8589934592ull},
    {"8gib", 8589934592ull},
    {"8g", 8589934592ull},
    {"8 GiB", 8589934592ull},
    {"8GB", 8000000000ull},
    {"8gb", 8000000000ull},
    {"1.5GB", 1500000000ull},
    {"1.5G", 1610612736ull},
    {"1.5K", 1536},
    {"0.1K", 102},                          /* 102.4 rounded down */
    {".5K", 512},
    {"1.000000000000000000000001K", 1024},  /* digits past the 19th change less than a byte */
    {"2T", 2ull << 40},
    {"2TB", 2000000000000ull},
    {"1P", 1ull << 50},
    {"1E", 1ull << 60},
    {"15E", 15ull << 60},
    {"15.5EiB", 15ull << 60 | 1ull << 59},
    {"1.50 KiB", 1536},                     /* what sm_format_bytes prints */
};

Test(parse_bytes, good)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        sm_status st = sm_parse_bytes(good[i].text, &v);
        cr_assert_eq(st, SM_OK, "\"%s\": %s", good[i].text, sm_last_error());
        cr_assert_eq(v, good[i].bytes, "\"%s\": got %llu, want %llu", good[i].text, (unsigned long long)v,
                     (unsigned long long)good[i].bytes);
    }
}

/* Each bad text, and a phrase its message must contain (the message must also quote the text). */
static const struct { const char *text; const char *phrase; } bad[] = {
    {"", "expected a number"},
    {"abc", "expected a number"},
    {" 8G", "expected a number"},
    {"G", "expected a number"},
    {"-1", "negative"},
    {"-1G", "negative"},
    {"8Q", "unknown unit \"Q\""},
    {"8GiBs", "unknown unit \"GiBs\""},
    {"8Gi", "unknown unit \"Gi\""},
    {"8iB", "unknown unit \"iB\""},
    {"1e9", "unknown unit \"e9\""},
    {"8  G", "unknown unit \" G\""},
    {"8 ", "unknown unit"},
    {"8G ", "unknown unit \"G \""},
    {"1.5", "whole"},
    {"1.5B", "whole"},
    {"1.", "digits after '.'"},
    {"1.G", "digits after '.'"},
    {"18446744073709551616", "larger than"},
    {"16E", "larger than"},
    {"99999999999999999999999G", "larger than"},
    {"17179869184G", "larger than"},
};

Test(parse_bytes, bad)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        sm_status st = sm_parse_bytes(bad[i].text, &v);
        cr_assert_eq(st, SM_ERR_INVALID_ARG, "\"%s\" should be rejected", bad[i].text);
        cr_assert_eq(v, 777, "\"%s\": out must be untouched on error", bad[i].text);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i].text);
        cr_assert(strstr(sm_last_error(), quoted), "\"%s\": message does not quote it: %s", bad[i].text,
                  sm_last_error());
        cr_assert(strstr(sm_last_error(), bad[i].phrase), "\"%s\": message lacks \"%s\": %s", bad[i].text,
                  bad[i].phrase, sm_last_error());
    }
}

Test(parse_bytes, unknown_unit_lists_the_units)
{
    uint64_t v;
    cr_assert_eq(sm_parse_bytes("3X", &v), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "powers of 1024") && strstr(sm_last_error(), "powers of 1000"),
              "%s", sm_last_error());
}

Test(parse_bytes, null_arguments)
{
    uint64_t v;
    cr_assert_eq(sm_parse_bytes(NULL, &v), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_parse_bytes("1K", NULL), SM_ERR_INVALID_ARG);
}

static const struct { uint64_t bytes; const char *text; } shown[] = {
    {0, "0 B"},
    {512, "512 B"},
    {1023, "1023 B"},
    {1024, "1.00 KiB"},
    {1536, "1.50 KiB"},
    {1048575, "1.00 MiB"},          /* 1023.999 KiB would print 1024.00 KiB: moves up */
    {1048576, "1.00 MiB"},
    {1320702443, "1.23 GiB"},       /* 1.23 * 2^30 */
    {8000000000ull, "7.45 GiB"},
    {5ull << 40, "5.00 TiB"},
    {3ull << 50, "3.00 PiB"},
    {UINT64_MAX, "16.00 EiB"},
};

Test(format_bytes, values)
{
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        char buf[SM_BYTES_STR_MAX];
        const char *s = sm_format_bytes(shown[i].bytes, buf, sizeof buf);
        cr_assert_eq(s, buf, "returns the buffer");
        cr_assert_str_eq(s, shown[i].text, "%llu bytes", (unsigned long long)shown[i].bytes);
    }
}

Test(format_bytes, small_buffers)
{
    char buf[5];
    cr_assert_str_eq(sm_format_bytes(1536, buf, sizeof buf), "1.50");
    cr_assert_str_eq(sm_format_bytes(1536, buf, 1), "");
    cr_assert_str_eq(sm_format_bytes(1536, NULL, 0), "");
    cr_assert_str_eq(sm_format_bytes(1536, buf, 0), "");
}

Test(format_bytes, parses_back)
{
    /* What we print is one of the accepted spellings, within the rounding of two decimals. */
    for (uint64_t b = 1000; b < (UINT64_C(1) << 60); b = b * 7 + 13) {
        char buf[SM_BYTES_STR_MAX];
        uint64_t back;
        cr_assert_eq(sm_parse_bytes(sm_format_bytes(b, buf, sizeof buf), &back), SM_OK, "%s: %s", buf,
                     sm_last_error());
        double rel = ((double)back - (double)b) / (double)b;
        cr_assert(rel < 0.005 && rel > -0.005, "%llu -> %s -> %llu", (unsigned long long)b, buf,
                  (unsigned long long)back);
    }
}
