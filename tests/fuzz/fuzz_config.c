/* fuzz_config.c -- libFuzzer harness: config_parse must survive any environment. The input is
 * split on newlines into "NAME=value" strings (names are drawn mostly from the real table so
 * the fuzzer reaches the value parsers). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Config cfg;
    static ConfigErrors errs;
    static char lines[64][1024];
    const char *envp[65];
    size_t n = 0, i = 0;
    while (n < 64 && i < size) {
        size_t start = i;
        while (i < size && data[i] != '\n')
            i++;
        size_t len = i - start;
        i++; /* skip the newline */
        if (len == 0)
            continue;
        /* A leading byte picks a real variable name; the rest is the value. */
        unsigned char pick = data[start];
        const char *value = (const char *)data + start + 1;
        int vlen = (int)(len - 1 > 900 ? 900 : len - 1);
        if (pick >= 0xf0)
            snprintf(lines[n], sizeof lines[n], "%.*s", vlen, value); /* raw NAME=value */
        else
            snprintf(lines[n], sizeof lines[n], "%s=%.*s",
                     config_var_name(pick % config_var_count()), vlen, value);
        envp[n] = lines[n];
        n++;
    }
    envp[n] = NULL;
    if (config_parse(envp, "fuzz", CONFIG_NEED_DB | CONFIG_NEED_API, &cfg, &errs) == STATUS_OK) {
        char *s = config_dump(&cfg, size % 2 == 0);
        free(s);
        char h[17];
        config_hash(&cfg, h);
    }
    return 0;
}
