/* test_config.c -- unit tests of config_parse and the redacted dumps (pure; no setenv). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static Config cfg;
static ConfigErrors errs;

static Status parse1(const char *kv, unsigned needs)
{
    const char *envp[] = {kv, NULL};
    return config_parse(envp, "host1", needs, &cfg, &errs);
}

static int errors_mention(const char *needle)
{
    for (size_t i = 0; i < errs.count; i++)
        if (strstr(errs.messages[i], needle))
            return 1;
    return 0;
}

START_TEST(test_config_defaults)
{
    const char *envp[] = {NULL};
    ck_assert_int_eq(config_parse(envp, "host1", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
    ck_assert_int_eq(cfg.min_active_gpus, 2);
    ck_assert_int_eq(cfg.max_active_gpus, 10);
    ck_assert_int_eq(cfg.tasks_per_gpu_threshold, 3);
    ck_assert_int_eq(cfg.machines_to_keep_idle, 0);
    ck_assert_int_eq(cfg.gpu_idle_timeout_sec, 300);
    ck_assert_int_eq(cfg.task_stuck_timeout_sec, 300);
    ck_assert_int_eq(cfg.spawning_timeout_sec, 300);
    ck_assert_int_eq(cfg.graceful_shutdown_timeout_sec, 600);
    ck_assert_int_eq(cfg.worker_grace_period_sec, 120);
    ck_assert_int_eq(cfg.orchestrator_poll_sec, 30);
    ck_assert_str_eq(cfg.runpod_api_base_url, "https://api.runpod.io");
    ck_assert_uint_eq(cfg.runpod_gpu_types.count, 1);
    ck_assert_str_eq(cfg.runpod_gpu_types.items[0], "NVIDIA GeForce RTX 4090");
    ck_assert_str_eq(cfg.runpod_cloud_type, "SECURE");
    ck_assert_uint_eq(cfg.runpod_ports.count, 2);
    ck_assert_str_eq(cfg.runpod_ports.items[1], "8888/http");
    ck_assert_str_eq(cfg.runpod_volume_mount_path, "/workspace");
    ck_assert_str_eq(cfg.worker_id_prefix, "gpu-");
    ck_assert_str_eq(cfg.stuck_exempt_task_types, "%_orchestrator");
    ck_assert_int_eq(cfg.max_task_attempts, 3);
    ck_assert(fabs(cfg.max_worker_failure_rate - 0.8) < 1e-9);
    ck_assert_int_eq(cfg.failure_window_minutes, 5);
    ck_assert_int_eq(cfg.min_workers_for_rate_check, 5);
    ck_assert(cfg.max_hourly_spend_usd == 0.0);
    ck_assert_int_eq(cfg.reconcile_interval_sec, 300);
    ck_assert_int_eq(cfg.orphan_pod_grace_sec, 300);
    ck_assert(!cfg.safe_mode);
    ck_assert_str_eq(cfg.log_level, "INFO");
    ck_assert_str_eq(cfg.log_format, "json");
    ck_assert(!cfg.enable_db_logging);
    ck_assert_int_eq(cfg.db_log_retention_hours, 48);
    ck_assert_int_eq(cfg.metrics_port, 0);
    ck_assert_str_eq(cfg.orchestrator_instance_id, "orchestrator-host1");
}
END_TEST

/* Every numeric variable: its bounds accepted, one step outside and garbage refused, and the
 * error names the variable and the accepted range. */
