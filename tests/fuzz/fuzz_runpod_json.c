/* fuzz_runpod_json.c -- libFuzzer harness: every RunPod response parser must survive any bytes
 * (SPEC 7: malformed bodies are errors with a message, never a crash). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runpod_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    Pod pod;
    PodList list = {0};
    char title[128], detail[512];
    runpod_json_parse_pod((const char *)data, size, &pod, err, sizeof err);
    if (runpod_json_parse_list((const char *)data, size, &list, err, sizeof err) == STATUS_OK)
        pod_list_clear(&list);
    runpod_json_parse_problem((const char *)data, size, title, sizeof title, detail, sizeof detail);
    return 0;
}
