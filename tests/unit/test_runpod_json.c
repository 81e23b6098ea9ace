/* test_runpod_json.c -- runpod_json.c against RunPod's recorded v2 examples
 * (tests/fixtures/runpod/, read at run time from ORCH_SOURCE_DIR) and against malformed
 * variants: truncated, nulls, wrong types, missing fields, a 10 MB body, deep nesting. */
#include <cJSON.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runpod_json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char *read_fixture(const char *name, size_t *len)
{
    const char *src = getenv("ORCH_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/runpod/%s", src && src[0] ? src : ".", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (set ORCH_SOURCE_DIR to the source tree)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert(n > 0);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static Status parse_pod_str(const char *s, Pod *out, char *err, size_t errcap)
{
    return runpod_json_parse_pod(s, strlen(s), out, err, errcap);
}

/* ---------------------------------------------------------------------------------------- */
/* fixtures */

START_TEST(test_runpod_json_fixture_running)
{
    size_t len;
    char *body = read_fixture("v2_get_running.json", &len);
    Pod p;
    char err[256] = "";
    ck_assert_int_eq(runpod_json_parse_pod(body, len, &p, err, sizeof err), STATUS_OK);
    ck_assert_str_eq(p.id, "9wq4v7k1mzr2ta");
    ck_assert_str_eq(p.name, "gpu-20260915_101500-3f9c2a1b");
    ck_assert_int_eq(p.status, POD_STATUS_RUNNING);
    ck_assert_double_eq_tol(p.cost_per_hr, 0.69, 1e-9);
    ck_assert_str_eq(p.gpu_id, "NVIDIA GeForce RTX 4090");
    ck_assert_str_eq(p.image, "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04");
    ck_assert_str_eq(p.created_at, "2026-09-15T10:15:02.117Z");
    ck_assert_int_eq(p.created_at_epoch, 1789467302LL);
    ck_assert(p.has_runtime);
    ck_assert_int_eq(p.uptime_sec, 412);
    free(body);
}
END_TEST

START_TEST(test_runpod_json_fixture_running_without_runtime)
{
    /* Recorded: v2 reports RUNNING with runtime null while the image pulls. Not an error. */
    size_t len;
    char *body = read_fixture("v2_get_starting.json", &len);
    Pod p;
    ck_assert_int_eq(runpod_json_parse_pod(body, len, &p, NULL, 0), STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_RUNNING);
    ck_assert(!p.has_runtime);
    ck_assert_int_eq(p.uptime_sec, 0);
    free(body);
}
END_TEST

START_TEST(test_runpod_json_fixture_create_ok)
{
    size_t len;
    char *body = read_fixture("v2_create_ok.json", &len);
    Pod p;
    ck_assert_int_eq(runpod_json_parse_pod(body, len, &p, NULL, 0), STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_PROVISIONING);
    ck_assert(!p.has_runtime);
    ck_assert_str_eq(p.id, "9wq4v7k1mzr2ta");
    free(body);
}
END_TEST

START_TEST(test_runpod_json_fixture_list)
{
    size_t len;
    char *body = read_fixture("v2_list.json", &len);
    PodList l = {0};
    char err[256] = "";
    ck_assert_int_eq(runpod_json_parse_list(body, len, &l, err, sizeof err), STATUS_OK);
    ck_assert_uint_eq(l.count, 1);
    ck_assert_str_eq(l.pods[0].id, "9wq4v7k1mzr2ta");
    ck_assert(l.pods[0].has_runtime);
    pod_list_clear(&l);
    ck_assert_ptr_null(l.pods);
    ck_assert_uint_eq(l.count, 0);
    pod_list_clear(&l);   /* twice is fine */
    pod_list_clear(NULL); /* NULL-safe */
    free(body);
}
END_TEST

static const struct {
    const char *file;
    const char *title;
    const char *detail;
} PROBLEMS[] = {
    {"v2_error_insufficient_balance_402.json", "Payment Required", "insufficient balance"},
    {"v2_error_no_capacity.json", "Bad Request",
     "There are no longer any instances available with the requested specifications. Please "
     "refresh and try again."},
    {"v2_error_not_found.json", "Not Found", "resource not found"},
    {"v2_error_rate_limited_429.json", "Too Many Requests",
     "rate limit exceeded for the minute window"},
    {"v2_error_unauthorized.json", "Unauthorized", "missing bearer token"},
    {"v2_error_validation_422.json", "Unprocessable Entity",
     "Request validation failed. ($: additional properties 'gpuTypeIds' not allowed)"},
};

START_TEST(test_runpod_json_fixture_problems)
{
    size_t len;
    char *body = read_fixture(PROBLEMS[_i].file, &len);
    char title[64], detail[512];
    ck_assert_int_eq(
        runpod_json_parse_problem(body, len, title, sizeof title, detail, sizeof detail),
        STATUS_OK);
    ck_assert_str_eq(title, PROBLEMS[_i].title);
    ck_assert_str_eq(detail, PROBLEMS[_i].detail);
    /* A problem body is not a pod. */
    Pod p;
    ck_assert_int_eq(runpod_json_parse_pod(body, len, &p, NULL, 0), STATUS_ERR_PARSE);
    free(body);
}
END_TEST

START_TEST(test_runpod_json_problem_malformed)
{
    char title[8] = "keep", detail[8] = "keep";
    const char *bad[] = {"", "nope", "[1,2]", "\"str\"", "{\"title\":", "null"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        ck_assert_int_eq(runpod_json_parse_problem(bad[i], strlen(bad[i]), title, sizeof title,
                                                   detail, sizeof detail),
                         STATUS_ERR_PARSE);
        ck_assert_str_eq(title, "keep");
    }
    /* Wrong types inside an object give empty strings, truncation is safe. */
    const char *odd = "{\"title\": 5, \"detail\": \"a long detail text\", \"errors\": [1, \"x\"]}";
    ck_assert_int_eq(
        runpod_json_parse_problem(odd, strlen(odd), title, sizeof title, detail, sizeof detail),
        STATUS_OK);
    ck_assert_str_eq(title, "");
    ck_assert_str_eq(detail, "a long ");
    ck_assert_int_eq(runpod_json_parse_problem(odd, strlen(odd), NULL, 0, NULL, 0), STATUS_OK);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* create body */

static void fixture_spec(PodCreateSpec *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "gpu-20260915_101500-3f9c2a1b");
    snprintf(s->image, sizeof s->image, "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04");
    snprintf(s->gpu_type, sizeof s->gpu_type, "NVIDIA GeForce RTX 4090");
    snprintf(s->cloud, sizeof s->cloud, "SECURE");
    s->disk_gb = 50;
    snprintf(s->ports[0], sizeof s->ports[0], "22/tcp");
    snprintf(s->ports[1], sizeof s->ports[1], "8888/http");
    s->n_ports = 2;
    snprintf(s->data_center_ids[0], sizeof s->data_center_ids[0], "EU-RO-1");
    s->n_data_center_ids = 1;
    snprintf(s->network_volume_id, sizeof s->network_volume_id, "agv6w2qcg7");
    snprintf(s->volume_mount_path, sizeof s->volume_mount_path, "/workspace");
    snprintf(s->env[0].name, sizeof s->env[0].name, "WORKER_ID");
    snprintf(s->env[0].value, sizeof s->env[0].value, "gpu-20260915_101500-3f9c2a1b");
    snprintf(s->env[1].name, sizeof s->env[1].name, "SUPABASE_URL");
    snprintf(s->env[1].value, sizeof s->env[1].value, "https://example.supabase.co");
    snprintf(s->env[2].name, sizeof s->env[2].name, "PUBLIC_KEY");
    snprintf(s->env[2].value, sizeof s->env[2].value,
             "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExample "
             "orchestrator");
    s->n_env = 3;
}

START_TEST(test_runpod_json_build_matches_fixture)
{
    PodCreateSpec *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    fixture_spec(s);
    char *json = NULL;
    ck_assert_int_eq(runpod_json_build_create(s, &json), STATUS_OK);
    size_t len;
    char *want_s = read_fixture("v2_create_request.json", &len);
    cJSON *got = cJSON_Parse(json), *want = cJSON_Parse(want_s);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(cJSON_Compare(got, want, 1), "built %s", json);
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(want_s);
    free(json);
    free(s);
}
END_TEST

START_TEST(test_runpod_json_build_minimal)
{
    PodCreateSpec *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    fixture_spec(s);
    s->n_data_center_ids = 0;
    s->network_volume_id[0] = '\0';
    s->volume_mount_path[0] = '\0';
    s->cloud[0] = '\0';
    s->disk_gb = 0;
    s->n_ports = 0;
    s->n_env = 0;
    char *json = NULL;
    ck_assert_int_eq(runpod_json_build_create(s, &json), STATUS_OK);
    cJSON *got = cJSON_Parse(json);
    ck_assert_ptr_nonnull(got);
    /* Only what is set is sent; env is always an object. */
    const char *keys[] = {"name", "image", "gpu", "env"};
    ck_assert_int_eq(cJSON_GetArraySize(got), (int)ARRAY_LEN(keys));
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(got, keys[i]));
    cJSON *gpu = cJSON_GetObjectItemCaseSensitive(got, "gpu");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(gpu, "count")->valueint, 1);
    cJSON_Delete(got);
    free(json);

    /* A volume without a path mounts at /workspace; a repeated env name keeps the last value. */
    snprintf(s->network_volume_id, sizeof s->network_volume_id, "vol1");
    snprintf(s->env[0].name, sizeof s->env[0].name, "A");
    snprintf(s->env[0].value, sizeof s->env[0].value, "1");
    snprintf(s->env[1].name, sizeof s->env[1].name, "A");
    snprintf(s->env[1].value, sizeof s->env[1].value, "2");
    s->n_env = 2;
    ck_assert_int_eq(runpod_json_build_create(s, &json), STATUS_OK);
    got = cJSON_Parse(json);
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                      cJSON_GetObjectItemCaseSensitive(got, "mounts"), "network"),
                                  0);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(m, "path")->valuestring, "/workspace");
    cJSON *env = cJSON_GetObjectItemCaseSensitive(got, "env");
    ck_assert_int_eq(cJSON_GetArraySize(env), 1);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(env, "A")->valuestring, "2");
    cJSON_Delete(got);
    free(json);
    free(s);
}
END_TEST

