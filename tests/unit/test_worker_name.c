/* test_worker_name.c -- our worker names: formatting, and recognising only names of exactly our
 * shape (issue 12.7: a pod that merely starts with the prefix is somebody else's). */
#include <check.h>
#include <string.h>

#include "worker_name.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_worker_name_format)
{
    const unsigned char r[4] = {0x0a, 0x1b, 0xc2, 0xff};
    char out[64];
    ck_assert(worker_name_format("gpu-", 1796299200LL, r, out, sizeof out)); /* 2026-12-03 */
    ck_assert_str_eq(out, "gpu-20261203_120000-0a1bc2ff");
    ck_assert(worker_name_matches("gpu-", out));
    ck_assert(worker_name_format("x-", 0, r, out, sizeof out));
    ck_assert_str_eq(out, "x-19700101_000000-0a1bc2ff");
    ck_assert(worker_name_format("gpu-", 951782400LL, r, out, sizeof out)); /* leap day */
    ck_assert_str_eq(out, "gpu-20000229_000000-0a1bc2ff");
    ck_assert(!worker_name_format("gpu-", 1796299200LL, r, out, 10));
    ck_assert_str_eq(out, "");
    ck_assert(!worker_name_format("gpu-", -1, r, out, sizeof out));
}
END_TEST

static const struct {
    const char *prefix, *name;
    bool want;
} MATCH[] = {
    {"gpu-", "gpu-20261130_120000-0a1b2c3d", true},
    {"gpu-", "gpu-x", false},
    {"gpu-", "gpu-20261130_120000-0a1b2c3", false},
    {"gpu-", "gpu-20261130_120000-0a1b2c3d0", false},
    {"gpu-", "gpu-20261130_120000-0A1B2C3D", false},
    {"gpu-", "gpu-20261130-120000-0a1b2c3d", false},
    {"gpu-", "gpu-2026113a_120000-0a1b2c3d", false},
    {"gpu-", "my-gpu-20261130_120000-0a1b2c3d", false},
    {"gpu-", "gpu-gpu-20261130_120000-0a1b2c3d", false},
    {"gpu-", "", false},
    {"", "20261130_120000-0a1b2c3d", false},
    {"video-pool-", "video-pool-20261130_120000-deadbeef", true},
    {"gpu-", "gpu-20261130_120000-0a1b2c3d\n", false},
};

START_TEST(test_worker_name_matches)
{
    ck_assert_msg(worker_name_matches(MATCH[_i].prefix, MATCH[_i].name) == MATCH[_i].want,
                  "%s / %s", MATCH[_i].prefix, MATCH[_i].name);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("worker_name");
    TCase *tc = tcase_create("test_worker_name");
    tcase_add_test(tc, test_worker_name_format);
    tcase_add_loop_test(tc, test_worker_name_matches, 0, (int)ARRAY_LEN(MATCH));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
