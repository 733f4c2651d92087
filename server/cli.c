/*
 * cli.c -- netwho's entry point: dispatch to a subcommand, print help.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "netwho/encode.h"
#include "netwho/params.h"

static const char usage[] =
    "usage: netwho <command> [options]\n"
    "\n"
    "Answers \"which process on which Windows host talked to this address, when,\n"
    "and how much did it send?\" from Microsoft-Windows-Kernel-Network events,\n"
    "with the process told by Kernel-Process and Sysmon events (PID reuse safe).\n"
    "\n"
    "commands:\n"
    "  ingest      read events (files or -) into a store\n"
    "  query       list connections matching filters\n"
    "  who         which processes talked to an IP or CIDR\n"
    "  transfers   a connection's traffic over time\n"
    "  failures    failed connection attempts (events 17 and 49)\n"
    "  hourly      connections and bytes per hour, process and remote end, kept\n"
    "              longer than the raw connections\n"
    "  partitions  the store's partitions and what they hold\n"
    "  export      connections as Sysmon Event ID 3 (XML, JSON) or ECS\n"
    "\n"
    "Run 'netwho <command> --help' for a command's options; 'man netwho' or\n"
    "docs/netwho.md for the full description.\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("netwho: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_flow_filter(const char *name)
{
    return strcmp(name, "community_id") == 0 || strcmp(name, "exclude_loopback") == 0 ||
           strcmp(name, "scope") == 0;
}

void cli_filter_name(const char *opt, char *name, size_t cap)
{
    snprintf(name, cap, "%s", opt);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
}

int cli_apply_filter(nw_query *q, const char *name, const char *optarg)
{
    const char *value = optarg ? optarg : strcmp(name, "exclude_loopback") == 0 ? "true" : "";
    nw_err err = {{0}};
    if (nw_params_apply(q, name, value, NULL, &err) != NW_OK) {
        cli_error("--%s", err.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return NW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return NW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("netwho 0.1.0");
        return NW_EXIT_OK;
    }
    /* Subcommands see argv[0] = the command name, as getopt expects. */
    if (strcmp(cmd, "ingest") == 0)
        return cli_ingest(argc - 1, argv + 1);
    if (strcmp(cmd, "query") == 0 || strcmp(cmd, "who") == 0 ||
        strcmp(cmd, "transfers") == 0 || strcmp(cmd, "failures") == 0)
        return cli_query(argc - 1, argv + 1);
    if (strcmp(cmd, "hourly") == 0)
        return cli_hourly(argc - 1, argv + 1);
    if (strcmp(cmd, "partitions") == 0)
        return cli_partitions(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return cli_export(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'netwho --help')", cmd);
    return NW_EXIT_USAGE;
}

int cli_args_done(const char *cmd, int argc, char **argv, const char *store_dir)
{
    if (optind < argc) {
        cli_error("%s: unexpected argument '%s'", cmd, argv[optind]);
        return NW_EXIT_USAGE;
    }
    if (!store_dir) {
        cli_error("%s: --store DIR is required", cmd);
        return NW_EXIT_USAGE;
    }
    return NW_EXIT_OK;
}

int cli_format(const char *arg)
{
    int format = nw_format_from_name(arg);
    if (format < 0)
        cli_error("-o: expected table, json, ndjson or csv, got '%s'", arg);
    return format;
}

int cli_bad_option(const char *cmd, char **argv)
{
    cli_error("%s: unknown or incomplete option '%s' (see 'netwho %s --help')", cmd,
              argv[optind - 1], cmd);
    return NW_EXIT_USAGE;
}

nw_store *cli_store_open(const char *store_dir)
{
    nw_err err = {{0}};
    nw_store *store = NULL;
    nw_store_opts sopts = {.partition = NW_PART_DEFAULT, .create = 0};
    if (nw_store_open(store_dir, &sopts, &store, &err) != NW_OK) {
        cli_error("%s", err.msg);
        return NULL;
    }
    return store;
}

void cli_out_init(cli_out *o)
{
    memset(o, 0, sizeof *o);
    /* One record is at most a few KB (free text is bounded by process.h). */
    nw_buf_init(&o->buf, 1 << 20);
}

int cli_out_drain(cli_out *o)
{
    if (o->buf.len && fwrite(o->buf.data, 1, o->buf.len, stdout) != o->buf.len)
        o->write_failed = 1;
    nw_buf_reset(&o->buf);
    return o->write_failed;
}

int cli_out_close(cli_out *o, const char *cmd)
{
    cli_out_drain(o);
    nw_buf_free(&o->buf);
    if (o->write_failed || fflush(stdout) != 0) {
        cli_error("%s: writing the output failed", cmd);
        return NW_EXIT_ERROR;
    }
    return NW_EXIT_OK;
}