static const struct {
    const char *name;
    int field;
} BAD_SPECS[] = {
    {"empty name", 0},   {"empty image", 1},   {"empty gpu type", 2},
    {"bad cloud", 3},    {"negative disk", 4}, {"too many ports", 5},
    {"too many dcs", 6}, {"too many env", 7},  {"empty env name", 8},
};

START_TEST(test_runpod_json_build_invalid)
{
    PodCreateSpec *s = malloc(sizeof *s);
    ck_assert_ptr_nonnull(s);
    fixture_spec(s);
    switch (BAD_SPECS[_i].field) {
    case 0:
        s->name[0] = '\0';
        break;
    case 1:
        s->image[0] = '\0';
        break;
    case 2:
        s->gpu_type[0] = '\0';
        break;
    case 3:
        snprintf(s->cloud, sizeof s->cloud, "SPOT");
        break;
    case 4:
        s->disk_gb = -1;
        break;
    case 5:
        s->n_ports = POD_CREATE_MAX_PORTS + 1;
        break;
    case 6:
        s->n_data_center_ids = POD_CREATE_MAX_DCS + 1;
        break;
    case 7:
        s->n_env = POD_CREATE_MAX_ENV + 1;
        break;
    default:
        s->env[1].name[0] = '\0';
        break;
    }
    char untouched[] = "untouched";
    char *json = untouched;
    ck_assert_msg(runpod_json_build_create(s, &json) == STATUS_ERR_CONFIG, "%s",
                  BAD_SPECS[_i].name);
    ck_assert_str_eq(json, "untouched");
    free(s);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* malformed pods */

#define POD_OK "\"id\":\"abc\",\"name\":\"gpu-x\",\"status\":\"RUNNING\""

static const struct {
    const char *name;
    const char *body;
    Status want;
    const char *err_has; /* substring of the message, or NULL */
} BAD_PODS[] = {
    {"empty", "", STATUS_ERR_PARSE, "empty"},
    {"blank", "   ", STATUS_ERR_PARSE, "malformed"},
    {"null", "null", STATUS_ERR_PARSE, "object"},
    {"array", "[]", STATUS_ERR_PARSE, "object"},
    {"string", "\"pod\"", STATUS_ERR_PARSE, "object"},
    {"empty object", "{}", STATUS_ERR_PARSE, "\"id\""},
    {"id null", "{\"id\":null,\"name\":\"a\",\"status\":\"RUNNING\"}", STATUS_ERR_PARSE, "id"},
    {"id number", "{\"id\":5,\"name\":\"a\",\"status\":\"RUNNING\"}", STATUS_ERR_PARSE, "id"},
    {"id empty", "{\"id\":\"\",\"name\":\"a\",\"status\":\"RUNNING\"}", STATUS_ERR_PARSE, "id"},
    {"id too long",
     "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123\","
     "\"name\":\"a\",\"status\":\"RUNNING\"}",
     STATUS_ERR_PARSE, "longer"},
    {"name missing", "{\"id\":\"a\",\"status\":\"RUNNING\"}", STATUS_ERR_PARSE, "name"},
    {"name null", "{\"id\":\"a\",\"name\":null,\"status\":\"RUNNING\"}", STATUS_ERR_PARSE, "name"},
    {"status missing", "{\"id\":\"a\",\"name\":\"b\"}", STATUS_ERR_PARSE, "status"},
    {"status number", "{\"id\":\"a\",\"name\":\"b\",\"status\":3}", STATUS_ERR_PARSE, "status"},
    {"status unknown is fine", "{" POD_OK "}", STATUS_OK, NULL},
    {"cost string", "{" POD_OK ",\"cost\":\"0.69\"}", STATUS_ERR_PARSE, "cost"},
    {"cost negative", "{" POD_OK ",\"cost\":-1}", STATUS_ERR_PARSE, "cost"},
    {"cost null", "{" POD_OK ",\"cost\":null}", STATUS_OK, NULL},
    {"gpu string", "{" POD_OK ",\"gpu\":\"4090\"}", STATUS_ERR_PARSE, "gpu"},
    {"gpu id number", "{" POD_OK ",\"gpu\":{\"id\":4090}}", STATUS_ERR_PARSE, "gpu"},
    {"gpu null", "{" POD_OK ",\"gpu\":null}", STATUS_OK, NULL},
    {"image number", "{" POD_OK ",\"image\":1}", STATUS_ERR_PARSE, "image"},
    {"createdAt number", "{" POD_OK ",\"createdAt\":1}", STATUS_ERR_PARSE, "createdAt"},
    {"createdAt garbage", "{" POD_OK ",\"createdAt\":\"yesterday\"}", STATUS_OK, NULL},
    {"runtime string", "{" POD_OK ",\"runtime\":\"up\"}", STATUS_ERR_PARSE, "runtime"},
    {"runtime array", "{" POD_OK ",\"runtime\":[]}", STATUS_ERR_PARSE, "runtime"},
    {"runtime null", "{" POD_OK ",\"runtime\":null}", STATUS_OK, NULL},
    {"runtime empty", "{" POD_OK ",\"runtime\":{}}", STATUS_OK, NULL},
    {"uptime string", "{" POD_OK ",\"runtime\":{\"uptime\":\"1\"}}", STATUS_ERR_PARSE, "uptime"},
    {"uptime huge", "{" POD_OK ",\"runtime\":{\"uptime\":1e300}}", STATUS_ERR_PARSE, "uptime"},
    {"trailing garbage", "{" POD_OK "} x", STATUS_ERR_PARSE, "after"},
    {"trailing whitespace", "{" POD_OK "}\n\t ", STATUS_OK, NULL},
    {"unterminated string", "{\"id\":\"abc", STATUS_ERR_PARSE, "malformed"},
    {"bad escape", "{\"id\":\"a\\q\"}", STATUS_ERR_PARSE, "malformed"},
};

START_TEST(test_runpod_json_pod_malformed)
{
    Pod p;
    memset(&p, 0x5a, sizeof p);
    Pod before = p;
    char err[256] = "";
    Status st = parse_pod_str(BAD_PODS[_i].body, &p, err, sizeof err);
    ck_assert_msg(st == BAD_PODS[_i].want, "%s: got %s (%s)", BAD_PODS[_i].name, status_str(st),
                  err);
    if (st != STATUS_OK) {
        ck_assert_msg(memcmp(&p, &before, sizeof p) == 0, "%s: out written on error",
                      BAD_PODS[_i].name);
        ck_assert_msg(err[0] != '\0', "%s: no message", BAD_PODS[_i].name);
    }
    if (BAD_PODS[_i].err_has)
        ck_assert_msg(strstr(err, BAD_PODS[_i].err_has) != NULL, "%s: message \"%s\" lacks \"%s\"",
                      BAD_PODS[_i].name, err, BAD_PODS[_i].err_has);
}
END_TEST

START_TEST(test_runpod_json_pod_defaults)
{
    Pod p;
    ck_assert_int_eq(
        parse_pod_str("{\"id\":\"a\",\"name\":\"b\",\"status\":\"PAUSED\"}", &p, NULL, 0),
        STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_UNKNOWN);
    ck_assert_int_eq(p.created_at_epoch, -1);
    ck_assert(!p.has_runtime);
    ck_assert_str_eq(p.gpu_id, "");
    ck_assert_double_eq(p.cost_per_hr, 0.0);
    /* Long image names are truncated, not rejected. */
    char body[2048];
    char image[1001];
    memset(image, 'i', 1000);
    image[1000] = '\0';
    snprintf(body, sizeof body, "{" POD_OK ",\"image\":\"%s\",\"runtime\":{}}", image);
    ck_assert_int_eq(parse_pod_str(body, &p, NULL, 0), STATUS_OK);
    ck_assert_uint_eq(strlen(p.image), sizeof p.image - 1);
    ck_assert(p.has_runtime);
    /* A NUL inside the length is malformed JSON, not a shorter document. */
    const char nul[] = "{\"id\":\"a\",\"name\":\"b\",\"status\":\"RUNNING\"}\0{}";
    ck_assert_int_eq(runpod_json_parse_pod(nul, sizeof nul - 1, &p, NULL, 0), STATUS_ERR_PARSE);
    ck_assert_int_eq(runpod_json_parse_pod(NULL, 10, &p, NULL, 0), STATUS_ERR_PARSE);
}
END_TEST

START_TEST(test_runpod_json_truncated)
{
    /* Every proper prefix of the recorded documents is an error, never a crash. */
    const char *files[] = {"v2_get_running.json", "v2_list.json", "v2_create_ok.json"};
    for (size_t f = 0; f < ARRAY_LEN(files); f++) {
        size_t len;
        char *body = read_fixture(files[f], &len);
        size_t end = len;
        while (end > 0 && body[end - 1] != '}')
            end--;
        for (size_t n = 0; n + 1 < end; n++) {
            char err[256] = "";
            Pod p;
            PodList l = {0};
            /* Copy so the parser cannot read past n (ASan catches an overread). */
            char *cut = malloc(n ? n : 1);
            ck_assert_ptr_nonnull(cut);
            memcpy(cut, body, n);
            ck_assert_msg(runpod_json_parse_pod(cut, n, &p, err, sizeof err) == STATUS_ERR_PARSE,
                          "%s cut at %zu parsed", files[f], n);
            ck_assert_msg(runpod_json_parse_list(cut, n, &l, err, sizeof err) == STATUS_ERR_PARSE,
                          "%s cut at %zu parsed as list", files[f], n);
            ck_assert_ptr_null(l.pods);
            free(cut);
        }
        free(body);
    }
}
END_TEST

/* A name of 143 bytes: longer than any pod name we keep (127). */
#define LONG_NAME                                                                                  \
    "gpu-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The pod list is foreign data from a shared account (issue 12.1): one bad entry is skipped
 * (no usable id) or kept with defaults (partial); it never fails the list. */
static const struct {
    const char *name;
    const char *body;
    Status want;
    size_t count, skipped, partial;
    const char *err_has; /* in err (failure) or in problems[0] (success) */
} LISTS[] = {
    {"empty list", "{\"pods\":[]}", STATUS_OK, 0, 0, 0, NULL},
    {"bare array (v1 shape)", "[]", STATUS_ERR_PARSE, 0, 0, 0, "pods"},
    {"pods null", "{\"pods\":null}", STATUS_ERR_PARSE, 0, 0, 0, "pods"},
    {"pods object", "{\"pods\":{}}", STATUS_ERR_PARSE, 0, 0, 0, "pods"},
    {"pods missing", "{\"items\":[]}", STATUS_ERR_PARSE, 0, 0, 0, "pods"},
    {"item number: skipped", "{\"pods\":[1]}", STATUS_OK, 0, 1, 0, "pods[0]"},
    {"second without usable id: skipped, first kept", "{\"pods\":[{" POD_OK "},{\"id\":1}]}",
     STATUS_OK, 1, 1, 0, "pods[1]"},
    {"two", "{\"pods\":[{" POD_OK "},{" POD_OK "}],\"next\":null}", STATUS_OK, 2, 0, 0, NULL},
    {"143-byte name: kept, name unreadable",
     "{\"pods\":[{\"id\":\"p9\",\"name\":\"" LONG_NAME "\",\"status\":\"RUNNING\"},{" POD_OK "}]}",
     STATUS_OK, 2, 0, 1, "name"},
    {"cost a string: kept",
     "{\"pods\":[{\"id\":\"p9\",\"name\":\"x\",\"status\":\"RUNNING\",\"cost\":\"abc\"}]}",
     STATUS_OK, 1, 0, 1, "cost"},
    {"gpu.id a number: kept",
     "{\"pods\":[{\"id\":\"p9\",\"name\":\"x\",\"status\":\"RUNNING\",\"gpu\":{\"id\":5}}]}",
     STATUS_OK, 1, 0, 1, "gpu"},
    {"runtime a string: kept",
     "{\"pods\":[{\"id\":\"p9\",\"name\":\"x\",\"status\":\"RUNNING\",\"runtime\":\"odd\"}]}",
     STATUS_OK, 1, 0, 1, "runtime"},
    {"status a number: kept as UNKNOWN", "{\"pods\":[{\"id\":\"p9\",\"name\":\"x\",\"status\":7}]}",
     STATUS_OK, 1, 0, 1, "status"},
    {"createdAt garbage: kept, age unknown, not a defect",
     "{\"pods\":[{\"id\":\"p9\",\"name\":\"x\",\"status\":\"RUNNING\",\"createdAt\":\"yesterday\"}]"
     "}",
     STATUS_OK, 1, 0, 0, NULL},
};

START_TEST(test_runpod_json_list_malformed)
{
    PodList l = {0};
    char err[256] = "";
    Status st = runpod_json_parse_list(LISTS[_i].body, strlen(LISTS[_i].body), &l, err, sizeof err);
    ck_assert_msg(st == LISTS[_i].want, "%s: %s (%s)", LISTS[_i].name, status_str(st), err);
    ck_assert_uint_eq(l.count, LISTS[_i].count);
    ck_assert_msg(l.skipped == LISTS[_i].skipped && l.partial == LISTS[_i].partial,
                  "%s: skipped %zu partial %zu", LISTS[_i].name, l.skipped, l.partial);
    const char *where = st == STATUS_OK ? (l.n_problems ? l.problems[0] : "") : err;
    if (LISTS[_i].err_has)
        ck_assert_msg(strstr(where, LISTS[_i].err_has) != NULL, "%s: \"%s\"", LISTS[_i].name,
                      where);
    for (size_t i = 0; i < l.count; i++) {
        if (l.pods[i].partial || strcmp(l.pods[i].id, "p9") != 0)
            continue;
        ck_assert_msg(l.pods[i].created_at_epoch == -1 || l.pods[i].created_at[0], "%s: createdAt",
                      LISTS[_i].name);
    }
    /* A name that could not be read is never kept, so it can never look like one of ours. */
    for (size_t i = 0; i < l.count; i++)
        if (strcmp(l.pods[i].id, "p9") == 0 && strstr(LISTS[_i].name, "143-byte"))
            ck_assert_str_eq(l.pods[i].name, "");
    pod_list_clear(&l);
}
END_TEST

START_TEST(test_runpod_json_huge_body)
{
    /* 10 MB: refused by size before parsing. */
    size_t n = 10u << 20;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, "{\"pods\":[", 9);
    big[n - 2] = ']';
    big[n - 1] = '}';
    PodList l = {0};
    char err[256] = "";
    ck_assert_int_eq(runpod_json_parse_list(big, n, &l, err, sizeof err), STATUS_ERR_PARSE);
    ck_assert_msg(strstr(err, "too large") != NULL, "%s", err);
    Pod p;
    ck_assert_int_eq(runpod_json_parse_pod(big, n, &p, err, sizeof err), STATUS_ERR_PARSE);
    free(big);

    /* A large but legal list (3000 pods, ~0.4 MB) parses. */
    size_t cap = 3000 * 160 + 64, len = 0;
    char *list = malloc(cap);
    ck_assert_ptr_nonnull(list);
    len += (size_t)snprintf(list, cap, "{\"pods\":[");
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(list + len, cap - len,
                                "%s{\"id\":\"p%d\",\"name\":\"gpu-%d\",\"status\":\"RUNNING\","
                                "\"cost\":0.5,\"runtime\":null}",
                                i ? "," : "", i, i);
    len += (size_t)snprintf(list + len, cap - len, "]}");
    ck_assert_int_eq(runpod_json_parse_list(list, len, &l, err, sizeof err), STATUS_OK);
    ck_assert_uint_eq(l.count, 3000);
    ck_assert_str_eq(l.pods[2999].name, "gpu-2999");
    pod_list_clear(&l);
    free(list);
}
END_TEST

