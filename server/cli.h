/*
 * cli.h -- the netwho command line: one function per subcommand.
 * Each returns the process exit status: 0 done, 1 runtime error, 2 usage.
 */
#ifndef NETWHO_SERVER_CLI_H
#define NETWHO_SERVER_CLI_H

#include <stddef.h>

#include "netwho/buf.h"
#include "netwho/query.h"
#include "netwho/store.h"

#define NW_EXIT_OK 0
#define NW_EXIT_ERROR 1
#define NW_EXIT_USAGE 2

int cli_ingest(int argc, char **argv);
int cli_query(int argc, char **argv);       /* query, who, transfers, failures */
int cli_partitions(int argc, char **argv);
int cli_hourly(int argc, char **argv);      /* the hourly roll-up */
int cli_export(int argc, char **argv);      /* export --sysmon */

/* The residual flow filters of 'netwho query' and 'netwho export' (params.h;
 * the options spell '_' as '-'), and their lines of --help. */
#define CLI_FLOW_FILTERS_USAGE                                                  \
    "  --community-id ID   the flow whose Community ID v1 (seed 0) is ID:\n"  \
    "                      1: and 28 base64 characters, as Zeek and Suricata\n" \
    "                      log it\n"                                              \
    "  --exclude-loopback[=true|false]\n"                                       \
    "                      leave out connections whose remote end is loopback\n" \
    "  --scope CLASS       the remote end's address class: public, private,\n"  \
    "                      loopback, link-local, multicast, broadcast or\n"     \
    "                      unspecified\n"                                          \
    "                      (these three: query and export, not who; they\n"  \
    "                      narrow the other filters -- alone, --community-id\n" \
    "                      reads every connection of the time window)\n"

/* 1 if name (params.h spelling) is one of the flow filters above. */
int cli_flow_filter(const char *name);

/* The connection filter options of query and export, as getopt_long
 * entries whose val is the caller's code for "a filter". */
#define CLI_FILTER_OPTIONS(val)                                               \
    {"ip", required_argument, 0, (val)},                                     \
    {"port", required_argument, 0, (val)},                                   \
    {"local-port", required_argument, 0, (val)},                             \
    {"remote-port", required_argument, 0, (val)},                            \
    {"pid", required_argument, 0, (val)},                                    \
    {"host", required_argument, 0, (val)},                                   \
    {"process", required_argument, 0, (val)},                                \
    {"proto", required_argument, 0, (val)},                                  \
    {"direction", required_argument, 0, (val)},                              \
    {"state", required_argument, 0, (val)},                                  \
    {"from", required_argument, 0, (val)},                                   \
    {"to", required_argument, 0, (val)},                                     \
    {"community-id", required_argument, 0, (val)},                           \
    {"exclude-loopback", optional_argument, 0, (val)},                       \
    {"scope", required_argument, 0, (val)},                                  \
    {"limit", required_argument, 0, (val)}

/* The params.h name of filter option opt ("local-port" -> "local_port"),
 * into name[cap]. */
void cli_filter_name(const char *opt, char *name, size_t cap);

/* Applies filter name (params.h spelling) with option argument optarg (NULL
 * for a bare --exclude-loopback, which means true) to q.  0, or -1 after
 * printing the error. */
int cli_apply_filter(nw_query *q, const char *name, const char *optarg);

/* The end of option parsing common to the commands that read a store:
 * NW_EXIT_OK, or NW_EXIT_USAGE after printing why (an argument left over,
 * no --store). */
int cli_args_done(const char *cmd, int argc, char **argv, const char *store_dir);

/* The nw_format named by -o's argument (table, json, ndjson, csv), or -1
 * after printing the error. */
int cli_format(const char *arg);

/* The error for an option getopt_long did not take (argv[optind - 1]);
 * returns NW_EXIT_USAGE. */
int cli_bad_option(const char *cmd, char **argv);

/* Opens an existing store; NULL after printing the error.  Caller closes. */
nw_store *cli_store_open(const char *store_dir);

/* An answer streamed to stdout through a buffer: encoders append to buf,
 * cli_out_drain writes it out after each record, so memory stays one
 * record whatever the answer's size. */
typedef struct cli_out {
    nw_buf buf;
    int write_failed;
} cli_out;

void cli_out_init(cli_out *o);

/* Writes what buf holds to stdout and empties it; nonzero once a write has
 * failed (the caller stops the query). */
int cli_out_drain(cli_out *o);

/* Drains, frees the buffer and flushes stdout: NW_EXIT_OK, or NW_EXIT_ERROR
 * after printing "<cmd>: writing the output failed". */
int cli_out_close(cli_out *o, const char *cmd);

/* Prints "netwho: <msg>" to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
