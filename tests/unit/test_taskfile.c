/* test_taskfile.c -- unit tests of task validation and the CSV / JSON-lines parsers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "taskfile.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define UUID_A "0f8fad5b-d9cb-469f-a165-70867728950e"
#define UUID_B "7c9e6679-7425-40de-944b-e07fc1f90ae7"

static TaskfileErrors errs;

static const struct {
    const char *name;
    TaskfileFormat format;
    const char *text;
    int want_tasks; /* -1 = refused */
    const char *want_error;
} FILES[] = {
    {"csv minimal", TASKFILE_CSV, "task_type\nrender\nrender\n", 2, NULL},
    {"csv all columns, quoted JSON", TASKFILE_CSV,
     "task_type,params,run_type,depends_on,max_attempts\r\n"
     "render,\"{\"\"prompt\"\": \"\"a, b\"\"}\",gpu," UUID_A ",5\r\n",
     1, NULL},
    {"csv two dependencies", TASKFILE_CSV,
     "task_type,depends_on\nstitch,\"" UUID_A "," UUID_B "\"\n", 1, NULL},
    {"csv blank lines skipped", TASKFILE_CSV, "task_type\n\nrender\n\n", 1, NULL},
    {"csv no header", TASKFILE_CSV, "", -1, "header"},
    {"csv unknown column", TASKFILE_CSV, "task_type,colour\nx,red\n", -1, "unknown column"},
    {"csv no task_type column", TASKFILE_CSV, "params\n{}\n", -1, "no task_type"},
    {"csv bad params", TASKFILE_CSV, "task_type,params\nx,[1]\n", -1, "line 2: params"},
    {"csv bad uuid", TASKFILE_CSV, "task_type,depends_on\nx,123\n", -1, "not a task id"},
    {"csv bad run_type", TASKFILE_CSV, "task_type,run_type\nx,GPU!\n", -1, "run_type"},
    {"csv bad max_attempts", TASKFILE_CSV, "task_type,max_attempts\nx,0\n", -1, "max_attempts"},
    {"csv unterminated quote", TASKFILE_CSV, "task_type,params\nx,\"{\n", -1, "unterminated"},
    {"csv one bad row refuses the file", TASKFILE_CSV, "task_type\nok\n\"\"\n", -1,
     "line 3: task_type is missing"},
    {"csv header only", TASKFILE_CSV, "task_type\n", -1, "no task"},
    {"jsonl minimal", TASKFILE_JSONL, "{\"task_type\":\"render\"}\n", 1, NULL},
    {"jsonl full", TASKFILE_JSONL,
     "# comment\n{\"task_type\":\"a\",\"params\":{\"x\":1},\"run_type\":\"api\","
     "\"depends_on\":[\"" UUID_A "\"],\"max_attempts\":2}\n\n{\"task_type\":\"b\"}",
     2, NULL},
    {"jsonl not an object", TASKFILE_JSONL, "[1,2]\n", -1, "line 1: not a JSON object"},
    {"jsonl truncated", TASKFILE_JSONL, "{\"task_type\":\"a\"\n", -1, "not a JSON object"},
    {"jsonl task_type not a string", TASKFILE_JSONL, "{\"task_type\":5}\n", -1, "task_type"},
    {"jsonl params not an object", TASKFILE_JSONL, "{\"task_type\":\"a\",\"params\":\"x\"}", -1,
     "params"},
    {"jsonl depends_on a number", TASKFILE_JSONL, "{\"task_type\":\"a\",\"depends_on\":3}", -1,
     "depends_on"},
    {"jsonl max_attempts fraction", TASKFILE_JSONL, "{\"task_type\":\"a\",\"max_attempts\":1.5}",
     -1, "max_attempts"},
    {"jsonl empty", TASKFILE_JSONL, "\n\n", -1, "no task"},
};

static int errors_mention(const char *needle)
{
    for (size_t i = 0; i < errs.count && i < TASKFILE_ERRORS_MAX; i++)
        if (strstr(errs.messages[i], needle))
            return 1;
    return 0;
}

