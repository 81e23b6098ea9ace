/* claim_bench.c -- load generator of scripts/bench.sh's gateway section (issue 13).
 *
 * Test tool, not part of the product. N threads, each one worker (ids and tokens from a file of
 * "worker_id token" lines), for D seconds:
 *   --mode sql   SELECT * FROM func_claim_next_task($1, 'gpu') on a connection of its own (the
 *                direct SQL claim a worker with a database driver makes)
 *   --mode http  POST /functions/v1/claim-next-task through the gateway (keep-alive, the token
 *                as Authorization: Bearer)
 *   --mode poll  the reference worker's idle pass through the gateway, in a loop: lost-claim
 *                GET, task-counts, claim-next-task, and a heartbeat every second
 * Prints one line: mode, concurrency, requests, claims, claims_per_sec, p50_ms, p99_ms, errors.
 * Same client code path and clock for both modes, so the figures compare.
 */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define MAX_SAMPLES 400000

typedef struct {
    int index;
    char worker[128];
    char token[2048];
    long long *lat_us; /* per request */
    size_t n;
    long long claims;
    long long errors;
} Thread;

static const char *g_mode, *g_url, *g_dsn;
static double g_duration;
static struct timespec g_start;

static long long us_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)(t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

static size_t sink(char *p, size_t s, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return s * n;
}

static void record(Thread *t, long long us)
{
    if (t->n < MAX_SAMPLES)
        t->lat_us[t->n++] = us;
}

/* One HTTP exchange; returns the status (0 on a transport error). */
static long http_call(CURL *c, const char *method, const char *url, const char *body,
                      struct curl_slist *h)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static void *run_http(void *arg)
{
    Thread *t = arg;
    CURL *c = curl_easy_init();
    char auth[2200], url[512], tasks[512], counts[512], beat_url[512], beat[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", t->token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    snprintf(url, sizeof url, "%s/functions/v1/claim-next-task", g_url);
    snprintf(counts, sizeof counts, "%s/functions/v1/task-counts", g_url);
    snprintf(tasks, sizeof tasks,
             "%s/rest/v1/tasks?select=id,params,task_type,project_id&worker_id=eq.%s"
             "&status=eq.In%%20Progress&limit=1",
             g_url, t->worker);
    snprintf(beat_url, sizeof beat_url, "%s/rest/v1/rpc/func_worker_heartbeat_with_logs", g_url);
    snprintf(beat, sizeof beat,
             "{\"worker_id_param\":\"%s\",\"vram_total_mb_param\":24564,\"vram_used_mb_param\":"
             "500,\"logs_param\":[],\"status_param\":\"active\"}",
             t->worker);
    const char *claim = "{\"run_type\":\"gpu\"}";
    bool poll = strcmp(g_mode, "poll") == 0;
    long long next_beat = 0;
    while (us_since(&g_start) < (long long)(g_duration * 1e6)) {
        if (poll) {
            if (us_since(&g_start) >= next_beat) {
                next_beat = us_since(&g_start) + 1000000;
                if (http_call(c, "POST", beat_url, beat, h) != 200)
                    t->errors++;
            }
            if (http_call(c, "GET", tasks, NULL, h) != 200)
                t->errors++;
            if (http_call(c, "POST", counts, claim, h) != 200)
                t->errors++;
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long code = http_call(c, "POST", url, claim, h);
        record(t, us_since(&t0));
        if (code == 200)
            t->claims++;
        else if (code != 204)
            t->errors++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void *run_sql(void *arg)
{
    Thread *t = arg;
    PGconn *conn = PQconnectdb(g_dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "claim_bench: %s", PQerrorMessage(conn));
        t->errors++;
        PQfinish(conn);
        return NULL;
    }
    PGresult *p =
        PQprepare(conn, "claim", "SELECT * FROM func_claim_next_task($1, 'gpu')", 1, NULL);
    PQclear(p);
    const char *params[1] = {t->worker};
    while (us_since(&g_start) < (long long)(g_duration * 1e6)) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        PGresult *r = PQexecPrepared(conn, "claim", 1, params, NULL, NULL, 0);
        record(t, us_since(&t0));
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            t->errors++;
        else if (PQntuples(r) == 1)
            t->claims++;
        PQclear(r);
    }
    PQfinish(conn);
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *workers_file = NULL;
    int n = 1;
    g_mode = "sql";
    g_duration = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mode") == 0)
            g_mode = argv[i + 1];
        else if (strcmp(argv[i], "--url") == 0)
            g_url = argv[i + 1];
        else if (strcmp(argv[i], "--dsn") == 0)
            g_dsn = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            workers_file = argv[i + 1];
        else if (strcmp(argv[i], "--concurrency") == 0)
            n = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--duration") == 0)
            g_duration = strtod(argv[i + 1], NULL);
    }
    bool sql = strcmp(g_mode, "sql") == 0;
    if (!workers_file || n < 1 || n > MAX_THREADS || (sql ? !g_dsn : !g_url)) {
        fprintf(stderr, "usage: claim_bench --mode sql|http|poll --workers FILE --concurrency N "
                        "--duration S (--dsn DSN | --url URL)\n");
        return 2;
    }
    FILE *f = fopen(workers_file, "r");
    if (!f) {
        perror(workers_file);
        return 1;
    }
    static Thread threads[MAX_THREADS];
    for (int i = 0; i < n; i++) {
        if (fscanf(f, "%127s %2047s", threads[i].worker, threads[i].token) != 2) {
            fprintf(stderr, "claim_bench: %s has fewer than %d workers\n", workers_file, n);
            fclose(f);
            return 1;
        }
        threads[i].index = i;
        threads[i].lat_us = calloc(MAX_SAMPLES, sizeof(long long));
        if (!threads[i].lat_us)
            return 1;
    }
    fclose(f);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t ids[MAX_THREADS];
    clock_gettime(CLOCK_MONOTONIC, &g_start);
    for (int i = 0; i < n; i++)
        pthread_create(&ids[i], NULL, sql ? run_sql : run_http, &threads[i]);
    for (int i = 0; i < n; i++)
        pthread_join(ids[i], NULL);
    double secs = (double)us_since(&g_start) / 1e6;
    size_t total = 0;
    long long claims = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        total += threads[i].n;
        claims += threads[i].claims;
        errors += threads[i].errors;
    }
    long long *all = calloc(total ? total : 1, sizeof(long long));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, threads[i].lat_us, threads[i].n * sizeof(long long));
        k += threads[i].n;
        free(threads[i].lat_us);
    }
    qsort(all, total, sizeof(long long), cmp_ll);
    double p50 = total ? (double)all[total / 2] / 1000.0 : 0;
    double p99 = total ? (double)all[(size_t)((double)total * 0.99)] / 1000.0 : 0;
    printf("mode=%s concurrency=%d requests=%zu claims=%lld claims_per_sec=%.0f p50_ms=%.2f "
           "p99_ms=%.2f errors=%lld\n",
           g_mode, n, total, claims, (double)claims / secs, p50, p99, errors);
    free(all);
    curl_global_cleanup();
    return errors == 0 ? 0 : 3;
}