START_TEST(test_runpod_json_deep_nesting)
{
    /* 200000 levels inside an unknown field: cJSON's nesting limit refuses it without
     * recursing that deep. */
    size_t depth = 200000;
    size_t cap = depth * 2 + 128;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t len = (size_t)snprintf(s, cap, "{" POD_OK ",\"x\":");
    memset(s + len, '[', depth);
    len += depth;
    memset(s + len, ']', depth);
    len += depth;
    s[len++] = '}';
    Pod p;
    char err[256] = "";
    ck_assert_int_eq(runpod_json_parse_pod(s, len, &p, err, sizeof err), STATUS_ERR_PARSE);
    PodList l = {0};
    ck_assert_int_eq(runpod_json_parse_list(s, len, &l, err, sizeof err), STATUS_ERR_PARSE);
    char t[8], d[8];
    ck_assert_int_eq(runpod_json_parse_problem(s, len, t, sizeof t, d, sizeof d), STATUS_ERR_PARSE);
    /* Moderate nesting (100) in an ignored field is fine. */
    len = (size_t)snprintf(s, cap, "{" POD_OK ",\"x\":");
    memset(s + len, '[', 100);
    len += 100;
    memset(s + len, ']', 100);
    len += 100;
    s[len++] = '}';
    ck_assert_int_eq(runpod_json_parse_pod(s, len, &p, err, sizeof err), STATUS_OK);
    free(s);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* timestamps and statuses */

static const struct {
    const char *s;
    long long want;
} TIMES[] = {
    {"2026-09-15T10:15:02.117Z", 1789467302LL},
    {"2026-09-15T10:15:02Z", 1789467302LL},
    {"2026-09-15T12:15:02+02:00", 1789467302LL},
    {"2026-03-13T20:00:00-05:30", 1773451800LL},
    {"2000-02-29T23:59:59Z", 951868799LL},
    {"1970-01-01T00:00:00Z", 0},
    {"2026-09-15 10:15:02Z", 1789467302LL},
    {"2026-09-15T10:15:02", -1},
    {"2026-09-15T10:15Z", -1},
    {"2026-13-15T10:15:02Z", -1},
    {"2026-09-15T24:15:02Z", -1},
    {"2026-09-15T10:15:02.Z", -1},
    {"2026-09-15T10:15:02Zjunk", -1},
    {"2026-09-15T10:15:02+0200", -1},
    {"1969-12-31T23:59:59Z", -1},
    {"", -1},
    {"x", -1},
    {NULL, -1},
};

START_TEST(test_runpod_json_time)
{
    long long got = runpod_json_parse_time(TIMES[_i].s);
    ck_assert_msg(got == TIMES[_i].want, "%s: got %lld want %lld",
                  TIMES[_i].s ? TIMES[_i].s : "(null)", got, TIMES[_i].want);
}
END_TEST

START_TEST(test_runpod_json_status_names)
{
    for (int s = POD_STATUS_PROVISIONING; s <= POD_STATUS_TERMINATED; s++)
        ck_assert_int_eq(pod_status_parse(pod_status_str((PodStatus)s)), s);
    ck_assert_int_eq(pod_status_parse("running"), POD_STATUS_UNKNOWN); /* case matters */
    ck_assert_int_eq(pod_status_parse(NULL), POD_STATUS_UNKNOWN);
    ck_assert_str_eq(pod_status_str(POD_STATUS_UNKNOWN), "UNKNOWN");
    ck_assert_str_eq(pod_status_str((PodStatus)42), "UNKNOWN");
}
END_TEST

static Suite *runpod_json_suite(void)
{
    Suite *s = suite_create("runpod_json");
    TCase *tc = tcase_create("test_runpod_json_fixtures");
    tcase_add_test(tc, test_runpod_json_fixture_running);
    tcase_add_test(tc, test_runpod_json_fixture_running_without_runtime);
    tcase_add_test(tc, test_runpod_json_fixture_create_ok);
    tcase_add_test(tc, test_runpod_json_fixture_list);
    tcase_add_loop_test(tc, test_runpod_json_fixture_problems, 0, (int)ARRAY_LEN(PROBLEMS));
    tcase_add_test(tc, test_runpod_json_problem_malformed);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_json_build");
    tcase_add_test(tc, test_runpod_json_build_matches_fixture);
    tcase_add_test(tc, test_runpod_json_build_minimal);
    tcase_add_loop_test(tc, test_runpod_json_build_invalid, 0, (int)ARRAY_LEN(BAD_SPECS));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_json_malformed");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_runpod_json_pod_malformed, 0, (int)ARRAY_LEN(BAD_PODS));
    tcase_add_test(tc, test_runpod_json_pod_defaults);
    tcase_add_test(tc, test_runpod_json_truncated);
    tcase_add_loop_test(tc, test_runpod_json_list_malformed, 0, (int)ARRAY_LEN(LISTS));
    tcase_add_test(tc, test_runpod_json_huge_body);
    tcase_add_test(tc, test_runpod_json_deep_nesting);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_json_values");
    tcase_add_loop_test(tc, test_runpod_json_time, 0, (int)ARRAY_LEN(TIMES));
    tcase_add_test(tc, test_runpod_json_status_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(runpod_json_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
