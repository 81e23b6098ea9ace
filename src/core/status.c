/* status.c -- names and exit codes of Status values. Pure. */
#include "status.h"

const char *status_str(Status st)
{
    switch (st) {
    case STATUS_OK:
        return "ok";
    case STATUS_ERR_INTERNAL:
        return "internal";
    case STATUS_ERR_USAGE:
        return "usage";
    case STATUS_ERR_CONFIG:
        return "config";
    case STATUS_ERR_DB:
        return "database";
    case STATUS_ERR_API:
        return "runpod_api";
    case STATUS_ERR_PARTIAL:
        return "partial";
    case STATUS_ERR_CAPACITY:
        return "capacity";
    case STATUS_ERR_PARSE:
        return "parse";
    case STATUS_ERR_NOT_FOUND:
        return "not_found";
    case STATUS_ERR_NOMEM:
        return "nomem";
    case STATUS_LOCKED:
        return "locked";
    case STATUS_ERR_LEASE_LOST:
        return "lease_lost";
    case STATUS_TASKS_FAILED:
        return "tasks_failed";
    case STATUS_TIMEOUT:
        return "timeout";
    case STATUS_WAIT_FAILED:
        return "wait_failed";
    case STATUS_INTERRUPTED:
        return "interrupted";
    case STATUS_TERMINATED:
        return "terminated";
    }
    return "unknown";
}

int status_exit_code(Status st)
{
    switch (st) {
    case STATUS_OK:
    case STATUS_LOCKED:
        return 0;
    case STATUS_ERR_USAGE:
        return 2;
    case STATUS_ERR_CONFIG:
        return 3;
    case STATUS_ERR_DB:
    case STATUS_ERR_LEASE_LOST:
        return 4;
    case STATUS_ERR_API:
        return 5;
    case STATUS_ERR_PARTIAL:
        return 6;
    case STATUS_ERR_INTERNAL:
    case STATUS_ERR_CAPACITY:
    case STATUS_ERR_PARSE:
    case STATUS_ERR_NOT_FOUND:
    case STATUS_ERR_NOMEM:
    case STATUS_TASKS_FAILED:
        return 1;
    case STATUS_TIMEOUT:
        return 124;
    case STATUS_WAIT_FAILED:
        return 125;
    case STATUS_INTERRUPTED:
        return 130;
    case STATUS_TERMINATED:
        return 143;
    }
    return 1;
}
