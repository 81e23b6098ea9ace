/* main.c -- turns argv into cli_run() and a Status into an exit code; nothing else. */
#include "cli.h"

int main(int argc, char **argv)
{
    return status_exit_code(cli_run(argc, argv));
}
