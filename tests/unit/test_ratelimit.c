/* test_ratelimit.c -- RunPod's RateLimit / RateLimit-Policy headers (src/core/ratelimit.c).
 *
 * Pure, table-driven: what a header says, what a hostile or garbled one is taken to say
 * (nothing: unknown), how the quota ages, and how many creates it allows.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char SPEC_LIMIT[] = "\"minute\";r=0;t=12, \"hour\";r=2800;t=1812, "
                                 "\"day\";r=49500;t=45012";
static const char SPEC_POLICY[] = "\"minute\";q=60;w=60, \"hour\";q=3000;w=3600, "
                                  "\"day\";q=50000;w=86400";

/* The OpenAPI document's example, window by window. */
START_TEST(test_ratelimit_spec_example)
{
    RateQuota q;
    ck_assert_int_eq(ratelimit_parse(SPEC_LIMIT, SPEC_POLICY, &q), STATUS_OK);
    ck_assert(q.known && !q.malformed && !q.policy_malformed);
    ck_assert_uint_eq(q.n, 3);
    const RateWindow *m = ratelimit_window(&q, "minute");
    const RateWindow *h = ratelimit_window(&q, "hour");
    const RateWindow *d = ratelimit_window(&q, "day");
    ck_assert(m && h && d);
    ck_assert_int_eq(m->remaining, 0);
    ck_assert_int_eq(m->reset_sec, 12);
    ck_assert_int_eq(m->quota, 60);
    ck_assert_int_eq(m->window_sec, 60);
    ck_assert_int_eq(h->remaining, 2800);
    ck_assert_int_eq(h->quota, 3000);
    ck_assert_int_eq(d->reset_sec, RATE_RESET_MAX_SEC); /* t=45012 believed for an hour at most */
    ck_assert_int_eq(d->window_sec, 86400);
    ck_assert_int_eq(ratelimit_remaining(&q), 0);
    ck_assert_double_eq_tol(ratelimit_reset_in(&q), 12, 1e-9);
}
END_TEST

/* Fields that parse: what the smallest remaining count is. */
static const struct {
    const char *name, *limit, *policy;
    size_t windows;
    long long remaining;
} GOOD[] = {
    {"one window", "\"minute\";r=59;t=60", NULL, 1, 59},
    {"token name", "minute;r=7;t=3", NULL, 1, 7},
    {"leading and trailing spaces", "   \"m\";r=5;t=1   ", NULL, 1, 5},
    {"tabs around commas", "\"a\";r=5;t=1\t,\t\"b\";r=3;t=9", NULL, 2, 3},
    {"space after semicolon", "\"m\"; r=4; t=2", NULL, 1, 4},
    {"unknown parameters are ignored", "\"m\";r=9;t=1;pk=:cGsx:;qu=\"requests\";x=?1;y=1.5", NULL,
     1, 9},
    {"t is optional", "\"m\";r=9", NULL, 1, 9},
    {"the same name twice: the smaller counts", "\"m\";r=9;t=1, \"m\";r=2;t=1", NULL, 2, 2},
    {"zero remaining", "\"m\";r=0;t=30", NULL, 1, 0},
    {"15 digits", "\"m\";r=999999999999999;t=1", NULL, 1, 999999999999999LL},
    {"escaped quote in a name", "\"a\\\"b\";r=3", NULL, 1, 3},
    {"policy without the window", "\"m\";r=3;t=5", "\"other\";q=10;w=60", 1, 3},
};

START_TEST(test_ratelimit_good)
{
    RateQuota q;
    Status st = ratelimit_parse(GOOD[_i].limit, GOOD[_i].policy, &q);
    ck_assert_msg(st == STATUS_OK && q.known, "%s: %s", GOOD[_i].name, status_str(st));
    ck_assert_msg(q.n == GOOD[_i].windows, "%s: %zu windows", GOOD[_i].name, q.n);
    ck_assert_msg(ratelimit_remaining(&q) == GOOD[_i].remaining, "%s: remaining %lld",
                  GOOD[_i].name, ratelimit_remaining(&q));
}
END_TEST

