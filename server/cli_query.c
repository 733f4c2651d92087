/*
 * cli_query.c -- netwho query | who | transfers | failures | partitions.
 *
 * Every filter goes through params.h, the same code the HTTP API uses, so
 * a value is accepted or refused identically by both.  Rows are encoded one
 * at a time into a small buffer and written out, so any answer size runs in
 * constant memory.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "netwho/encode.h"
#include "netwho/params.h"
#include "netwho/query.h"
#include "netwho/store.h"

static const char query_usage[] =
    "usage: netwho query --store DIR [filters] [-o table|json|ndjson|csv]\n"
    "       netwho who --store DIR --ip IP|CIDR [filters] [-o ...]\n"
    "       netwho transfers --store DIR --id ID [-o ...]\n"
    "       netwho failures --store DIR [--host NAME] [--from T] [--to T] [-o ...]\n"
    "\n"
    "query      connections matching every filter given, oldest first\n"
    "who        one row per host and process whose connections had their REMOTE\n"
    "           end in IP|CIDR: connections, bytes each way, first and last seen;\n"
    "           most bytes first\n"
    "transfers  one connection's traffic per time bucket\n"
    "failures   failed connection attempts (events 17/49: no address, no pid)\n"
    "\n"
    "filters (combined with AND):\n"
    "  --ip IP|CIDR        either end of the connection in the address or block\n"
    "                      (10.0.0.0/8, 2001:db8::/32, 192.0.2.7, ::1)\n"
    "  --port N            either end's port is N (like tcpdump's 'port')\n"
    "  --local-port N      --remote-port N\n"
    "  --pid N             the owning process (event_data.PID)\n"
    "  --host NAME         the Windows computer name (case-insensitive)\n"
    "  --process NAME      the process that held the pid when the connection\n"
    "                      began: image file name (svchost.exe, svchost) or full\n"
    "                      path (C:\\Windows\\System32\\svchost.exe), any case\n"
    "  --proto tcp|udp     --direction outbound|inbound|unknown\n"
    "  --state attempted|established|closed|failed\n"
    "  --from T  --to T    active in [from, to): RFC 3339 (2026-03-16T00:21:36Z,\n"
    "                      +01:00 offsets) or epoch seconds (1773620496.5)\n"
    CLI_FLOW_FILTERS_USAGE
    "  --limit N           at most N rows (default: all)\n"
    "output:\n"
    "  -o, --output FMT    table (default on a terminal), json (default otherwise:\n"
    "                      one JSON array), ndjson, csv\n"
    "  --store DIR         the store (required)\n"
    "  -h, --help          this text\n";

typedef struct out_ctx {
    nw_enc enc;
    cli_out out;
} out_ctx;

static int on_conn(void *p, const nw_conn *c)
{
    out_ctx *o = p;
    return nw_enc_conn(&o->enc, c) || cli_out_drain(&o->out);
}

static int on_transfer(void *p, const nw_transfer *t)
{
    out_ctx *o = p;
    return nw_enc_transfer(&o->enc, t) || cli_out_drain(&o->out);
}

static int on_failure(void *p, const nw_failure *f)
{
    out_ctx *o = p;
    return nw_enc_failure(&o->enc, f) || cli_out_drain(&o->out);
}

int cli_query(int argc, char **argv)
{
    const char *cmd = argv[0];
    enum { O_STORE = 256, O_ID, O_FILTER };
    /* Filter options carry their API name in the flag pointer's slot. */
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE},
        {"id", required_argument, 0, O_ID},
        CLI_FILTER_OPTIONS(O_FILTER),
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_dir = NULL;
    int64_t id = 0;
    int format = isatty(STDOUT_FILENO) ? NW_FMT_TABLE : NW_FMT_JSON;
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    int c, idx = 0;
    int is_who = strcmp(cmd, "who") == 0, is_transfers = strcmp(cmd, "transfers") == 0,
        is_failures = strcmp(cmd, "failures") == 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, &idx)) != -1) {
        switch (c) {
        case O_STORE: store_dir = optarg; break;
        case O_ID:
            if (!is_transfers) {
                cli_error("%s: --id is for 'netwho transfers'", cmd);
                return NW_EXIT_USAGE;
            }
            if (nw_params_id(optarg, &id)) {
                cli_error("--id: expected a connection id (a positive number), got '%s'", optarg);
                return NW_EXIT_USAGE;
            }
            break;
        case O_FILTER: {
            char name[32];
            cli_filter_name(opts[idx].name, name, sizeof name);
            if (is_transfers || (is_failures && strcmp(name, "host") && strcmp(name, "from") &&
                                 strcmp(name, "to")) ||
                (is_who && (strcmp(name, "process") == 0 || cli_flow_filter(name)))) {
                cli_error("%s: --%s does not apply here (see 'netwho %s --help')", cmd,
                          opts[idx].name, cmd);
                return NW_EXIT_USAGE;
            }
            if (cli_apply_filter(&q, name, optarg))
                return NW_EXIT_USAGE;
            break;
        }
        case 'o':
            if ((format = cli_format(optarg)) < 0)
                return NW_EXIT_USAGE;
            break;
        case 'h': fputs(query_usage, stdout); return NW_EXIT_OK;
        default: return cli_bad_option(cmd, argv);
        }
    }
    if (cli_args_done(cmd, argc, argv, store_dir) != NW_EXIT_OK)
        return NW_EXIT_USAGE;
    if (is_who && !q.has_ip) {
        cli_error("who: --ip IP|CIDR is required");
        return NW_EXIT_USAGE;
    }
    if (is_transfers && id == 0) {
        cli_error("transfers: --id ID is required");
        return NW_EXIT_USAGE;
    }
    if (nw_params_check(&q, NULL, &err) != NW_OK) {
        cli_error("--%s", err.msg);
        return NW_EXIT_USAGE;
    }

    nw_store *store = cli_store_open(store_dir);
    if (!store)
        return NW_EXIT_ERROR;

    out_ctx o;
    cli_out_init(&o.out);
    nw_status st = NW_OK;
    nw_record rec = is_who ? NW_REC_WHO : is_transfers ? NW_REC_TRANSFER
                            : is_failures ? NW_REC_FAILURE : NW_REC_CONN;
    nw_enc_begin(&o.enc, (nw_format)format, rec, &o.out.buf);
    cli_out_drain(&o.out);
    if (is_who) {
        nw_who_row *rows = NULL;
        size_t n = 0;
        st = nw_query_who(store, &q, &rows, &n, &err);
        for (size_t i = 0; st == NW_OK && i < n; i++)
            if (nw_enc_who(&o.enc, &rows[i]) || cli_out_drain(&o.out))
                break;
        free(rows);
    } else if (is_transfers) {
        nw_conn conn;
        st = nw_query_connection(store, id, &conn, &err);
        if (st == NW_OK)
            st = nw_query_transfers(store, id, on_transfer, &o, &err);
    } else if (is_failures) {
        st = nw_query_failures(store, q.host, q.from, q.to, on_failure, &o, &err);
    } else {
        st = nw_query_connections(store, &q, on_conn, &o, NULL, &err);
    }
    nw_enc_end(&o.enc);
    nw_store_close(store);
    if (st != NW_OK) {
        cli_out_close(&o.out, cmd);
        cli_error("%s: %s", cmd, err.msg);
        return NW_EXIT_ERROR;
    }
    return cli_out_close(&o.out, cmd);
}

