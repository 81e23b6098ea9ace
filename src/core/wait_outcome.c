/* wait_outcome.c -- pure: final task statuses and the verdict of `submit --wait`. No I/O. */
#include "wait_outcome.h"

#include <string.h>

bool wait_status_final(const char *status)
{
    return status && (strcmp(status, "Complete") == 0 || strcmp(status, "Failed") == 0 ||
                      strcmp(status, "Cancelled") == 0);
}

void wait_tally_add(WaitTally *t, const char *status)
{
    if (!status)
        t->missing++;
    else if (strcmp(status, "Complete") == 0)
        t->complete++;
    else if (strcmp(status, "Failed") == 0)
        t->failed++;
    else if (strcmp(status, "Cancelled") == 0)
        t->cancelled++;
    else
        t->pending++;
}

Status wait_verdict(const WaitTally *t, Status stopped)
{
    if (t->pending > 0)
        return stopped == STATUS_OK ? STATUS_WAIT_FAILED : stopped;
    if (t->failed + t->cancelled + t->missing > 0)
        return STATUS_TASKS_FAILED;
    return STATUS_OK;
}
