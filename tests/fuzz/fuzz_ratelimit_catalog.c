/* fuzz_ratelimit_catalog.c -- libFuzzer harness (issue 16): RunPod's RateLimit /
 * RateLimit-Policy headers and GPU catalog are foreign data; their parsers must survive any
 * bytes, and what they say must stay within its bounds. The first byte picks the cloud and
 * the data-center filter; the rest is a catalog body, and, up to its first newline, a RateLimit
 * value (the next line a RateLimit-Policy value). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *cloud = (data[0] & 1) ? "COMMUNITY" : "SECURE";
    const char *dcs[] = {"EU-RO-1", "US-KS-2"};
    size_t n_dcs = (size_t)((data[0] >> 1) % 3);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    CatalogList list = {0};
    char err[256];
    if (catalog_parse(body, len, cloud, dcs, n_dcs, &list, err, sizeof err) == STATUS_OK) {
        for (size_t i = 0; i < list.count; i++)
            if (list.entries[i].stock > GPU_STOCK_IN || list.entries[i].price_per_hr == 0 ||
                list.entries[i].price_per_hr > CATALOG_PRICE_MAX_USD)
                abort();
        catalog_list_clear(&list);
    }

    char text[2 * RATE_RAW_MAX];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, body, n);
    text[n] = '\0';
    char *policy = strchr(text, '\n');
    if (policy)
        *policy++ = '\0';
    RateQuota q;
    ratelimit_parse(text, policy, &q);
    if (q.n > RATE_WINDOWS_MAX || (q.known && q.n == 0) || (q.malformed && q.known))
        abort();
    q.age_sec = (double)(data[0] % 100);
    long long rem = ratelimit_remaining(&q);
    long long allow = ratelimit_create_allowance(&q, 10, 2);
    if (rem < -1 || allow < -1 || (rem >= 0 && allow > rem) || (rem < 0 && allow != -1))
        abort();
    (void)ratelimit_reset_in(&q);
    return 0;
}