START_TEST(test_config_numeric_bounds)
{
    ConfigVarInfo v;
    config_var_info((size_t)_i, &v);
    if (v.kind != 'i' && v.kind != 'd')
        return;
    char kv[256];
    char want[64];
    const double step = v.kind == 'i' ? 1 : 0.001;
    const double ok_values[] = {v.min, v.max};
    for (size_t k = 0; k < 2; k++) {
        snprintf(kv, sizeof kv, "%s=%.10g", v.name, ok_values[k]);
        /* A bound may still contradict another variable's default (MIN_ACTIVE_GPUS=1000 >
         * MAX_ACTIVE_GPUS=10): only a complaint about the value itself is a failure here. */
        parse1(kv, 0);
        ck_assert_msg(!errors_mention("invalid value"), "%s should be accepted: %s", kv,
                      errs.messages[0]);
    }
    const double bad_values[] = {v.min - step, v.max + step};
    for (size_t k = 0; k < 2; k++) {
        snprintf(kv, sizeof kv, "%s=%.10g", v.name, bad_values[k]);
        ck_assert_msg(parse1(kv, 0) == STATUS_ERR_CONFIG, "%s should be refused", kv);
        ck_assert_msg(errors_mention(v.name), "error names %s: %s", v.name, errs.messages[0]);
    }
    const char *garbage[] = {"abc", "12abc", "1e999", " ", "0x10", "9999999999999999999999"};
    for (size_t k = 0; k < ARRAY_LEN(garbage); k++) {
        snprintf(kv, sizeof kv, "%s=%s", v.name, garbage[k]);
        Status st = parse1(kv, 0);
        if (strcmp(garbage[k], " ") == 0 && st == STATUS_OK)
            continue;
        if (v.kind == 'd' && strcmp(garbage[k], "0x10") == 0)
            continue; /* strtod reads hex floats; 16 is then range-checked */
        ck_assert_msg(st == STATUS_ERR_CONFIG, "%s should be refused", kv);
        snprintf(want, sizeof want, "for %s: expected", v.name);
        ck_assert_msg(errors_mention(want), "%s: message was %s", kv, errs.messages[0]);
    }
    /* An empty value means "unset": the default applies. */
    snprintf(kv, sizeof kv, "%s=", v.name);
    ck_assert_int_eq(parse1(kv, 0), STATUS_OK);
}
END_TEST

/* Booleans, enums, strings: valid and invalid values of each. */
static const struct {
    const char *kv;
    Status want;
} VALUE_CASES[] = {
    {"SAFE_MODE=true", STATUS_OK},
    {"SAFE_MODE=YES", STATUS_OK},
    {"SAFE_MODE=0", STATUS_OK},
    {"SAFE_MODE=maybe", STATUS_ERR_CONFIG},
    {"ENABLE_DB_LOGGING=on", STATUS_OK},
    {"ENABLE_DB_LOGGING=2", STATUS_ERR_CONFIG},
    {"RUNPOD_CLOUD_TYPE=COMMUNITY", STATUS_OK},
    {"RUNPOD_CLOUD_TYPE=community", STATUS_OK},
    {"RUNPOD_CLOUD_TYPE=SPOT", STATUS_ERR_CONFIG},
    {"LOG_LEVEL=debug", STATUS_OK},
    {"LOG_LEVEL=WARNING", STATUS_OK},
    {"LOG_LEVEL=TRACE", STATUS_ERR_CONFIG},
    {"LOG_FORMAT=text", STATUS_OK},
    {"LOG_FORMAT=xml", STATUS_ERR_CONFIG},
    {"RUNPOD_API_BASE_URL=http://127.0.0.1:8080", STATUS_OK},
    {"RUNPOD_API_BASE_URL=ftp://x", STATUS_ERR_CONFIG},
    {"RUNPOD_API_BASE_URL=api.runpod.io", STATUS_ERR_CONFIG},
    {"WORKER_ID_PREFIX=gpu-", STATUS_OK},
    {"WORKER_ID_PREFIX=w2-", STATUS_OK},
    {"WORKER_ID_PREFIX=GPU_", STATUS_ERR_CONFIG},
    {"WORKER_ID_PREFIX=abcdefghijklmnopqrstuvwxy", STATUS_ERR_CONFIG},
    {"RUNPOD_GPU_TYPES=A, B ,C", STATUS_OK},
    {"RUNPOD_GPU_TYPES=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", STATUS_ERR_CONFIG},
    {"RUNPOD_DATA_CENTER_IDS=EU-RO-1,US-TX-3", STATUS_OK},
    {"RUNPOD_PORTS=22/tcp, 8888/http", STATUS_OK},
    {"RUNPOD_PORTS=22", STATUS_ERR_CONFIG},
    {"RUNPOD_PORTS=70000/tcp", STATUS_ERR_CONFIG},
    {"RUNPOD_PORTS=22/udp", STATUS_ERR_CONFIG},
    {"WORKER_ENV_HF_TOKEN=abc", STATUS_OK},
    {"WORKER_ENV_WORKER_ID=x", STATUS_ERR_CONFIG},
    {"WORKER_ENV_1BAD=x", STATUS_ERR_CONFIG},
    {"WORKER_ENV_BAD-NAME=x", STATUS_ERR_CONFIG},
    {"STUCK_EXEMPT_TASK_TYPES=", STATUS_OK},
};