/* Hostile, garbled or foreign-format fields: unknown, never a guess and never a crash. */
static const char *const BAD[] = {
    "",                                                      /* absent (not malformed) */
    "   ",                                                   /* nothing but blanks */
    "\"m\";r=5;t=1,",                                        /* trailing comma */
    ",\"m\";r=5",                                            /* leading comma */
    "\"m\";r=5,,\"n\";r=1",                                  /* empty member */
    "\"m\";t=12",                                            /* no remaining count */
    "\"m\";r=-1;t=12",                                       /* negative */
    "\"m\";r=1.5;t=12",                                      /* decimal */
    "\"m\";r=\"5\";t=12",                                    /* string */
    "\"m\";r;t=12",                                          /* r=?1 (a boolean) */
    "\"m\";r=1234567890123456",                              /* 16 digits */
    "\"m\";r=5;t=-3",                                        /* negative reset */
    "\"m;r=5",                                               /* unterminated string */
    "\"m\x01\";r=5",                                         /* control character */
    "\"m\xc3\xa9\";r=5",                                     /* not ASCII */
    "(\"m\" \"n\");r=5",                                     /* inner list */
    "5;r=5",                                                 /* a number as a name */
    "?1;r=5",                                                /* a boolean as a name */
    "limit=100, remaining=50, reset=30",                     /* an older draft's dictionary */
    "100",                                                   /* RateLimit-Limit style */
    "\"m\";r=5 \"n\";r=4",                                   /* two members without a comma */
    "\"m\";R=5",                                             /* upper-case key */
    "\"m\";r=5;;t=1",                                        /* empty parameter */
    "\"m\";r==5",                                            /* double equals */
    "\"m\"\";r=5",                                           /* stray quote */
    "a;r=1,b;r=1,c;r=1,d;r=1,e;r=1,f;r=1,g;r=1,h;r=1,i;r=1", /* nine windows */
    "<html><body>502 Bad Gateway</body></html>",
    "\"m\";r=5;t=1\r\nX-Injected: 1",
};

START_TEST(test_ratelimit_bad)
{
    RateQuota q;
    Status st = ratelimit_parse(BAD[_i], NULL, &q);
    ck_assert_msg(!q.known && q.n == 0, "case %d (%s) was read", _i, BAD[_i]);
    ck_assert_msg(ratelimit_remaining(&q) == -1, "case %d: remaining %lld", _i,
                  ratelimit_remaining(&q));
    ck_assert_msg(ratelimit_create_allowance(&q, 10, 0) == -1, "case %d: an allowance", _i);
    if (BAD[_i][0])
        ck_assert_msg(st == STATUS_ERR_PARSE && q.malformed, "case %d: not malformed", _i);
    else
        ck_assert_int_eq(st, STATUS_ERR_NOT_FOUND);
}
END_TEST

/* A field longer than RATE_RAW_MAX is not read at all. */
START_TEST(test_ratelimit_too_long)
{
    char big[RATE_RAW_MAX + 64];
    size_t n = 0;
    n += (size_t)snprintf(big, sizeof big, "\"m\";r=5");
    while (n + 8 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, ";x=1");
    RateQuota q;
    ck_assert_int_eq(ratelimit_parse(big, NULL, &q), STATUS_ERR_PARSE);
    ck_assert(!q.known && q.malformed);
}
END_TEST

/* A broken policy does not hide a good RateLimit, and a policy member without q is broken. */
START_TEST(test_ratelimit_bad_policy)
{
    RateQuota q;
    ck_assert_int_eq(ratelimit_parse("\"m\";r=5;t=10", "\"m\";w=60", &q), STATUS_OK);
    ck_assert(q.known && q.policy_malformed);
    ck_assert_int_eq(q.w[0].quota, -1);
    ck_assert_int_eq(ratelimit_parse("\"m\";r=5;t=10", "garbage ;;", &q), STATUS_OK);
    ck_assert(q.known && q.policy_malformed);
}
END_TEST

/* How the quota ages: a window whose reset passed is full again (its policy quota) or unknown
 * without a policy; a Retry-After holds everything at 0 until it passes. */
static const struct {
    const char *name, *limit, *policy;
    double age, retry_after;
    long long remaining;
    double reset_in;
} AGING[] = {
    {"fresh", SPEC_LIMIT, SPEC_POLICY, 0, -1, 0, 12},
    {"11 s later the minute is still empty", SPEC_LIMIT, SPEC_POLICY, 11, -1, 0, 1},
    {"after the minute's reset it is full again (60)", SPEC_LIMIT, SPEC_POLICY, 12, -1, 60, 1800},
    {"reset without a policy: unknown window skipped", SPEC_LIMIT, NULL, 13, -1, 2800, 1799},
    {"every window reset, no policy: unknown", "\"m\";r=0;t=5", NULL, 6, -1, -1, -1},
    /* A window without t resets after its w, else after 60 s; t is believed up to min(w, 3600)
     * (review of issue 16, defect 3: a window at 0 without t stalled the fleet for ever). */
    {"no reset time: 0 until its w", "\"m\";r=0", "\"m\";q=60;w=60", 59, -1, 0, 1},
    {"no reset time: full again after its w", "\"m\";r=0", "\"m\";q=60;w=60", 60, -1, 60, -1},
    {"no reset time, a day's w: an hour at most", "\"d\";r=0", "\"d\";q=9;w=86400", 3600, -1, 9,
     -1},
    {"no reset time nor policy: 0 for 60 s", "\"m\";r=0", NULL, 59, -1, 0, 1},
    {"no reset time nor policy: unknown after 60 s", "\"m\";r=0", NULL, 60, -1, -1, -1},
    {"t past w: reset at w", "\"m\";r=0;t=900", "\"m\";q=60;w=60", 60, -1, 60, -1},
    {"a huge t without w: an hour at most", "\"m\";r=0;t=999999", NULL, 3599, -1, 0, 1},
    {"a huge t without w: reset after an hour", "\"m\";r=0;t=999999", NULL, 3600, -1, -1, -1},
    {"Retry-After pending", "\"m\";r=40;t=5", NULL, 1, 3, 0, 2},
    {"Retry-After passed", "\"m\";r=40;t=50", NULL, 4, 3, 40, 46},
    {"Retry-After with no header", NULL, NULL, 0, 2, 0, 2},
};

