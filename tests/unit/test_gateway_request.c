/* test_gateway_request.c -- unit tests of the worker dialect's parsing (src/gateway/gw_request.c,
 * pure: compiled into this test with the core alone). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_request.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TASK "0f8fad5b-d9cb-469f-a165-70867728950e"

static const struct {
    const char *in, *out; /* out NULL: refused */
} NAMES[] = {
    {"output.mp4", "output.mp4"},
    {"../../etc/passwd", "passwd"},
    {"..\\..\\win.ini", "win.ini"},
    {"/abs/path/x.png", "x.png"},
    {"my file (1).mp4", "my_file__1_.mp4"},
    {".hidden", "hidden"},
    {"...", NULL},
    {"..", NULL},
    {"", NULL},
    {"a/", NULL},
    {"new\nline\x01.mp4", "new_line_.mp4"},
    {"\xc3\xa9t\xc3\xa9.mp4", "__t__.mp4"},
    {"$$$", NULL},
};

START_TEST(test_gateway_request_filenames)
{
    char out[GW_NAME_MAX] = "untouched";
    Status st = gw_sanitize_filename(NAMES[_i].in, out);
    if (!NAMES[_i].out) {
        ck_assert_msg(st == STATUS_ERR_PARSE, "%s accepted as %s", NAMES[_i].in, out);
        ck_assert_str_eq(out, "untouched");
    } else {
        ck_assert_int_eq(st, STATUS_OK);
        ck_assert_str_eq(out, NAMES[_i].out);
    }
}
END_TEST

START_TEST(test_gateway_request_long_filename_keeps_extension)
{
    char name[600], out[GW_NAME_MAX];
    memset(name, 'a', 500);
    snprintf(name + 500, sizeof name - 500, ".mp4");
    ck_assert_int_eq(gw_sanitize_filename(name, out), STATUS_OK);
    ck_assert_uint_eq(strlen(out), GW_NAME_MAX - 1);
    ck_assert_str_eq(out + strlen(out) - 4, ".mp4");
}
END_TEST

static const struct {
    const char *path;
    bool ok;
} PATHS[] = {
    {"system/tasks/" TASK "/out.mp4", true},
    {"a", true},
    {"a/b.c/d-e_f", true},
    {"../x", false},
    {"a/../b", false},
    {"/a", false},
    {"a/", false},
    {"a//b", false},
    {"a/./b", false},
    {".a", false},
    {"a/.b", false},
    {"a b", false},
    {"a\\b", false},
    {"a%2e", false},
    {"", false},
};

START_TEST(test_gateway_request_object_paths)
{
    ck_assert_msg(gw_object_path_ok(PATHS[_i].path) == PATHS[_i].ok, "%s", PATHS[_i].path);
}
END_TEST

static const struct {
    const char *in, *out; /* out NULL: refused */
} B64[] = {
    {"aGVsbG8=", "hello"},
    {"aGVsbG8", "hello"},
    {"aGVs\nbG8=", "hello"},
    {"", ""},
    {"aGVsbG8==", NULL},
    {"aGV$bG8=", NULL},
    {"a", NULL},
    {"aGVsbG8=x", NULL},
    {"/w==", "\xff"},
};

START_TEST(test_gateway_request_base64)
{
    unsigned char buf[32];
    long n = gw_base64_decode(B64[_i].in, strlen(B64[_i].in), buf, sizeof buf);
    if (!B64[_i].out) {
        ck_assert_msg(n == -1, "%s decoded", B64[_i].in);
        return;
    }
    ck_assert_int_eq(n, (long)strlen(B64[_i].out));
    ck_assert(memcmp(buf, B64[_i].out, (size_t)n) == 0);
}
END_TEST

