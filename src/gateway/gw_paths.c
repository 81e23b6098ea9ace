/* gw_paths.c -- file names, object paths and base64 of the worker dialect (see gw_request.h).
 *
 * Pure, like gw_request.c (split from it under the module size): no I/O, clock, logging or
 * globals. Every input is untrusted: lengths are explicit and outputs bounded.
 */
#include "gw_request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

Status gw_sanitize_filename(const char *name, char out[GW_NAME_MAX])
{
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    while (*base == '.' || *base == ' ')
        base++; /* no hidden files, no "." or ".." */
    size_t n = strlen(base);
    if (n == 0)
        return STATUS_ERR_PARSE;
    char buf[GW_NAME_MAX];
    size_t keep = n;
    const char *ext = strrchr(base, '.');
    size_t ext_len = ext ? strlen(ext) : 0;
    if (ext_len > 16)
        ext_len = 0;
    if (keep > GW_NAME_MAX - 1) {
        /* Cut the stem, keep a short extension. */
        size_t stem = GW_NAME_MAX - 1 - ext_len;
        for (size_t i = 0; i < stem; i++)
            buf[i] = name_char_ok(base[i]) ? base[i] : '_';
        for (size_t i = 0; i < ext_len; i++)
            buf[stem + i] = name_char_ok(ext[i]) ? ext[i] : '_';
        keep = stem + ext_len;
    } else {
        for (size_t i = 0; i < n; i++)
            buf[i] = name_char_ok(base[i]) ? base[i] : '_';
    }
    buf[keep] = '\0';
    bool useful = false;
    for (size_t i = 0; i < keep; i++)
        if (buf[i] != '_' && buf[i] != '.')
            useful = true;
    if (!useful)
        return STATUS_ERR_PARSE;
    memcpy(out, buf, keep + 1);
    return STATUS_OK;
}

bool gw_object_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n >= GW_PATH_MAX)
        return false;
    const char *seg = path;
    for (size_t i = 0; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            size_t len = (size_t)(path + i - seg);
            if (len == 0 || seg[0] == '.')
                return false; /* empty segment (leading, doubled or trailing '/'), dot files */
            seg = path + i + 1;
        } else if (!name_char_ok(path[i])) {
            return false;
        }
    }
    return true;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t gw_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

long gw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t j = 0, pad = 0, count = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '\r' || c == '\n' || c == ' ')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad)
            return -1; /* bad character, or data after padding */
        count++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (j >= cap)
                return -1;
            out[j++] = (unsigned char)((acc >> bits) & 0xff);
        }
        acc &= 0xffffu;
    }
    if (count % 4 == 1 || pad > 2 || (pad && (count + pad) % 4 != 0))
        return -1;
    return (long)j;
}
