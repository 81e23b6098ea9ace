/* test_worker_token.c -- unit tests of the gateway's HS256 tokens (src/core/worker_token.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_token.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SECRET "unit-test-secret-0123456789abcdef-xyz"
#define NOW 1800000000LL

/* A token of worker "gpu-1" and a copy with one byte of part `part` (0..2) changed. */
static void mint(char *out)
{
    ck_assert_int_eq(worker_token_mint(SECRET, "gpu-1", NOW - 10, out, WORKER_TOKEN_MAX),
                     STATUS_OK);
}

START_TEST(test_worker_token_round_trip)
{
    char tok[WORKER_TOKEN_MAX], sub[WORKER_TOKEN_SUB_MAX] = "";
    mint(tok);
    ck_assert_int_eq(worker_token_verify(SECRET, tok, NOW, sub, sizeof sub), TOKEN_OK);
    ck_assert_str_eq(sub, "gpu-1");
    /* header is exactly {"alg":"HS256","typ":"JWT"} */
    ck_assert(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
}
END_TEST

/* Tokens that must be refused, built from a valid one or by hand. */
static const struct {
    const char *name;
    const char *token; /* NULL: derived in the test from a minted token */
    TokenError want;
} BAD[] = {
    {"empty", "", TOKEN_MALFORMED},
    {"one part", "abc", TOKEN_MALFORMED},
    {"two parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", TOKEN_MALFORMED},
    {"four parts", "a.b.c.d", TOKEN_MALFORMED},
    {"bad base64", "e$J.e.e", TOKEN_MALFORMED},
    /* {"alg":"none"} . {"sub":"gpu-1","use":"worker"} . (empty) */
    {"alg none unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJncHUtMSIsInVzZSI6IndvcmtlciJ9.",
     TOKEN_BAD_ALG},
    /* {"alg":"HS512"} */
    {"alg HS512", "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJncHUtMSIsInVzZSI6IndvcmtlciJ9.AAAA",
     TOKEN_BAD_ALG},
    /* {"typ":"JWT"}: no alg */
    {"no alg", "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJncHUtMSJ9.AAAA", TOKEN_BAD_ALG},
    {"tampered signature", NULL, TOKEN_BAD_SIGNATURE},
    {"tampered payload", NULL, TOKEN_BAD_SIGNATURE},
    {"signature cut", NULL, TOKEN_BAD_SIGNATURE},
    {"unsigned HS256", NULL, TOKEN_BAD_SIGNATURE},
};

START_TEST(test_worker_token_refusals)
{
    char tok[WORKER_TOKEN_MAX], sub[WORKER_TOKEN_SUB_MAX] = "untouched";
    mint(tok);
    const char *name = BAD[_i].name;
    if (!BAD[_i].token) {
        char *last = strrchr(tok, '.');
        if (strcmp(name, "tampered signature") == 0)
            last[5] = last[5] == 'A' ? 'B' : 'A';
        else if (strcmp(name, "tampered payload") == 0)
            last[-3] = last[-3] == 'A' ? 'B' : 'A';
        else if (strcmp(name, "signature cut") == 0)
            last[20] = '\0';
        else
            last[1] = '\0';
    } else {
        snprintf(tok, sizeof tok, "%s", BAD[_i].token);
    }
    ck_assert_msg(worker_token_verify(SECRET, tok, NOW, sub, sizeof sub) == BAD[_i].want, "%s",
                  name);
    ck_assert_str_eq(sub, "untouched");
}
END_TEST

START_TEST(test_worker_token_secret_and_kind)
{
    char tok[WORKER_TOKEN_MAX], up[WORKER_TOKEN_MAX], sub[WORKER_TOKEN_SUB_MAX];
    char task[WORKER_TOKEN_SUB_MAX];
    mint(tok);
    ck_assert_int_eq(
        worker_token_verify("another-secret-0123456789abcdef-xyz", tok, NOW, sub, sizeof sub),
        TOKEN_BAD_SIGNATURE);
    ck_assert_int_eq(worker_token_mint("short", "gpu-1", NOW, tok, sizeof tok), STATUS_ERR_CONFIG);
    ck_assert_int_eq(worker_token_mint(SECRET, "", NOW, tok, sizeof tok), STATUS_ERR_CONFIG);
    char small[40];
    ck_assert_int_eq(worker_token_mint(SECRET, "gpu-1", NOW, small, sizeof small),
                     STATUS_ERR_CAPACITY);
    /* An upload token is not a worker token and the reverse. */
    ck_assert_int_eq(
        upload_token_mint(SECRET, "gpu-1", "t-1", "p/tasks/t-1/a.mp4", NOW + 60, up, sizeof up),
        STATUS_OK);
    ck_assert_int_eq(worker_token_verify(SECRET, up, NOW, sub, sizeof sub), TOKEN_BAD_CLAIMS);
    mint(tok);
    ck_assert_int_eq(
        upload_token_verify(SECRET, tok, "p/tasks/t-1/a.mp4", NOW, sub, task, sizeof sub),
        TOKEN_BAD_CLAIMS);
    /* The upload token: its path only, until exp. */
    ck_assert_int_eq(
        upload_token_verify(SECRET, up, "p/tasks/t-1/a.mp4", NOW, sub, task, sizeof sub), TOKEN_OK);
    ck_assert_str_eq(sub, "gpu-1");
    ck_assert_str_eq(task, "t-1");
    ck_assert_int_eq(
        upload_token_verify(SECRET, up, "p/tasks/t-2/a.mp4", NOW, sub, task, sizeof sub),
        TOKEN_BAD_CLAIMS);
    ck_assert_int_eq(
        upload_token_verify(SECRET, up, "p/tasks/t-1/a.mp4", NOW + 60, sub, task, sizeof sub),
        TOKEN_EXPIRED);
}
END_TEST

static const struct {
    const char *in;
    const char *out; /* NULL: refused */
} B64[] = {
    {"", ""},
    {"YQ", "a"},
    {"YWI", "ab"},
    {"YWJj", "abc"},
    {"YWJjZA", "abcd"},
    {"Y", NULL},
    {"YQ==", NULL},
    {"Y+E", NULL},
    {"YR", NULL}, /* non-zero trailing bits */
    {"_-8", "\xff\xef"},
};

START_TEST(test_worker_token_b64url)
{
    unsigned char buf[64];
    long n = token_b64url_decode(B64[_i].in, strlen(B64[_i].in), buf, sizeof buf);
    if (!B64[_i].out) {
        ck_assert_msg(n == -1, "%s decoded", B64[_i].in);
        return;
    }
    ck_assert_int_eq(n, (long)strlen(B64[_i].out));
    ck_assert(memcmp(buf, B64[_i].out, (size_t)n) == 0);
    char enc[64];
    ck_assert_uint_eq(token_b64url_encode(buf, (size_t)n, enc, sizeof enc), strlen(B64[_i].in));
    ck_assert_str_eq(enc, B64[_i].in);
}
END_TEST

static Suite *worker_token_suite(void)
{
    Suite *s = suite_create("worker_token");
    TCase *tc = tcase_create("worker_token");
    tcase_add_test(tc, test_worker_token_round_trip);
    tcase_add_loop_test(tc, test_worker_token_refusals, 0, (int)ARRAY_LEN(BAD));
    tcase_add_test(tc, test_worker_token_secret_and_kind);
    tcase_add_loop_test(tc, test_worker_token_b64url, 0, (int)ARRAY_LEN(B64));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(worker_token_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
