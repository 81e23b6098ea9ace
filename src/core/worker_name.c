/* worker_name.c -- formatting and recognising our worker names (see worker_name.h). Pure. */
#include "worker_name.h"

#include <stdio.h>
#include <string.h>

/* Civil date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool worker_name_format(const char *prefix, long long epoch_sec, const unsigned char rand4[4],
                        char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (!prefix || epoch_sec < 0 || epoch_sec > 253402300799LL) /* 9999-12-31T23:59:59Z */
        return false;
    long long days = epoch_sec / 86400, secs = epoch_sec % 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int n =
        snprintf(out, cap, "%s%04lld%02d%02d_%02lld%02lld%02lld-%02x%02x%02x%02x", prefix, y, m, d,
                 secs / 3600, secs / 60 % 60, secs % 60, rand4[0], rand4[1], rand4[2], rand4[3]);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return false;
    }
    return true;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool worker_name_matches(const char *prefix, const char *name)
{
    if (!prefix || !name || !prefix[0])
        return false;
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0)
        return false;
    const char *s = name + plen;
    if (strlen(s) != WORKER_NAME_SUFFIX_LEN || !digits(s, 8) || s[8] != '_' || !digits(s + 9, 6) ||
        s[15] != '-')
        return false;
    for (const char *h = s + 16; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
            return false;
    return true;
}