START_TEST(test_ratelimit_aging)
{
    RateQuota q;
    ratelimit_parse(AGING[_i].limit, AGING[_i].policy, &q);
    q.age_sec = AGING[_i].age;
    q.retry_after_sec = AGING[_i].retry_after;
    ck_assert_msg(ratelimit_remaining(&q) == AGING[_i].remaining, "%s: remaining %lld",
                  AGING[_i].name, ratelimit_remaining(&q));
    ck_assert_msg(ratelimit_reset_in(&q) == AGING[_i].reset_in, "%s: reset in %g", AGING[_i].name,
                  ratelimit_reset_in(&q));
}
END_TEST

/* Creates allowed: remaining - reserve - other calls, at least 0; -1 (no limit) unknown. */
static const struct {
    const char *limit;
    long long reserve, other, want;
} ALLOW[] = {
    {"\"m\";r=30;t=60", 10, 0, 20}, {"\"m\";r=30;t=60", 10, 5, 15},  {"\"m\";r=12;t=60", 10, 5, 0},
    {"\"m\";r=0;t=60", 0, 0, 0},    {"\"m\";r=30;t=60", -5, -5, 30}, {NULL, 10, 0, -1},
};

START_TEST(test_ratelimit_allowance)
{
    RateQuota q;
    ratelimit_parse(ALLOW[_i].limit, NULL, &q);
    ck_assert_int_eq(ratelimit_create_allowance(&q, ALLOW[_i].reserve, ALLOW[_i].other),
                     ALLOW[_i].want);
}
END_TEST

/* Whether the pod list waits: a "0 left" holds it for RATE_LIST_DEFER_MAX_SEC after it was
 * seen at most (then the list goes, and brings a fresh header); a Retry-After holds it until it
 * passes; anything else never. */
static const struct {
    const char *name, *limit, *policy;
    double age, retry_after;
    bool defer;
} DEFER[] = {
    {"0 left, just seen", "\"h\";r=0;t=3000", NULL, 10, -1, true},
    {"0 left, seen a minute ago: the list goes", "\"h\";r=0;t=3000", NULL, 60, -1, false},
    {"0 left without t, just seen", "\"m\";r=0", NULL, 30, -1, true},
    {"calls left", "\"m\";r=5;t=30", NULL, 0, -1, false},
    {"unknown quota", NULL, NULL, 0, -1, false},
    {"a Retry-After pending", "\"m\";r=40;t=5", NULL, 100, 120, true},
    {"a Retry-After passed", "\"m\";r=40;t=500", NULL, 121, 120, false},
};

START_TEST(test_ratelimit_defer_list)
{
    RateQuota q;
    ratelimit_parse(DEFER[_i].limit, DEFER[_i].policy, &q);
    q.age_sec = DEFER[_i].age;
    q.retry_after_sec = DEFER[_i].retry_after;
    ck_assert_msg(ratelimit_defer_list(&q) == DEFER[_i].defer, "%s", DEFER[_i].name);
}
END_TEST

/* A zeroed quota (a snapshot built by hand, an old process) is unknown, not "0 left". */
START_TEST(test_ratelimit_zeroed_is_unknown)
{
    RateQuota q;
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(ratelimit_remaining(&q), -1);
    ck_assert_int_eq(ratelimit_create_allowance(&q, 10, 3), -1);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("test_ratelimit_parse");
    tcase_add_test(tc, test_ratelimit_spec_example);
    tcase_add_loop_test(tc, test_ratelimit_good, 0, (int)ARRAY_LEN(GOOD));
    tcase_add_loop_test(tc, test_ratelimit_bad, 0, (int)ARRAY_LEN(BAD));
    tcase_add_test(tc, test_ratelimit_too_long);
    tcase_add_test(tc, test_ratelimit_bad_policy);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_ratelimit_quota");
    tcase_add_loop_test(tc, test_ratelimit_aging, 0, (int)ARRAY_LEN(AGING));
    tcase_add_loop_test(tc, test_ratelimit_allowance, 0, (int)ARRAY_LEN(ALLOW));
    tcase_add_loop_test(tc, test_ratelimit_defer_list, 0, (int)ARRAY_LEN(DEFER));
    tcase_add_test(tc, test_ratelimit_zeroed_is_unknown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ratelimit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
