/* cli.c -- command table, help and dispatch. Shell module. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "explain_cmd.h"

static Status cmd_help(int argc, char **argv);

static const CliCommand COMMANDS[] = {
    {"single", "[--dry-run]", "one cycle, then exit (the cron entry point); prints a JSON summary",
     cmd_single},
    {"continuous", "[--interval S]", "the cycle in a loop (default ORCHESTRATOR_POLL_SEC)",
     cmd_continuous},
    {"plan", "", "same as single --dry-run: prints the plan and its reasons, changes nothing",
     cmd_plan},
    {"migrate", "", "applies the embedded SQL migrations in order, idempotently, under a lock",
     cmd_migrate},
    {"status", "[--json] [--watch S]",
     "queue, workers, heartbeat ages, VRAM, current task, cost per hour, cost per task and idle "
     "GPU cost (last hour, last day)",
     cmd_status},
    {"reconcile", "[--terminate] [--json]",
     "RunPod pods vs worker rows: leaked and vanished pods, $/h; --terminate cleans up",
     cmd_reconcile},
    {"spawn", "[--pool NAME] [--count N] [--dry-run]",
     "spawns workers into a pool by hand (the scale-up path: MAX_ACTIVE_GPUS, breaker, spend cap "
     "hold; --pool is needed when POOLS has several)",
     cmd_spawn},
    {"terminate", "WORKER_ID [--dry-run]", "drains and terminates one worker, re-queues its tasks",
     cmd_terminate},
    {"shutdown-all", "[--yes] [--dry-run]",
     "terminates every worker pod (asks, or needs --yes when not on a terminal)", cmd_shutdown_all},
    {"submit",
     "--type T [--params JSON] [--run-type R] [--depends-on IDS] [--max-attempts N] | --file "
     "F.csv|F.jsonl [--format csv|jsonl] [--json] [--wait [--timeout S] [--no-listen]]",
     "queues tasks (validated first: all or nothing); prints the new ids. --wait then waits "
     "until every one ends and prints each outcome: exit 0 all Complete, 1 any Failed or "
     "Cancelled, 124 --timeout passed, 130/143 SIGINT/SIGTERM (the tasks stay queued)",
     cmd_submit},
    {"explain", "TASK_ID | --fleet [--json]",
     "why a task is not running (its queue position, dependencies, backoff, its pool's limits, "
     "workers booting), or why the fleet has its size; read-only, database only",
     cmd_explain},
    {"logs", "[--worker ID] [--task ID] [--cycle N] [--level L] [--since DUR] [--limit N] [--json]",
     "reads system_logs, oldest first; with --worker, also the pod log tail read when it failed",
     cmd_logs},
    {"config", "[--json]", "effective configuration, secrets redacted", cmd_config},
    {"gateway", "[--port N]",
     "the workers' HTTP API (Supabase dialect of Headless-Wan2GP) on GATEWAY_PORT", cmd_gateway},
    {"simulate",
     "--trace F.csv|F.jsonl | --from-db [--since 7d] | --generate steady|bursty|diurnal|sparse "
     "[--seed N] [--tasks N] [--days D]  [--set KEY=VALUE]... [--compare A.env B.env ...] "
     "[--json] [--export-trace F.csv]",
     "policy lab: the fleet simulated on a trace with the real planner; dollars and waits "
     "against the clairvoyant bound (structure_docs/simulation.md)",
     cmd_simulate},
    {"version", "", "prints the version", cmd_version},
    {"help", "[COMMAND]", "this help, or one command's", cmd_help},
};

#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

const CliCommand *cli_commands(size_t *count)
{
    *count = N_COMMANDS;
    return COMMANDS;
}

static const CliCommand *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

static void print_command_help(const CliCommand *c)
{
    printf("usage: orchestrator %s %s\n\n  %s\n\n"
           "Configuration comes from the environment; see `orchestrator help config` or "
           "env.example.\n",
           c->name, c->args, c->summary);
}

static Status cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "config") == 0) {
            char *h = config_help();
            printf("Environment variables:\n%s", h ? h : "");
            free(h);
            return STATUS_OK;
        }
        const CliCommand *c = find(argv[1]);
        if (!c) {
            fprintf(stderr, "orchestrator: unknown command '%s'; run `orchestrator help`\n",
                    argv[1]);
            return STATUS_ERR_USAGE;
        }
        print_command_help(c);
        return STATUS_OK;
    }
    printf("orchestrator %s -- keeps a RunPod GPU fleet sized to a PostgreSQL task queue\n\n"
           "usage: orchestrator COMMAND [ARGS]\n\ncommands:\n",
           ORCH_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("  %-13s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    printf("\n`orchestrator COMMAND --help` for one command, `orchestrator help config` for the "
           "environment variables.\nExit codes: 0 ok, 1 internal, 2 usage, 3 configuration, "
           "4 database, 5 RunPod API, 6 partial; submit --wait: 0 all Complete, 1 any Failed, "
           "124 timeout, 125 wait failed, 130/143 interrupted.\n");
    return STATUS_OK;
}

Status cli_run(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: orchestrator COMMAND [ARGS]\n"
                        "orchestrator: no command given; run `orchestrator help` for the "
                        "commands\n");
        return STATUS_ERR_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0)
        name = "version";
    const CliCommand *c = find(name);
    if (!c) {
        fprintf(stderr, "orchestrator: unknown command '%s'; run `orchestrator help`\n", name);
        return STATUS_ERR_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_command_help(c);
            return STATUS_OK;
        }
    }
    return c->run(argc - 1, argv + 1);
}