START_TEST(test_gateway_request_heartbeat)
{
    GwHeartbeat hb;
    GwError e;
    const char *body = "{\"worker_id_param\":\"gpu-1\",\"vram_total_mb_param\":0,"
                       "\"vram_used_mb_param\":0,\"status_param\":\"crashed\",\"logs_param\":"
                       "[{\"message\":\"m\",\"task_id\":\"unknown_task_1\",\"level\":\"INFO\"},"
                       "{\"message\":\"t\",\"task_id\":\"" TASK "\"},7,{\"level\":\"x\"}]}";
    ck_assert_int_eq(gw_parse_heartbeat(body, strlen(body), &hb, &e), STATUS_OK);
    ck_assert_str_eq(hb.worker_id, "gpu-1");
    ck_assert(!hb.vram_known); /* 0, 0 = unknown */
    ck_assert(hb.crashed);
    ck_assert_uint_eq(hb.n_logs, 2);
    ck_assert_uint_eq(hb.n_dropped, 2);
    ck_assert_ptr_nonnull(strstr(hb.logs_json, "\"task_ref\":\"unknown_task_1\""));
    ck_assert_ptr_nonnull(strstr(hb.logs_json, "\"task_id\":\"" TASK "\""));
    gw_heartbeat_clear(&hb);
    const char *known = "{\"worker_id_param\":\"gpu-1\",\"vram_total_mb_param\":24564,"
                        "\"vram_used_mb_param\":100}";
    ck_assert_int_eq(gw_parse_heartbeat(known, strlen(known), &hb, &e), STATUS_OK);
    ck_assert(hb.vram_known && hb.vram_total_mb == 24564 && hb.vram_used_mb == 100 && !hb.crashed);
    gw_heartbeat_clear(&hb);
    static const char *const bad[] = {"",
                                      "[]",
                                      "{}",
                                      "{\"worker_id_param\":1}",
                                      "{\"worker_id_param\":\"a b\"}",
                                      "{\"worker_id_param\":\"w\",\"vram_total_mb_param\":-1}",
                                      "{\"worker_id_param\":\"w\",\"vram_total_mb_param\":1.5}",
                                      "{\"worker_id_param\":\"w\",\"logs_param\":{}}",
                                      "{\"worker_id_param\":\"w\",\"status_param\":false}"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        ck_assert_msg(gw_parse_heartbeat(bad[i], strlen(bad[i]), &hb, &e) == STATUS_ERR_PARSE, "%s",
                      bad[i]);
        ck_assert(e.message[0]);
    }
}
END_TEST

START_TEST(test_gateway_request_status_and_complete)
{
    GwStatusUpdate u;
    GwError e;
    const char *f = "{\"task_id\":\"" TASK "\",\"status\":\"Failed\",\"output_location\":\"oom\"}";
    ck_assert_int_eq(gw_parse_status_update(f, strlen(f), &u, &e), STATUS_OK);
    ck_assert(u.status == GW_STATUS_FAILED && u.has_text && strcmp(u.text, "oom") == 0);
    const char *q = "{\"task_id\":\"" TASK "\",\"status\":\"Queued\"}";
    ck_assert_int_eq(gw_parse_status_update(q, strlen(q), &u, &e), STATUS_ERR_PARSE);

    GwComplete c;
    const char *file =
        "{\"task_id\":\"" TASK "\",\"file_data\":\"aGk=\",\"filename\":\"../x.mp4\"}";
    ck_assert_int_eq(gw_parse_complete(file, strlen(file), &c, &e), STATUS_OK);
    ck_assert(c.kind == GW_COMPLETE_FILE);
    ck_assert_str_eq(c.filename, "x.mp4");
    gw_complete_clear(&c);
    const char *sp = "{\"task_id\":\"" TASK "\",\"storage_path\":\"p/tasks/t/a.mp4\"}";
    ck_assert_int_eq(gw_parse_complete(sp, strlen(sp), &c, &e), STATUS_OK);
    ck_assert(c.kind == GW_COMPLETE_STORAGE_PATH);
    gw_complete_clear(&c);
    const char *trav = "{\"task_id\":\"" TASK "\",\"storage_path\":\"../../etc/passwd\"}";
    ck_assert_int_eq(gw_parse_complete(trav, strlen(trav), &c, &e), STATUS_ERR_PARSE);
    const char *none = "{\"task_id\":\"" TASK "\"}";
    ck_assert_int_eq(gw_parse_complete(none, strlen(none), &c, &e), STATUS_ERR_PARSE);
}
END_TEST

