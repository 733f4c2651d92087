/*
 * cli_export.c -- netwho export --sysmon: connections as Sysmon Event ID 3
 * (xml, json, ndjson) or Elastic Common Schema NDJSON (ecs).
 *
 * Filters go through params.h like 'netwho query'.  Each event is encoded
 * into a small buffer and written out at once, so an export of any size
 * runs in constant memory.  Processes come from nw_sysmon_process_for, the
 * one attribution hook (the process the query engine attributed, or NULL).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "netwho/params.h"
#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/sysmon.h"

static const char export_usage[] =
    "usage: netwho export --sysmon --store DIR [filters] [-o xml|json|ndjson|ecs]\n"
    "                     [--ossem] [--bulk [--index NAME]] [--no-port-names]\n"
    "                     [--no-hostnames]\n"
    "\n"
    "One Sysmon Event ID 3 (network connection) per matching connection, oldest\n"
    "first, rendered as Sysmon renders it: the initiator is Source, IPv6 is\n"
    "written uncompressed, an unknown value is '-'.\n"
    "\n"
    "filters: as 'netwho query' (--ip, --port, --local-port, --remote-port, --pid,\n"
    "  --host, --process, --proto, --direction, --state, --from, --to,\n"
    "  --community-id, --exclude-loopback, --scope, --limit)\n"
    "output:\n"
    "  -o, --output FMT    xml (default: Sysmon's Event XML inside <Events>),\n"
    "                      json (an array of objects keyed by Sysmon's field\n"
    "                      names), ndjson (one such object per line), ecs\n"
    "                      (Elastic Common Schema, one document per line)\n"
    "  --ossem             json/ndjson: add the OSSEM names (src_ip, dst_port, ...)\n"
    "  --bulk              ecs: an Elasticsearch bulk action line before each\n"
    "                      document ({\"create\":{}}), for POST _bulk\n"
    "  --index NAME        with --bulk: name the index in the action line\n"
    "  --no-port-names     every SourcePortName/DestinationPortName '-' (as Sysmon\n"
    "                      13 and later with name lookups off)\n"
    "  --no-hostnames      every SourceHostname/DestinationHostname '-'\n"
    "  --store DIR         the store (required)\n"
    "  --sysmon            the export's kind (required; the only one so far)\n"
    "  -h, --help          this text\n";

typedef struct export_ctx {
    nw_sysmon_enc enc;
    cli_out out;
    nw_store *store;
    int encode_failed;
} export_ctx;

static int on_conn(void *p, const nw_conn *c)
{
    export_ctx *x = p;
    nw_process scratch;
    if (nw_sysmon_conn(&x->enc, c, nw_sysmon_process_for(x->store, c, &scratch))) {
        x->encode_failed = 1;
        return 1;
    }
    return cli_out_drain(&x->out);
}

int cli_export(int argc, char **argv)
{
    enum { O_STORE = 256, O_FILTER, O_SYSMON, O_OSSEM, O_BULK, O_INDEX, O_NOPORT, O_NOHOST };
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE},
        {"sysmon", no_argument, 0, O_SYSMON},
        {"ossem", no_argument, 0, O_OSSEM},
        {"bulk", no_argument, 0, O_BULK},
        {"index", required_argument, 0, O_INDEX},
        {"no-port-names", no_argument, 0, O_NOPORT},
        {"no-hostnames", no_argument, 0, O_NOHOST},
        CLI_FILTER_OPTIONS(O_FILTER),
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_dir = NULL;
    int sysmon = 0;
    int format = NW_SYSMON_XML;
    nw_sysmon_opts so;
    memset(&so, 0, sizeof so);
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    int c, idx = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, &idx)) != -1) {
        switch (c) {
        case O_STORE: store_dir = optarg; break;
        case O_SYSMON: sysmon = 1; break;
        case O_OSSEM: so.ossem = 1; break;
        case O_BULK: so.ecs_bulk = 1; break;
        case O_INDEX: so.ecs_index = optarg; break;
        case O_NOPORT: so.no_port_names = 1; break;
        case O_NOHOST: so.no_hostnames = 1; break;
        case O_FILTER: {
            char name[32];
            cli_filter_name(opts[idx].name, name, sizeof name);
            if (cli_apply_filter(&q, name, optarg))
                return NW_EXIT_USAGE;
            break;
        }
        case 'o':
            format = nw_sysmon_format_from_name(optarg);
            if (format < 0) {
                cli_error("-o: expected xml, json, ndjson or ecs, got '%s'", optarg);
                return NW_EXIT_USAGE;
            }
            break;
        case 'h': fputs(export_usage, stdout); return NW_EXIT_OK;
        default: return cli_bad_option("export", argv);
        }
    }
    if (!sysmon && optind >= argc) {
        cli_error("export: say what to export: --sysmon (Sysmon Event ID 3 / ECS)");
        return NW_EXIT_USAGE;
    }
    if (cli_args_done("export", argc, argv, store_dir) != NW_EXIT_OK)
        return NW_EXIT_USAGE;
    if ((so.ecs_bulk || so.ecs_index) && format != NW_SYSMON_ECS) {
        cli_error("export: --bulk and --index are for -o ecs");
        return NW_EXIT_USAGE;
    }
    if (so.ecs_index && !so.ecs_bulk) {
        cli_error("export: --index needs --bulk");
        return NW_EXIT_USAGE;
    }
    if (so.ossem && format != NW_SYSMON_JSON && format != NW_SYSMON_NDJSON) {
        cli_error("export: --ossem is for -o json and -o ndjson");
        return NW_EXIT_USAGE;
    }
    if (nw_params_check(&q, NULL, &err) != NW_OK) {
        cli_error("--%s", err.msg);
        return NW_EXIT_USAGE;
    }
    /* Execution: the exporting process (single-threaded: its thread id is
     * its pid on Linux). */
    so.exporter_pid = (uint32_t)getpid();
    so.exporter_tid = so.exporter_pid;

    export_ctx x;
    memset(&x, 0, sizeof x);
    x.store = cli_store_open(store_dir);
    if (!x.store)
        return NW_EXIT_ERROR;
    cli_out_init(&x.out);
    nw_sysmon_begin(&x.enc, (nw_sysmon_format)format, &so, &x.out.buf);
    cli_out_drain(&x.out);
    nw_status st = nw_query_connections(x.store, &q, on_conn, &x, NULL, &err);
    if (st == NW_OK && !x.encode_failed)
        nw_sysmon_end(&x.enc);
    nw_store_close(x.store);
    if (x.encode_failed)    /* keep no part of the event that did not fit */
        nw_buf_reset(&x.out.buf);
    int rc = cli_out_close(&x.out, "export");
    if (st != NW_OK) {
        cli_error("export: %s", err.msg);
        return NW_EXIT_ERROR;
    }
    if (x.encode_failed) {
        cli_error("export: an event did not fit the output buffer");
        return NW_EXIT_ERROR;
    }
    return rc;
}