START_TEST(test_taskfile_files)
{
    cJSON *tasks = NULL;
    Status st =
        taskfile_parse(FILES[_i].text, strlen(FILES[_i].text), FILES[_i].format, &tasks, &errs);
    if (FILES[_i].want_tasks < 0) {
        ck_assert_msg(st == STATUS_ERR_USAGE, "%s: accepted", FILES[_i].name);
        ck_assert_ptr_null(tasks);
        ck_assert_msg(errors_mention(FILES[_i].want_error), "%s: errors were: %s", FILES[_i].name,
                      errs.count ? errs.messages[0] : "(none)");
    } else {
        ck_assert_msg(st == STATUS_OK, "%s: %s", FILES[_i].name,
                      errs.count ? errs.messages[0] : "");
        ck_assert_int_eq(cJSON_GetArraySize(tasks), FILES[_i].want_tasks);
        cJSON_Delete(tasks);
    }
}
END_TEST

START_TEST(test_taskfile_fields)
{
    const char *text =
        "task_type,params,run_type,depends_on,max_attempts\n"
        "render,\"{\"\"prompt\"\": \"\"a, \\\"\"b\\\"\"\"\"}\",api,\"" UUID_A ", " UUID_B "\",5\n";
    cJSON *tasks = NULL;
    ck_assert_int_eq(taskfile_parse(text, strlen(text), TASKFILE_CSV, &tasks, &errs), STATUS_OK);
    cJSON *t = cJSON_GetArrayItem(tasks, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(t, "task_type")->valuestring, "render");
    ck_assert_str_eq(cJSON_GetObjectItem(t, "run_type")->valuestring, "api");
    cJSON *prompt = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "params"), "prompt");
    ck_assert_str_eq(prompt->valuestring, "a, \"b\"");
    cJSON *deps = cJSON_GetObjectItem(t, "dependant_on");
    ck_assert_int_eq(cJSON_GetArraySize(deps), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(deps, 1)->valuestring, UUID_B);
    ck_assert_int_eq(cJSON_GetObjectItem(t, "max_attempts")->valueint, 5);
    cJSON_Delete(tasks);

    /* Defaults: params {}, run_type gpu, no dependencies, no max_attempts. */
    cJSON *arr = cJSON_CreateArray();
    memset(&errs, 0, sizeof errs);
    ck_assert_int_eq(taskfile_add(arr, "x", NULL, NULL, NULL, 0, "--type", &errs), STATUS_OK);
    t = cJSON_GetArrayItem(arr, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(t, "run_type")->valuestring, "gpu");
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(t, "params")));
    ck_assert_ptr_null(cJSON_GetObjectItem(t, "dependant_on"));
    ck_assert_ptr_null(cJSON_GetObjectItem(t, "max_attempts"));
    cJSON_Delete(arr);
}
END_TEST

static const struct {
    const char *in;
    long long want; /* -1 = refused */
} DURATIONS[] = {
    {"90", 90}, {"30s", 30}, {"15m", 900}, {"2h", 7200}, {"7d", 604800},         {"", -1},
    {"m", -1},  {"-5m", -1}, {"5w", -1},   {"5mm", -1},  {"99999999999999d", -1}};

START_TEST(test_taskfile_durations)
{
    long long got = -1;
    int rc = taskfile_parse_duration(DURATIONS[_i].in, &got);
    if (DURATIONS[_i].want < 0)
        ck_assert_msg(rc != 0, "%s accepted", DURATIONS[_i].in);
    else {
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(got, DURATIONS[_i].want);
    }
}
END_TEST

START_TEST(test_taskfile_uuid)
{
    ck_assert(taskfile_is_uuid(UUID_A));
    ck_assert(!taskfile_is_uuid("0f8fad5b-d9cb-469f-a165-70867728950"));
    ck_assert(!taskfile_is_uuid("0f8fad5bxd9cb-469f-a165-70867728950e"));
    ck_assert(!taskfile_is_uuid("0f8fad5b-d9cb-469f-a165-70867728950g"));
    ck_assert(!taskfile_is_uuid(NULL));
}
END_TEST

static Suite *taskfile_suite(void)
{
    Suite *s = suite_create("taskfile");
    TCase *tc = tcase_create("test_taskfile_files");
    tcase_add_loop_test(tc, test_taskfile_files, 0, (int)ARRAY_LEN(FILES));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_taskfile_fields");
    tcase_add_test(tc, test_taskfile_fields);
    tcase_add_loop_test(tc, test_taskfile_durations, 0, (int)ARRAY_LEN(DURATIONS));
    tcase_add_test(tc, test_taskfile_uuid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(taskfile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
