/* fake_runpod.h -- start, control and stop tests/fakes/fake_runpod.py from Check tests.
 *
 * Test helper (shell): forks /usr/bin/python3 on the fake with --port 0 and --parent-pid, so a
 * crashed test cannot leak it, and talks to its /_fake/ control API with libcurl. A failing
 * control call aborts the current test (ck_abort_msg) with a message naming what went wrong; a
 * failure to start prints the reason and exits the process (start often runs in main, outside
 * any test, where Check cannot report).
 *
 * The script is found through ORCH_SOURCE_DIR (ctest sets it). When ORCH_FAKE_RUNPOD_RECORD_DIR
 * is set, the fake appends every /v2 exchange to a JSON-lines file in that directory (the
 * contract test validates them against the OpenAPI document).
 *
 * Typical use: start one fake per test binary in an unchecked fixture (parent process), reset
 * it in a checked fixture before each test:
 *
 *     static FakeRunpod *fake;
 *     static void start(void) { fake = fake_runpod_start("test-key", NULL); }
 *     static void stop(void)  { fake_runpod_stop(fake); fake = NULL; }
 *     static void reset(void) { fake_runpod_reset(fake); }
 */
#ifndef ORCH_TEST_FAKE_RUNPOD_H
#define ORCH_TEST_FAKE_RUNPOD_H

#include <cJSON.h>
#include <sys/types.h>

typedef struct FakeRunpod FakeRunpod;

/* Starts the fake with bearer key api_key and extra command-line arguments (a NULL-terminated
 * array, or NULL), e.g. {"--boot-cmd", "exec my-worker", "--boot-delay-sec", "0.2", NULL}.
 * Returns once it listens. Calls curl_global_init (reference counted). */
FakeRunpod *fake_runpod_start(const char *api_key, const char *const *extra_args);

/* Stops the fake (SIGTERM, then SIGKILL after 5 s), which stops its boot processes. NULL-safe.
 * Calls curl_global_cleanup. */
void fake_runpod_stop(FakeRunpod *f);

/* "http://127.0.0.1:<port>" -- the RUNPOD_API_BASE_URL for the client. */
const char *fake_runpod_url(const FakeRunpod *f);
int fake_runpod_port(const FakeRunpod *f);
pid_t fake_runpod_pid(const FakeRunpod *f);

/* POST /_fake/reset: no pods, no faults, empty request log, config from the command line. */
void fake_runpod_reset(FakeRunpod *f);

/* POST /_fake/faults with a JSON object, e.g. "{\"no_capacity\": [\"A\"]}". */
void fake_runpod_faults(FakeRunpod *f, const char *json);

/* POST /_fake/config with a JSON object, e.g. "{\"boot_delay_sec\": 60}". */
void fake_runpod_config(FakeRunpod *f, const char *json);

/* GET (body NULL) or POST (body given) a control path such as "/_fake/stats"; returns the
 * parsed answer (caller cJSON_Delete). Aborts unless the answer is 2xx JSON. */
cJSON *fake_runpod_control(FakeRunpod *f, const char *path, const char *body);

/* A number from /_fake/stats: "max_pods_alive", "pods_alive", "requests", "creates". */
long long fake_runpod_stat(FakeRunpod *f, const char *name);

/* The request log (GET /_fake/requests), as a JSON array the caller deletes. */
cJSON *fake_runpod_requests(FakeRunpod *f);

/* Number of logged requests with this method and path (path may be a prefix ending in '*'). */
int fake_runpod_count_requests(FakeRunpod *f, const char *method, const char *path);

/* Kills a pod from outside: to is "EXITED", "ERROR" or "gone". */
void fake_runpod_kill_pod(FakeRunpod *f, const char *pod_id, const char *to);

#endif
