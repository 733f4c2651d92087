/*
 * cli.h -- the netwho command line: one function per subcommand.
 * Each returns the process exit status: 0 done, 1 runtime error, 2 usage.
 */
#ifndef NETWHO_SERVER_CLI_H
#define NETWHO_SERVER_CLI_H

#define NW_EXIT_OK 0
#define NW_EXIT_ERROR 1
#define NW_EXIT_USAGE 2

int cli_ingest(int argc, char **argv);
int cli_query(int argc, char **argv);       /* query, who, transfers, failures */
int cli_partitions(int argc, char **argv);
int cli_export(int argc, char **argv);      /* export --sysmon */

/* Prints "netwho: <msg>" to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