int cli_partitions(int argc, char **argv)
{
    const char *store_dir = NULL;
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's')
            store_dir = optarg;
        else if (c == 'h') {
            puts("usage: netwho partitions --store DIR\n\n"
                 "Prints the store's partitions as JSON: file, time span, the span of the\n"
                 "connections it holds (first_seen min/max, last_seen max), row counts and\n"
                 "bytes on disk.");
            return NW_EXIT_OK;
        } else {
            cli_error("partitions: unknown or incomplete option '%s'", argv[optind - 1]);
            return NW_EXIT_USAGE;
        }
    }
    if (!store_dir) {
        cli_error("partitions: --store DIR is required");
        return NW_EXIT_USAGE;
    }
    nw_err err = {{0}};
    nw_store *store = cli_store_open(store_dir);
    nw_partition_info *parts = NULL;
    size_t n = 0;
    if (!store)
        return NW_EXIT_ERROR;
    if (nw_store_partitions(store, &parts, &n, &err) != NW_OK) {
        cli_error("%s", err.msg);
        nw_store_close(store);
        return NW_EXIT_ERROR;
    }
    printf("{\"partitioning\":\"%s\",\"store_bytes\":%" PRIu64 ",\"partitions\":[",
           nw_partitioning_name(nw_store_partitioning(store)), nw_store_bytes(store));
    for (size_t i = 0; i < n; i++) {
        char s[NW_TIME_STRLEN] = "", e[NW_TIME_STRLEN] = "";
        nw_time_format(parts[i].start, s, sizeof s);
        nw_time_format(parts[i].end, e, sizeof e);
        printf("%s\n{\"name\":\"%s\",\"start\":\"%s\",\"end\":\"%s\",\"connections\":%" PRIu64
               ",\"transfers\":%" PRIu64 ",\"failures\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
               i ? "," : "", parts[i].name, s, e, parts[i].connections, parts[i].transfers,
               parts[i].failures, parts[i].file_bytes);
    }
    puts("]}");
    free(parts);
    nw_store_close(store);
    return NW_EXIT_OK;
}