START_TEST(test_config_values)
{
    Status st = parse1(VALUE_CASES[_i].kv, 0);
    ck_assert_msg(st == VALUE_CASES[_i].want, "%s: got %s (%s)", VALUE_CASES[_i].kv, status_str(st),
                  errs.count ? errs.messages[0] : "no error");
    if (st != STATUS_OK) {
        char name[64];
        size_t n = strcspn(VALUE_CASES[_i].kv, "=");
        snprintf(name, sizeof name, "%.*s", (int)n, VALUE_CASES[_i].kv);
        ck_assert_msg(errors_mention(name) || errors_mention("WORKER_ENV"), "%s: %s", name,
                      errs.messages[0]);
    }
}
END_TEST

START_TEST(test_config_all_errors_at_once)
{
    const char *envp[] = {"MAX_ACTIVE_GPUS=abc", "MIN_ACTIVE_GPUS=-1", "LOG_FORMAT=xml", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_ERR_CONFIG);
    ck_assert_uint_eq(errs.count, 3);
    ck_assert(errors_mention("\"abc\" for MAX_ACTIVE_GPUS: expected integer in [0, 1000]"));
    ck_assert(errors_mention("\"-1\" for MIN_ACTIVE_GPUS: expected integer in [0, 1000]"));
    ck_assert(errors_mention("LOG_FORMAT"));
}
END_TEST

START_TEST(test_config_min_greater_than_max)
{
    const char *envp[] = {"MAX_ACTIVE_GPUS=3", "MIN_ACTIVE_GPUS=4", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_ERR_CONFIG);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert(errors_mention("MIN_ACTIVE_GPUS (4) is greater than MAX_ACTIVE_GPUS (3)"));
    const char *equal[] = {"MAX_ACTIVE_GPUS=0", "MIN_ACTIVE_GPUS=0", NULL};
    ck_assert_int_eq(config_parse(equal, "h", 0, &cfg, &errs), STATUS_OK);
}
END_TEST

START_TEST(test_config_required)
{
    const char *none[] = {NULL};
    ck_assert_int_eq(config_parse(none, "h", CONFIG_NEED_DB | CONFIG_NEED_API, &cfg, &errs),
                     STATUS_ERR_CONFIG);
    ck_assert_uint_eq(errs.count, 2);
    ck_assert(errors_mention("DATABASE_URL is not set"));
    ck_assert(errors_mention("RUNPOD_API_KEY is not set"));

    const char *safe[] = {"SAFE_MODE=true", "PGHOST=/tmp", NULL};
    ck_assert_int_eq(config_parse(safe, "h", CONFIG_NEED_DB | CONFIG_NEED_API, &cfg, &errs),
                     STATUS_OK);

    const char *full[] = {"DATABASE_URL=postgresql:///x", "RUNPOD_API_KEY=rk_123456", NULL};
    ck_assert_int_eq(config_parse(full, "h", CONFIG_NEED_DB | CONFIG_NEED_API, &cfg, &errs),
                     STATUS_OK);
    ck_assert_str_eq(cfg.runpod_api_key, "rk_123456");
}
END_TEST

