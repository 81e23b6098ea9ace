/* test_billing.c -- billing_parse(): the last complete hour of RunPod's pod billing, and that a
 * malformed record is skipped and counted, never believed and never fatal.
 *
 * Pure: JSON text in, a BillingHour out. The clock is an argument (NOW = 2026-06-01T12:30:00Z).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1780317000LL /* 2026-06-01T12:30:00Z */
#define H11 "\"startTime\":\"2026-06-01T11:00:00Z\",\"endTime\":\"2026-06-01T12:00:00Z\""
#define H10 "\"startTime\":\"2026-06-01T10:00:00Z\",\"endTime\":\"2026-06-01T11:00:00Z\""
#define H12 "\"startTime\":\"2026-06-01T12:00:00Z\",\"endTime\":\"2026-06-01T13:00:00Z\""
#define DAY "\"startTime\":\"2026-06-01T00:00:00Z\",\"endTime\":\"2026-06-02T00:00:00Z\""
#define REC(t, id, amt) "{" t ",\"podId\":\"" id "\",\"totalAmount\":" amt "}"
#define BODY(recs) "{\"records\":[" recs "],\"metadata\":{}}"

static BillingHour h;

static const struct {
    const char *name;
    const char *body;
    bool have;
    double total;
    size_t pods, malformed, other;
} CASES[] = {
    {"the last complete hour, two pods", BODY(REC(H11, "a", "0.69") "," REC(H11, "b", "1.5")), true,
     2.19, 2, 0, 0},
    {"the partial current hour is not used", BODY(REC(H11, "a", "0.69") "," REC(H12, "a", "0.30")),
     true, 0.69, 1, 0, 1},
    {"the newest complete hour wins", BODY(REC(H10, "a", "9") "," REC(H11, "a", "0.69")), true,
     0.69, 1, 0, 1},
    {"one pod billed twice in an hour is summed",
     BODY(REC(H11, "a", "0.5") "," REC(H11, "a", "0.25")), true, 0.75, 1, 0, 0},
    {"a day bucket is not an hour", BODY(REC(DAY, "a", "16")), false, 0, 0, 0, 1},
    {"no records", BODY(""), false, 0, 0, 0, 0},
    {"malformed: no podId, string and negative amounts, absurd amount, bad time, not objects",
     BODY(REC(H11, "a", "0.69") ",{" H11 ",\"totalAmount\":50}," REC(H11, "b", "\"5\"") "," REC(
         H11, "c", "-1") "," REC(H11, "d", "1e12") ",{\"startTime\":\"x\",\"endTime\":\"y\","
                                                   "\"podId\":\"e\",\"totalAmount\":3},"
                                                   "7,null,\"s\"," REC(H11, "", "2")),
     true, 0.69, 1, 9, 0},
    {"a start after its end",
     BODY("{\"startTime\":\"2026-06-01T12:00:00Z\",\"endTime\":"
          "\"2026-06-01T11:00:00Z\",\"podId\":\"a\",\"totalAmount\":1}"),
     false, 0, 0, 1, 0},
    {"odd extra fields are ignored",
     BODY("{" H11 ",\"podId\":\"a\",\"totalAmount\":0.69,\"currency\":\"USD\",\"x\":[1]}"), true,
     0.69, 1, 0, 0},
};

START_TEST(test_billing_parse_cases)
{
    memset(&h, 0xab, sizeof h);
    char err[128];
    Status st = billing_parse(CASES[_i].body, strlen(CASES[_i].body), NOW, &h, err, sizeof err);
    ck_assert_msg(st == STATUS_OK, "%s: %s", CASES[_i].name, err);
    ck_assert_msg(h.have_bucket == CASES[_i].have, "%s: have_bucket", CASES[_i].name);
    ck_assert_msg(fabs(h.total_usd - CASES[_i].total) < 1e-9, "%s: total %f", CASES[_i].name,
                  h.total_usd);
    ck_assert_msg(h.n_pods == CASES[_i].pods, "%s: pods %zu", CASES[_i].name, h.n_pods);
    ck_assert_msg(h.malformed == CASES[_i].malformed, "%s: malformed %zu", CASES[_i].name,
                  h.malformed);
    ck_assert_msg(h.other_buckets == CASES[_i].other, "%s: other %zu", CASES[_i].name,
                  h.other_buckets);
    if (h.have_bucket)
        ck_assert_int_eq(h.bucket_end - h.bucket_start, 3600);
}
END_TEST

/* Not a ListPodBillingResponse at all: the read fails (and *out is untouched). */
START_TEST(test_billing_parse_refuses_what_is_not_billing)
{
    static const char *bad[] = {
        "", "[]", "{\"records\":{}}", "{\"records\": [", "<html>", "{\"pods\": []}", "null"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        memset(&h, 0x5a, sizeof h);
        char err[128] = "";
        ck_assert_int_eq(billing_parse(bad[i], strlen(bad[i]), NOW, &h, err, sizeof err),
                         STATUS_ERR_PARSE);
        ck_assert_msg(err[0], "no message for %s", bad[i]);
        ck_assert_uint_eq(h.n_pods, 0x5a5a5a5a5a5a5a5aULL);
    }
}
END_TEST

/* More pods than BILLING_PODS_MAX: the rest are not counted, and it says so. */
START_TEST(test_billing_parse_bounded)
{
    size_t n = BILLING_PODS_MAX + 10, cap = n * 120 + 64, len = 0;
    char *body = malloc(cap);
    ck_assert_ptr_nonnull(body);
    len += (size_t)snprintf(body + len, cap - len, "{\"records\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{" H11 ",\"podId\":\"p%zu\","
                                "\"totalAmount\":0.01}",
                                i ? "," : "", i);
    len += (size_t)snprintf(body + len, cap - len, "]}");
    char err[128];
    ck_assert_int_eq(billing_parse(body, len, NOW, &h, err, sizeof err), STATUS_OK);
    ck_assert(h.truncated);
    ck_assert_uint_eq(h.n_pods, BILLING_PODS_MAX);
    free(body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("billing");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_billing_parse_cases, 0, (int)ARRAY_LEN(CASES));
    tcase_add_test(tc, test_billing_parse_refuses_what_is_not_billing);
    tcase_add_test(tc, test_billing_parse_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