static const struct {
    const char *name;
    GwQueryArg args[6];
    size_t n;
    Status want;
    unsigned columns;
    int limit;
} QUERIES[] = {
    {"the worker's query",
     {{"select", "id,params,task_type,project_id"},
      {"worker_id", "eq.gpu-1"},
      {"status", "eq.In Progress"},
      {"limit", "1"}},
     4,
     STATUS_OK,
     GW_COL_ID | GW_COL_PARAMS | GW_COL_TASK_TYPE | GW_COL_PROJECT_ID,
     1},
    {"select star, big limit",
     {{"worker_id", "eq.gpu-1"}, {"status", "eq.In Progress"}, {"select", "*"}, {"limit", "500"}},
     4,
     STATUS_OK,
     ~0u,
     100},
    {"other status",
     {{"worker_id", "eq.gpu-1"}, {"status", "eq.Queued"}},
     2,
     STATUS_ERR_NOT_FOUND,
     0,
     0},
    {"no worker filter", {{"status", "eq.In Progress"}}, 1, STATUS_ERR_NOT_FOUND, 0, 0},
    {"other operator",
     {{"worker_id", "neq.gpu-1"}, {"status", "eq.In Progress"}},
     2,
     STATUS_ERR_NOT_FOUND,
     0,
     0},
    {"extra filter",
     {{"worker_id", "eq.gpu-1"}, {"status", "eq.In Progress"}, {"task_type", "eq.x"}},
     3,
     STATUS_ERR_NOT_FOUND,
     0,
     0},
    {"unknown column",
     {{"worker_id", "eq.gpu-1"}, {"status", "eq.In Progress"}, {"select", "secret"}},
     3,
     STATUS_ERR_PARSE,
     0,
     0},
    {"bad limit",
     {{"worker_id", "eq.gpu-1"}, {"status", "eq.In Progress"}, {"limit", "-1"}},
     3,
     STATUS_ERR_PARSE,
     0,
     0},
};

START_TEST(test_gateway_request_tasks_query)
{
    GwTasksQuery q;
    GwError e;
    Status st = gw_parse_tasks_query(QUERIES[_i].args, QUERIES[_i].n, &q, &e);
    ck_assert_msg(st == QUERIES[_i].want, "%s: %d", QUERIES[_i].name, (int)st);
    if (st == STATUS_OK) {
        ck_assert_str_eq(q.worker_id, "gpu-1");
        ck_assert_uint_eq(q.columns, QUERIES[_i].columns);
        ck_assert_int_eq(q.limit, QUERIES[_i].limit);
    }
}
END_TEST

static Suite *gateway_request_suite(void)
{
    Suite *s = suite_create("gateway_request");
    TCase *tc = tcase_create("gateway_request");
    tcase_add_loop_test(tc, test_gateway_request_filenames, 0, (int)ARRAY_LEN(NAMES));
    tcase_add_test(tc, test_gateway_request_long_filename_keeps_extension);
    tcase_add_loop_test(tc, test_gateway_request_object_paths, 0, (int)ARRAY_LEN(PATHS));
    tcase_add_loop_test(tc, test_gateway_request_base64, 0, (int)ARRAY_LEN(B64));
    tcase_add_test(tc, test_gateway_request_heartbeat);
    tcase_add_test(tc, test_gateway_request_status_and_complete);
    tcase_add_loop_test(tc, test_gateway_request_tasks_query, 0, (int)ARRAY_LEN(QUERIES));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gateway_request_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
