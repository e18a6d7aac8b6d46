/* cli.h - the `modelpool` command's subcommands (apps/cli/). Each takes argv[0] = its name and
 * returns the process exit code. `serve` lives in apps/server (server.h). */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "common/app.h"

int mp_cli_transcribe(int argc, char **argv);
int mp_cli_info(int argc, char **argv);
int mp_cli_bench(int argc, char **argv);

#endif
