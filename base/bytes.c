/* bytes.c — byte sizes as people write them ("512M", "8GiB", "1.5GB") and as we print them.
 *
 * Units (the convention of dd(1) and coreutils):
 *   (none) or B                  bytes; a fraction is rejected (a byte count is whole)
 *   K M G T P E, KiB MiB … EiB   powers of 1024 (8G = 8GiB = 8 * 2^30)
 *   KB MB GB TB PB EB            powers of 1000 (8GB = 8 * 10^9), as disk vendors use them
 * Letters are case-insensitive ("8g", "8gib", "8gb"); one space may sit between number and unit.
 * A fraction with a unit is exact up to the byte and rounded down ("1.5K" = 1536, "0.1K" = 102).
 * Why both families: a RAM budget is naturally in powers of 1024, but people copy "GB" from disk and
 * cloud specs, and silently reading "8GB" as 8 GiB would overshoot a 8e9-byte limit by 7%. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "smallmind.h"

__extension__ typedef unsigned __int128 sm_u128;

#define UNITS_HELP "use B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)"

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* The multiplier of a unit suffix, or 0 if the suffix is not a unit. */
static uint64_t unit_multiplier(const char *u)
{
    static const char prefixes[] = "kmgtpe";
    size_t n = strlen(u);
    if (n == 0) return 1;
    if (n == 1 && lower(u[0]) == 'b') return 1;
    const char *p = strchr(prefixes, lower(u[0]));   /* u[0] != '\0' here, so p is a letter or NULL */
    if (!p) return 0;
    int power = (int)(p - prefixes) + 1;
    uint64_t base;
    if (n == 1) base = 1024;                                                  /* K */
    else if (n == 2 && lower(u[1]) == 'b') base = 1000;                       /* KB */
    else if (n == 3 && lower(u[1]) == 'i' && lower(u[2]) == 'b') base = 1024; /* KiB */
    else return 0;
    uint64_t m = 1;
    for (int i = 0; i < power; i++) m *= base;   /* at most 1024^6 = 2^60: no overflow */
    return m;
}

sm_status sm_parse_bytes(const char *s, uint64_t *out)
{
    if (!s || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_parse_bytes: null argument");
    const char *p = s;
    if (*p == '-')
        return sm_error(SM_ERR_INVALID_ARG, "bad byte size \"%s\": a size cannot be negative", s);
    if (!is_digit(*p) && !(*p == '.' && is_digit(p[1])))
        return sm_error(SM_ERR_INVALID_ARG,
                        "bad byte size \"%s\": expected a number followed by an optional unit, "
                        "like 512M, 8GiB or 1.5GB", s);

    /* Whole part, with overflow detection. */
    uint64_t whole = 0;
    int too_big = 0;
    for (; is_digit(*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10) too_big = 1;
        else whole = whole * 10 + d;
    }
    /* Fraction: keep up to 19 digits (10^19 < 2^64); later digits change the result by < 1 byte. */
    uint64_t frac = 0, frac_scale = 1;
    int has_frac = 0;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return sm_error(SM_ERR_INVALID_ARG, "bad byte size \"%s\": expected digits after '.'", s);
        has_frac = 1;
        for (int nd = 0; is_digit(*p); p++, nd++) {
            if (nd < 19) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_scale *= 10;
            }
        }
    }
    int spaced = (*p == ' ');
    if (spaced) p++;
    const char *unit = p;
    uint64_t mult = unit_multiplier(unit);
    if (mult == 0 || (spaced && *unit == '\0'))
        return sm_error(SM_ERR_INVALID_ARG, "bad byte size \"%s\": unknown unit \"%s\" (" UNITS_HELP ")",
                        s, unit);
    if (has_frac && mult == 1)
        return sm_error(SM_ERR_INVALID_ARG,
                        "bad byte size \"%s\": a number of bytes must be whole (or give a unit, like 1.5K)",
                        s);

    sm_u128 v = (sm_u128)whole * mult + ((sm_u128)frac * mult) / frac_scale;
    if (too_big || v > UINT64_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "bad byte size \"%s\": larger than 2^64-1 bytes (16 EiB)", s);
    *out = (uint64_t)v;
    return SM_OK;
}

/* Two decimals in the largest binary unit that keeps the number >= 1: "512 B", "1.50 KiB",
 * "1.23 GiB". Binary units because that is what RSS, arenas and pages are measured in. */
const char *sm_format_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (!buf || cap == 0) return "";
    if (bytes < 1024) {
        snprintf(buf, cap, "%u B", (unsigned)bytes);
        return buf;
    }
    int u = 0;
    double v = (double)bytes;
    /* Move up while the value would print as 1024.00 or more, so 1023.999 MiB reads "1.00 GiB". */
    while (u < 6 && v >= 1023.995) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}
