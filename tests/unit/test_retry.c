/* test_retry.c -- retry.c from tables: every classification row of SPEC 7, the retry decision,
 * the backoff bounds and Retry-After parsing. Pure; no I/O. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retry.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    RunpodOp op;
    RunpodTransport xport;
    long status;
    RunpodErrorClass want;
} CLASSIFY[] = {
    {"201 create", RP_OP_CREATE, RP_XPORT_OK, 201, RP_OK},
    {"200 get", RP_OP_GET, RP_XPORT_OK, 200, RP_OK},
    {"200 list", RP_OP_LIST, RP_XPORT_OK, 200, RP_OK},
    {"204 delete", RP_OP_TERMINATE, RP_XPORT_OK, 204, RP_OK},
    {"400 create = no capacity", RP_OP_CREATE, RP_XPORT_OK, 400, RP_NO_CAPACITY},
    {"400 get = bad request", RP_OP_GET, RP_XPORT_OK, 400, RP_BAD_REQUEST},
    {"400 list = bad request", RP_OP_LIST, RP_XPORT_OK, 400, RP_BAD_REQUEST},
    {"400 delete = bad request", RP_OP_TERMINATE, RP_XPORT_OK, 400, RP_BAD_REQUEST},
    {"401 auth", RP_OP_CREATE, RP_XPORT_OK, 401, RP_AUTH},
    {"403 auth", RP_OP_LIST, RP_XPORT_OK, 403, RP_AUTH},
    {"402 balance", RP_OP_CREATE, RP_XPORT_OK, 402, RP_BALANCE},
    {"404 get gone", RP_OP_GET, RP_XPORT_OK, 404, RP_NOT_FOUND},
    {"404 delete gone", RP_OP_TERMINATE, RP_XPORT_OK, 404, RP_NOT_FOUND},
    {"409 conflict", RP_OP_TERMINATE, RP_XPORT_OK, 409, RP_CONFLICT},
    {"410 retired", RP_OP_LIST, RP_XPORT_OK, 410, RP_RETIRED},
    {"422 invalid", RP_OP_CREATE, RP_XPORT_OK, 422, RP_INVALID},
    {"429 rate limited", RP_OP_GET, RP_XPORT_OK, 429, RP_RATE_LIMITED},
    {"500 server", RP_OP_CREATE, RP_XPORT_OK, 500, RP_SERVER},
    {"502 server", RP_OP_LIST, RP_XPORT_OK, 502, RP_SERVER},
    {"503 server", RP_OP_GET, RP_XPORT_OK, 503, RP_SERVER},
    {"599 server", RP_OP_TERMINATE, RP_XPORT_OK, 599, RP_SERVER},
    {"transport error", RP_OP_CREATE, RP_XPORT_ERROR, 0, RP_TRANSPORT},
    {"transport ignores status", RP_OP_GET, RP_XPORT_ERROR, 200, RP_TRANSPORT},
    {"timeout", RP_OP_LIST, RP_XPORT_TIMEOUT, 0, RP_TIMEOUT},
    {"too large", RP_OP_LIST, RP_XPORT_TOO_LARGE, 200, RP_PARSE},
    {"301 unexpected", RP_OP_GET, RP_XPORT_OK, 301, RP_UNEXPECTED},
    {"405 unexpected", RP_OP_GET, RP_XPORT_OK, 405, RP_UNEXPECTED},
    {"100 unexpected", RP_OP_GET, RP_XPORT_OK, 100, RP_UNEXPECTED},
    {"0 unexpected", RP_OP_GET, RP_XPORT_OK, 0, RP_UNEXPECTED},
    {"600 unexpected", RP_OP_GET, RP_XPORT_OK, 600, RP_UNEXPECTED},
};

START_TEST(test_retry_classify)
{
    RunpodErrorClass got = retry_classify(CLASSIFY[_i].op, CLASSIFY[_i].xport, CLASSIFY[_i].status);
    ck_assert_msg(got == CLASSIFY[_i].want, "%s: got %s want %s", CLASSIFY[_i].name,
                  runpod_error_str(got), runpod_error_str(CLASSIFY[_i].want));
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    RunpodErrorClass cls;
    int attempts_made, max_retries;
    bool has_retry_after;
    RetryDecision want;
} DECIDE[] = {
    {"ok is final", RP_OK, 1, 3, false, RETRY_NO},
    {"5xx retried", RP_SERVER, 1, 3, false, RETRY_AFTER_BACKOFF},
    {"5xx last retry", RP_SERVER, 3, 3, false, RETRY_AFTER_BACKOFF},
    {"5xx exhausted", RP_SERVER, 4, 3, false, RETRY_NO},
    {"5xx no retries allowed", RP_SERVER, 1, 0, false, RETRY_NO},
    {"negative max_retries", RP_SERVER, 1, -5, false, RETRY_NO},
    {"transport retried", RP_TRANSPORT, 1, 2, false, RETRY_AFTER_BACKOFF},
    {"timeout retried", RP_TIMEOUT, 2, 2, false, RETRY_AFTER_BACKOFF},
    {"timeout exhausted", RP_TIMEOUT, 3, 2, false, RETRY_NO},
    {"429 with header", RP_RATE_LIMITED, 1, 3, true, RETRY_AFTER_HEADER},
    {"429 without header", RP_RATE_LIMITED, 1, 3, false, RETRY_AFTER_BACKOFF},
    {"429 counts as an attempt", RP_RATE_LIMITED, 4, 3, true, RETRY_NO},
    {"422 never", RP_INVALID, 1, 10, false, RETRY_NO},
    {"401/403 never", RP_AUTH, 1, 10, false, RETRY_NO},
    {"402 never", RP_BALANCE, 1, 10, false, RETRY_NO},
    {"410 never", RP_RETIRED, 1, 10, false, RETRY_NO},
    {"400 capacity not repeated", RP_NO_CAPACITY, 1, 10, false, RETRY_NO},
    {"400 bad request never", RP_BAD_REQUEST, 1, 10, false, RETRY_NO},
    {"404 never", RP_NOT_FOUND, 1, 10, false, RETRY_NO},
    {"409 never", RP_CONFLICT, 1, 10, false, RETRY_NO},
    {"parse never", RP_PARSE, 1, 10, false, RETRY_NO},
    {"unexpected never", RP_UNEXPECTED, 1, 10, false, RETRY_NO},
};

START_TEST(test_retry_decide)
{
    RetryDecision got = retry_decide(DECIDE[_i].cls, DECIDE[_i].attempts_made,
                                     DECIDE[_i].max_retries, DECIDE[_i].has_retry_after);
    ck_assert_msg(got == DECIDE[_i].want, "%s: got %d want %d", DECIDE[_i].name, (int)got,
                  (int)DECIDE[_i].want);
}
END_TEST

START_TEST(test_retry_ambiguous)
{
    ck_assert(retry_is_ambiguous(RP_SERVER));
    ck_assert(retry_is_ambiguous(RP_TIMEOUT));
    ck_assert(retry_is_ambiguous(RP_TRANSPORT));
    for (int c = RP_OK; c <= RP_UNEXPECTED; c++)
        if (c != RP_SERVER && c != RP_TIMEOUT && c != RP_TRANSPORT)
            ck_assert_msg(!retry_is_ambiguous((RunpodErrorClass)c), "%s",
                          runpod_error_str((RunpodErrorClass)c));
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int retry;
    long base, max;
    long lo, hi; /* inclusive bounds for any random value */
} BACKOFF[] = {
    {"first retry", 1, 500, 8000, 250, 500},
    {"second doubles", 2, 500, 8000, 500, 1000},
    {"third", 3, 500, 8000, 1000, 2000},
    {"fifth reaches max", 5, 500, 8000, 4000, 8000},
    {"capped", 6, 500, 8000, 4000, 8000},
    {"huge retry number", 1000000, 500, 8000, 4000, 8000},
    {"max below base", 1, 5000, 1000, 500, 1000},
    {"zero base treated as 1", 1, 0, 1000, 0, 1},
    {"retry 0 as first", 0, 100, 1000, 50, 100},
    {"max 0 = no wait", 3, 100, 0, 0, 0},
    {"long max no overflow", 80, 1, 9000000000000000000L, 4500000000000000000L,
     9000000000000000000L},
};