START_TEST(test_config_gpu_types_and_lists)
{
    const char *envp[] = {"RUNPOD_GPU_TYPE=NVIDIA A40",
                          "RUNPOD_GPU_TYPES= NVIDIA L40S ,,NVIDIA A40",
                          "RUNPOD_API_BASE_URL=http://127.0.0.1:1234//", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    ck_assert_uint_eq(cfg.runpod_gpu_types.count, 2);
    ck_assert_str_eq(cfg.runpod_gpu_types.items[0], "NVIDIA L40S");
    ck_assert_str_eq(cfg.runpod_gpu_types.items[1], "NVIDIA A40");
    ck_assert_str_eq(cfg.runpod_api_base_url, "http://127.0.0.1:1234");
    const char *single[] = {"RUNPOD_GPU_TYPE=NVIDIA A40", NULL};
    ck_assert_int_eq(config_parse(single, "h", 0, &cfg, &errs), STATUS_OK);
    ck_assert_uint_eq(cfg.runpod_gpu_types.count, 1);
    ck_assert_str_eq(cfg.runpod_gpu_types.items[0], "NVIDIA A40");
}
END_TEST

START_TEST(test_config_worker_env)
{
    const char *envp[] = {"WORKER_ENV_SUPABASE_URL=https://x.supabase.co",
                          "WORKER_ENV_HF_TOKEN=", "OTHER=1", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    ck_assert_uint_eq(cfg.n_worker_env, 2);
    ck_assert_str_eq(cfg.worker_env[0].name, "SUPABASE_URL");
    ck_assert_str_eq(cfg.worker_env[0].value, "https://x.supabase.co");
    ck_assert_str_eq(cfg.worker_env[1].name, "HF_TOKEN");
    ck_assert_str_eq(cfg.worker_env[1].value, "");
}
END_TEST

START_TEST(test_config_dump_redacts_secrets)
{
    const char *envp[] = {"DATABASE_URL=postgresql://orch:pw-SECRET-1@db:5432/app",
                          "RUNPOD_API_KEY=rk-SECRET-2", "WORKER_ENV_TOKEN=tok-SECRET-3",
                          /* issue 13 */
                          "GATEWAY_JWT_SECRET=gw-SECRET-4-0123456789abcdef0123456789",
                          "GATEWAY_DATABASE_URL=postgresql://gw:pw-SECRET-5@db/app",
                          "STORAGE_S3_SECRET_ACCESS_KEY=s3-SECRET-6",
                          "STORAGE_S3_ACCESS_KEY_ID=AKIA-SECRET-7", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    for (int json = 0; json < 2; json++) {
        char *s = config_dump(&cfg, json != 0);
        ck_assert_ptr_nonnull(s);
        /* No secret value (variable names such as GATEWAY_JWT_SECRET are fine). */
        ck_assert_ptr_null(strstr(s, "-SECRET-"));
        ck_assert_ptr_nonnull(strstr(s, "postgresql://orch:***@db:5432/app"));
        ck_assert_ptr_nonnull(strstr(s, "***set***"));
        ck_assert_ptr_nonnull(strstr(s, "MAX_ACTIVE_GPUS"));
        free(s);
    }
    const char *unset[] = {NULL};
    ck_assert_int_eq(config_parse(unset, "h", 0, &cfg, &errs), STATUS_OK);
    char *s = config_dump(&cfg, false);
    ck_assert_ptr_nonnull(strstr(s, "RUNPOD_API_KEY=(unset)"));
    free(s);
}
END_TEST

static const struct {
    const char *in, *want;
} DBURL_CASES[] = {
    {"postgresql://u:p@h/db", "postgresql://u:***@h/db"},
    {"postgres://u@h/db", "postgres://u@h/db"},
    {"postgresql://h/db?user=u&password=p&sslmode=require",
     "postgresql://h/db?user=u&password=***&sslmode=require"},
    {"host=h user=u password=p dbname=d", "host=h user=u password=*** dbname=d"},
    {"host=h password='p q\\' r' dbname=d", "host=h password=*** dbname=d"},
    {"", "(unset)"},
};

START_TEST(test_config_redact_dburl)
{
    char out[256];
    config_redact_dburl(DBURL_CASES[_i].in, out, sizeof out);
    ck_assert_str_eq(out, DBURL_CASES[_i].want);
}
END_TEST

START_TEST(test_config_hash)
{
    char h1[17], h2[17], h3[17];
    const char *a[] = {"RUNPOD_API_KEY=one1", NULL};
    const char *b[] = {"RUNPOD_API_KEY=two2", NULL};
    const char *c[] = {"RUNPOD_API_KEY=one1", "MAX_ACTIVE_GPUS=11", NULL};
    ck_assert_int_eq(config_parse(a, "h", 0, &cfg, &errs), STATUS_OK);
    config_hash(&cfg, h1);
    ck_assert_int_eq(config_parse(b, "h", 0, &cfg, &errs), STATUS_OK);
    config_hash(&cfg, h2);
    ck_assert_int_eq(config_parse(c, "h", 0, &cfg, &errs), STATUS_OK);
    config_hash(&cfg, h3);
    ck_assert_uint_eq(strlen(h1), 16);
    ck_assert_str_eq(h1, h2); /* secrets do not enter the hash */
    ck_assert_str_ne(h1, h3); /* every non-secret setting does */
}
END_TEST

START_TEST(test_config_help_lists_every_variable)
{
    char *help = config_help();
    ck_assert_ptr_nonnull(help);
    for (size_t i = 0; i < config_var_count(); i++)
        ck_assert_msg(strstr(help, config_var_name(i)), "help lacks %s", config_var_name(i));
    free(help);
}
END_TEST

/* env.example documents every variable of the table. */
START_TEST(test_config_env_example_lists_every_variable)
{
    const char *dir = getenv("ORCH_SOURCE_DIR");
    ck_assert_msg(dir != NULL, "ORCH_SOURCE_DIR is not set (run through ctest)");
    char path[1024];
    snprintf(path, sizeof path, "%s/env.example", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < config_var_count(); i++) {
        char want[160];
        snprintf(want, sizeof want, "%s=", config_var_name(i));
        ck_assert_msg(strstr(text, want), "env.example lacks %s", config_var_name(i));
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Pools (issue 14)                                                                            */

START_TEST(test_config_pools_default)
{
    const char *envp[] = {"RUNPOD_WORKER_IMAGE=img:1", "MIN_ACTIVE_GPUS=1", NULL};
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
    ck_assert_uint_eq(cfg.n_pools, 1);
    const PoolConfig *p = &cfg.pools[0];
    ck_assert_str_eq(p->name, "default");
    ck_assert_uint_eq(p->run_types.count, 1);
    ck_assert_str_eq(p->run_types.items[0], "gpu");
    ck_assert_str_eq(p->worker_image, "img:1");
    ck_assert_str_eq(p->gpu_types.items[0], "NVIDIA GeForce RTX 4090");
    ck_assert_int_eq(p->min_active_gpus, 1);
    ck_assert_int_eq(p->max_active_gpus, 10);
    ck_assert_ptr_eq(config_pool_for_run_type(&cfg, "gpu"), p);
    ck_assert_ptr_null(config_pool_for_run_type(&cfg, "video"));
    ck_assert_ptr_eq(config_pool_named(&cfg, "default"), p);
}
END_TEST

START_TEST(test_config_pools_fallbacks)
{
    const char *envp[] = {"POOLS=video,image",
                          "MAX_ACTIVE_GPUS=12",
                          "TASKS_PER_GPU_THRESHOLD=4",
                          "RUNPOD_WORKER_IMAGE=global:1",
                          "WORKER_ENV_HF_HOME=/cache",
                          "POOL_VIDEO_RUN_TYPES=video,gpu",
                          "POOL_VIDEO_GPU_TYPES=NVIDIA A100 80GB PCIe,NVIDIA H100 80GB HBM3",
                          "POOL_VIDEO_WORKER_IMAGE=video:2",
                          "POOL_VIDEO_MIN_ACTIVE_GPUS=1",
                          "POOL_VIDEO_MAX_ACTIVE_GPUS=6",
                          "POOL_VIDEO_TASKS_PER_GPU_THRESHOLD=1",
                          "POOL_VIDEO_MAX_HOURLY_SPEND_USD=7.5",
                          "POOL_IMAGE_ENV_MODEL=sdxl",
                          "POOL_IMAGE_CLOUD_TYPE=COMMUNITY",
                          NULL};
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
    ck_assert_uint_eq(cfg.n_pools, 2);
    const PoolConfig *v = config_pool_named(&cfg, "video"), *i = config_pool_named(&cfg, "image");
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(i);
    /* video: its own settings */
    ck_assert_uint_eq(v->run_types.count, 2);
    ck_assert_str_eq(v->run_types.items[1], "gpu");
    ck_assert_uint_eq(v->gpu_types.count, 2);
    ck_assert_str_eq(v->gpu_types.items[1], "NVIDIA H100 80GB HBM3");
    ck_assert_str_eq(v->worker_image, "video:2");
    ck_assert_int_eq(v->min_active_gpus, 1);
    ck_assert_int_eq(v->max_active_gpus, 6);
    ck_assert_int_eq(v->tasks_per_gpu_threshold, 1);
    ck_assert(fabs(v->max_hourly_spend_usd - 7.5) < 1e-9);
    ck_assert_uint_eq(v->n_env, 0);
    /* image: its name as run type, the rest from the globals of the same name */
    ck_assert_uint_eq(i->run_types.count, 1);
    ck_assert_str_eq(i->run_types.items[0], "image");
    ck_assert_str_eq(i->worker_image, "global:1");
    ck_assert_str_eq(i->cloud_type, "COMMUNITY");
    ck_assert_str_eq(i->gpu_types.items[0], "NVIDIA GeForce RTX 4090");
    ck_assert_int_eq(i->min_active_gpus, 2);
    ck_assert_int_eq(i->max_active_gpus, 12);
    ck_assert_int_eq(i->tasks_per_gpu_threshold, 4);
    ck_assert_uint_eq(i->n_env, 1);
    ck_assert_str_eq(i->env[0].name, "MODEL");
    ck_assert_str_eq(i->env[0].value, "sdxl");
    ck_assert_ptr_eq(config_pool_for_run_type(&cfg, "gpu"), v);
    ck_assert_ptr_eq(config_pool_for_run_type(&cfg, "image"), i);
    ck_assert_ptr_null(config_pool_for_run_type(&cfg, "audio"));
}
END_TEST

/* Each problem of the pool configuration, alone: exit 3 with a message naming it. */
static const struct {
    const char *name;
    const char *env[6];
    const char *want;
} POOL_ERRORS[] = {
    {"a run_type served by two pools",
     {"POOLS=a,b", "POOL_B_RUN_TYPES=x,a"},
     "run_type \"a\" is served by two pools, a and b"},
    {"a pool variable naming a pool not in POOLS",
     {"POOLS=video", "POOL_VIDO_MIN_ACTIVE_GPUS=1"},
     "POOL_VIDO_MIN_ACTIVE_GPUS names no pool of POOLS"},
    {"a pool variable with an unknown setting",
     {"POOLS=video", "POOL_VIDEO_MAX_GPUS=1"},
     "POOL_VIDEO_MAX_GPUS names no pool of POOLS"},
    {"a pool variable while POOLS is unset (the one pool is DEFAULT)",
     {"POOL_VIDEO_MIN_ACTIVE_GPUS=1"},
     "(unset: the one pool is DEFAULT)"},
    {"a pool's MIN above its MAX",
     {"POOLS=a", "POOL_A_MIN_ACTIVE_GPUS=5", "POOL_A_MAX_ACTIVE_GPUS=2"},
     "pool a: its MIN_ACTIVE_GPUS (5) is greater than its MAX_ACTIVE_GPUS (2)"},
    {"the pools' MINs above the fleet's MAX",
     {"MAX_ACTIVE_GPUS=3", "MIN_ACTIVE_GPUS=0", "POOLS=a,b", "POOL_A_MIN_ACTIVE_GPUS=2",
      "POOL_B_MIN_ACTIVE_GPUS=2"},
     "the pools' MIN_ACTIVE_GPUS add up to 4, above the fleet's MAX_ACTIVE_GPUS (3)"},
    {"a pool name that is not lower-case letters, digits and _",
     {"POOLS=Video"},
     "invalid pool name \"Video\" in POOLS"},
    {"a pool named twice", {"POOLS=a,b,a"}, "pool \"a\" is named twice in POOLS"},
    {"a pool value out of the global variable's bounds",
     {"POOLS=a", "POOL_A_MAX_ACTIVE_GPUS=x"},
     "POOL_A_MAX_ACTIVE_GPUS"},
    {"WORKER_POOL set by hand in a pool's env",
     {"POOLS=a", "POOL_A_ENV_WORKER_POOL=b"},
     "POOL_A_ENV_WORKER_POOL is not allowed"},
};

START_TEST(test_config_pools_errors)
{
    ck_assert_int_eq(config_parse(POOL_ERRORS[_i].env, "h", CONFIG_NEED_NOTHING, &cfg, &errs),
                     STATUS_ERR_CONFIG);
    ck_assert_msg(errors_mention(POOL_ERRORS[_i].want), "%s: no error mentions \"%s\" (first: %s)",
                  POOL_ERRORS[_i].name, POOL_ERRORS[_i].want,
                  errs.count ? errs.messages[0] : "(none)");
}
END_TEST

START_TEST(test_config_pools_all_errors_at_once)
{
    const char *envp[] = {
        "MAX_ACTIVE_GPUS=3",        "MIN_ACTIVE_GPUS=0",        "POOLS=a,b",
        "POOL_A_MIN_ACTIVE_GPUS=3", "POOL_B_MIN_ACTIVE_GPUS=4", "POOL_B_MAX_ACTIVE_GPUS=1",
        "POOL_B_RUN_TYPES=a",       "POOL_C_WORKER_IMAGE=x",    NULL};
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_ERR_CONFIG);
    ck_assert(errors_mention("served by two pools"));
    ck_assert(errors_mention("POOL_C_WORKER_IMAGE names no pool"));
    ck_assert(errors_mention("pool b: its MIN_ACTIVE_GPUS (4) is greater"));
    ck_assert(errors_mention("add up to 7"));
    ck_assert_uint_ge(errs.count, 4);
}
END_TEST

/* Every variable must reach the pod: 64 WORKER_ENV_* + 16 of a pool's own + WORKER_ID and
 * WORKER_POOL is 82, above the 72 a pod is created with (the pool's were silently dropped);
 * a pool variable of the same name replaces the global one and takes no extra slot. */
START_TEST(test_config_pools_env_fits_the_pod)
{
    static char vars[CONFIG_WORKER_ENV_MAX + CONFIG_POOL_ENV_MAX][64];
    const char *envp[CONFIG_WORKER_ENV_MAX + CONFIG_POOL_ENV_MAX + 4];
    size_t n = 0;
    envp[n++] = "POOLS=a";
    for (int i = 0; i < CONFIG_WORKER_ENV_MAX; i++) {
        snprintf(vars[i], sizeof vars[i], "WORKER_ENV_V%d=value-%d", i, i);
        envp[n++] = vars[i];
    }
    for (int i = 0; i < CONFIG_POOL_ENV_MAX; i++) {
        /* 8 override a global variable, 8 are new: 2 + 64 + 8 = 74 > 72 */
        snprintf(vars[CONFIG_WORKER_ENV_MAX + i], sizeof vars[0], "POOL_A_ENV_%s%d=x%d",
                 i < 8 ? "V" : "P", i, i);
        envp[n++] = vars[CONFIG_WORKER_ENV_MAX + i];
    }
    envp[n] = NULL;
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_ERR_CONFIG);
    ck_assert_msg(errors_mention("would get 74 environment variables"), "first error: %s",
                  errs.count ? errs.messages[0] : "(none)");
    /* 6 new ones fit exactly: 2 + 64 + 6 = 72. */
    envp[CONFIG_WORKER_ENV_MAX + 1 + 8 + 6] = NULL;
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("test_config_defaults");
    tcase_add_test(tc, test_config_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_config_numeric_bounds");
    tcase_add_loop_test(tc, test_config_numeric_bounds, 0, (int)config_var_count());
    suite_add_tcase(s, tc);
    tc = tcase_create("test_config_values");
    tcase_add_loop_test(tc, test_config_values, 0, (int)ARRAY_LEN(VALUE_CASES));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_config_relations");
    tcase_add_test(tc, test_config_all_errors_at_once);
    tcase_add_test(tc, test_config_min_greater_than_max);
    tcase_add_test(tc, test_config_required);
    tcase_add_test(tc, test_config_gpu_types_and_lists);
    tcase_add_test(tc, test_config_worker_env);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_config_redaction");
    tcase_add_test(tc, test_config_dump_redacts_secrets);
    tcase_add_loop_test(tc, test_config_redact_dburl, 0, (int)ARRAY_LEN(DBURL_CASES));
    tcase_add_test(tc, test_config_hash);
    tcase_add_test(tc, test_config_help_lists_every_variable);
    tcase_add_test(tc, test_config_env_example_lists_every_variable);
    tcase_add_test(tc, test_config_pools_default);
    tcase_add_test(tc, test_config_pools_fallbacks);
    tcase_add_loop_test(tc, test_config_pools_errors, 0, (int)ARRAY_LEN(POOL_ERRORS));
    tcase_add_test(tc, test_config_pools_all_errors_at_once);
    tcase_add_test(tc, test_config_pools_env_fits_the_pod);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
