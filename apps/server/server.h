/* server.h - the HTTP server's one entry point, for the `modelpool` command (apps/cli). The server
 * itself (apps/server/) knows nothing of the CLI: it uses apps/common and modelpool.h only. */
#ifndef MP_SERVER_H
#define MP_SERVER_H

/* `modelpool serve`: argv[0] is "serve". Runs until SIGINT/SIGTERM; returns the exit code. */
int mp_server_main(int argc, char **argv);

#endif
