/* fake_runpod.c -- see fake_runpod.h. Test helper: forks the Python fake and drives its control
 * API over HTTP. Must not be linked into the orchestrator itself. */
#include "fake_runpod.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct FakeRunpod {
    pid_t pid;
    int port;
    char url[64];
    char dir[64];
};

/* Start-up failures: start may run outside a test (from main), where Check's assertions
 * cannot report, so it prints and exits instead. */
static void start_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void start_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake_runpod: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(EXIT_FAILURE);
}

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

FakeRunpod *fake_runpod_start(const char *api_key, const char *const *extra_args)
{
    static unsigned counter;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        start_fail("curl_global_init failed");
    FakeRunpod *f = calloc(1, sizeof *f);
    if (!f)
        start_fail("out of memory");
    snprintf(f->dir, sizeof f->dir, "/tmp/fake_runpod.XXXXXX");
    if (!mkdtemp(f->dir))
        start_fail("mkdtemp: %s", strerror(errno));
    char port_file[128], script[1024], parent[32], record[512] = "";
    snprintf(port_file, sizeof port_file, "%s/port", f->dir);
    const char *src = getenv("ORCH_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/fakes/fake_runpod.py", src && src[0] ? src : ".");
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    const char *rec_dir = getenv("ORCH_FAKE_RUNPOD_RECORD_DIR");
    if (rec_dir && rec_dir[0])
        snprintf(record, sizeof record, "%s/fake-%d-%u.jsonl", rec_dir, (int)getpid(), counter++);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--api-key";
    argv[n++] = api_key;
    argv[n++] = "--parent-pid";
    argv[n++] = parent;
    if (record[0]) {
        argv[n++] = "--record";
        argv[n++] = record;
    }
    for (size_t i = 0; extra_args && extra_args[i] && n < 63; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        start_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        /* stdout (the PORT= line) is not needed: the port file is read instead. */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execv(argv[0], (char *const *)(void *)argv);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 1000; i++) { /* up to 10 s */
        FILE *pf = fopen(port_file, "r");
        if (pf) {
            int port = 0;
            if (fscanf(pf, "%d", &port) == 1 && port > 0)
                f->port = port;
            fclose(pf);
            if (f->port)
                break;
        }
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid)
            start_fail("fake_runpod.py exited during start-up (%s); is %s there?",
                       WIFEXITED(wst) ? "exit" : "signal", script);
        nap_ms(10);
    }
    if (!f->port) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        start_fail("fake_runpod.py did not report a port within 10 s");
    }
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    return f;
}

void fake_runpod_stop(FakeRunpod *f)
{
    if (!f)
        return;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        bool gone = false;
        for (int i = 0; i < 500 && !gone; i++) {
            if (waitpid(f->pid, NULL, WNOHANG) == f->pid)
                gone = true;
            else
                nap_ms(10);
        }
        if (!gone) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, NULL, 0);
        }
    }
    char port_file[128];
    snprintf(port_file, sizeof port_file, "%s/port", f->dir);
    unlink(port_file);
    rmdir(f->dir);
    free(f);
    curl_global_cleanup();
}

const char *fake_runpod_url(const FakeRunpod *f)
{
    return f->url;
}

int fake_runpod_port(const FakeRunpod *f)
{
    return f->port;
}

pid_t fake_runpod_pid(const FakeRunpod *f)
{
    return f->pid;
}

/* ---------------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} Buf;

static size_t collect(char *p, size_t size, size_t nmemb, void *userp)
{
    Buf *b = userp;
    size_t n = size * nmemb;
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, n);
    b->data = nd;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

cJSON *fake_runpod_control(FakeRunpod *f, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    Buf b = {0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || status < 200 || status > 299) {
        char msg[300];
        snprintf(msg, sizeof msg, "%.200s", b.data ? b.data : "");
        free(b.data);
        ck_abort_msg("fake control %s failed: %s HTTP %ld %s", path, curl_easy_strerror(rc), status,
                     msg);
    }
    cJSON *j = b.data ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    if (!j)
        ck_abort_msg("fake control %s: answer is not JSON", path);
    return j;
}

void fake_runpod_reset(FakeRunpod *f)
{
    cJSON_Delete(fake_runpod_control(f, "/_fake/reset", "{}"));
}

void fake_runpod_faults(FakeRunpod *f, const char *json)
{
    cJSON_Delete(fake_runpod_control(f, "/_fake/faults", json));
}

void fake_runpod_config(FakeRunpod *f, const char *json)
{
    cJSON_Delete(fake_runpod_control(f, "/_fake/config", json));
}

long long fake_runpod_stat(FakeRunpod *f, const char *name)
{
    cJSON *j = fake_runpod_control(f, "/_fake/stats", NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsNumber(v)) {
        cJSON_Delete(j);
        ck_abort_msg("fake stats has no number %s", name);
    }
    long long out = (long long)v->valuedouble;
    cJSON_Delete(j);
    return out;
}

cJSON *fake_runpod_requests(FakeRunpod *f)
{
    cJSON *j = fake_runpod_control(f, "/_fake/requests", NULL);
    cJSON *arr = cJSON_DetachItemFromObjectCaseSensitive(j, "requests");
    cJSON_Delete(j);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        ck_abort_msg("fake request log is not an array");
    }
    return arr;
}

int fake_runpod_count_requests(FakeRunpod *f, const char *method, const char *path)
{
    cJSON *arr = fake_runpod_requests(f);
    size_t plen = strlen(path);
    bool prefix = plen > 0 && path[plen - 1] == '*';
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, arr)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "method");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "path");
        if (!cJSON_IsString(m) || !cJSON_IsString(p) || strcmp(m->valuestring, method) != 0)
            continue;
        if (prefix ? strncmp(p->valuestring, path, plen - 1) == 0
                   : strcmp(p->valuestring, path) == 0)
            n++;
    }
    cJSON_Delete(arr);
    return n;
}

void fake_runpod_kill_pod(FakeRunpod *f, const char *pod_id, const char *to)
{
    char path[160], body[64];
    snprintf(path, sizeof path, "/_fake/pods/%s/kill", pod_id);
    snprintf(body, sizeof body, "{\"to\": \"%s\"}", to);
    cJSON_Delete(fake_runpod_control(f, path, body));
}