START_TEST(test_retry_backoff_bounds)
{
    const uint32_t rands[] = {0u,          1u,          2u,          12345u,
                              0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
    for (size_t r = 0; r < ARRAY_LEN(rands); r++) {
        long d = retry_backoff_ms(BACKOFF[_i].retry, BACKOFF[_i].base, BACKOFF[_i].max, rands[r]);
        ck_assert_msg(d >= BACKOFF[_i].lo && d <= BACKOFF[_i].hi,
                      "%s: rand %u gave %ld, want [%ld, %ld]", BACKOFF[_i].name, rands[r], d,
                      BACKOFF[_i].lo, BACKOFF[_i].hi);
    }
}
END_TEST

START_TEST(test_retry_backoff_jitter_spreads)
{
    /* Different random numbers give different delays: the jitter is really applied. */
    long a = retry_backoff_ms(4, 500, 8000, 1u);
    long b = retry_backoff_ms(4, 500, 8000, 3000u);
    ck_assert_int_ne(a, b);
    ck_assert_int_eq(retry_backoff_ms(1, 500, 8000, 0u), 250);
    ck_assert_int_eq(retry_backoff_ms(1, 500, 8000, 250u), 500);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *value;
    long cap;
    long want;
} RETRY_AFTER[] = {
    {"12", 60000, 12000},   {"0", 60000, 0},      {" 3 ", 60000, 3000},
    {"3\r\n", 60000, 3000}, {"61", 60000, 60000}, {"99999999999999999999999", 60000, 60000},
    {"5", 2000, 2000},      {"5", 0, 5000}, /* cap 0 = default 60 s */
    {"120", 0, 60000},      {"", 60000, -1},      {"-1", 60000, -1},
    {"1.5", 60000, -1},     {"abc", 60000, -1},   {"Wed, 21 Oct 2015 07:28:00 GMT", 60000, -1},
    {NULL, 60000, -1},
};

START_TEST(test_retry_after_parse)
{
    long got = retry_after_ms(RETRY_AFTER[_i].value, RETRY_AFTER[_i].cap);
    ck_assert_msg(got == RETRY_AFTER[_i].want, "\"%s\" cap %ld: got %ld want %ld",
                  RETRY_AFTER[_i].value ? RETRY_AFTER[_i].value : "(null)", RETRY_AFTER[_i].cap,
                  got, RETRY_AFTER[_i].want);
}
END_TEST

START_TEST(test_retry_error_names)
{
    /* Every class has a distinct, stable name. */
    for (int a = RP_OK; a <= RP_UNEXPECTED; a++) {
        const char *na = runpod_error_str((RunpodErrorClass)a);
        ck_assert_ptr_nonnull(na);
        ck_assert_str_ne(na, "unknown");
        for (int b = a + 1; b <= RP_UNEXPECTED; b++)
            ck_assert_str_ne(na, runpod_error_str((RunpodErrorClass)b));
    }
    ck_assert_str_eq(runpod_error_str(RP_NO_CAPACITY), "no_capacity");
    ck_assert_str_eq(runpod_error_str((RunpodErrorClass)99), "unknown");
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("test_retry_classify");
    tcase_add_loop_test(tc, test_retry_classify, 0, (int)ARRAY_LEN(CLASSIFY));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_retry_decide");
    tcase_add_loop_test(tc, test_retry_decide, 0, (int)ARRAY_LEN(DECIDE));
    tcase_add_test(tc, test_retry_ambiguous);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_retry_backoff");
    tcase_add_loop_test(tc, test_retry_backoff_bounds, 0, (int)ARRAY_LEN(BACKOFF));
    tcase_add_test(tc, test_retry_backoff_jitter_spreads);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_retry_after");
    tcase_add_loop_test(tc, test_retry_after_parse, 0, (int)ARRAY_LEN(RETRY_AFTER));
    tcase_add_test(tc, test_retry_error_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(retry_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
