/*
 * cli_hourly.c -- netwho hourly: the store's hourly roll-up (hourly.h).
 *
 * Parameters go through nw_params_hourly, the code GET
 * /api/v1/stats/hourly uses, so both accept and refuse the same values.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "netwho/encode.h"
#include "netwho/hourly.h"
#include "netwho/params.h"
#include "netwho/store.h"

static const char hourly_usage[] =
    "usage: netwho hourly --store DIR [--ip IP|CIDR] [--host NAME] [--pid N]\n"
    "                     [--port N] [--from T] [--to T] [--by hour|total]\n"
    "                     [--limit N] [-o table|json|ndjson|csv]\n"
    "\n"
    "Connections and bytes per hour, host, process, remote address and remote\n"
    "port, from the store's hourly roll-up (DIR/rollups.db), which is kept\n"
    "longer than the raw partitions (--rollup-retention-days of ingest).\n"
    "A connection counts in the hour of its first_seen; bytes in the hour the\n"
    "writer saw as the connection's last_seen, so totals over a day or more are\n"
    "exact while one hour's bytes are approximate.\n"
    "\n"
    "  --ip IP|CIDR        the REMOTE end in the address or block\n"
    "  --port N            the REMOTE port\n"
    "  --pid N             the owning process\n"
    "  --host NAME         the Windows computer name (case-insensitive)\n"
    "  --from T  --to T    the hours that overlap [from, to): RFC 3339 or epoch\n"
    "                      seconds\n"
    "  --by hour|total     a row per hour (default), or one total per host, pid,\n"
    "                      remote ip and port over the window (hour is null)\n"
    "  --limit N           at most N rows (default: all)\n"
    "  -o, --output FMT    table (default on a terminal), json (default\n"
    "                      otherwise), ndjson, csv\n"
    "  --store DIR         the store (required)\n"
    "  -h, --help          this text\n";

typedef struct out_ctx {
    nw_enc enc;
    cli_out out;
} out_ctx;

static int on_row(void *p, const nw_hourly_row *r)
{
    out_ctx *o = p;
    return nw_enc_hourly(&o->enc, r) || cli_out_drain(&o->out);
}

int cli_hourly(int argc, char **argv)
{
    enum { O_STORE = 256, O_PARAM };
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE},
        {"ip", required_argument, 0, O_PARAM},
        {"host", required_argument, 0, O_PARAM},
        {"pid", required_argument, 0, O_PARAM},
        {"port", required_argument, 0, O_PARAM},
        {"from", required_argument, 0, O_PARAM},
        {"to", required_argument, 0, O_PARAM},
        {"by", required_argument, 0, O_PARAM},
        {"limit", required_argument, 0, O_PARAM},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_dir = NULL;
    int format = isatty(STDOUT_FILENO) ? NW_FMT_TABLE : NW_FMT_JSON;
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    nw_err err = {{0}};
    int c, idx = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, &idx)) != -1) {
        switch (c) {
        case O_STORE: store_dir = optarg; break;
        case O_PARAM:
            if (nw_params_hourly(&q, opts[idx].name, optarg, NULL, &err) != NW_OK) {
                cli_error("--%s", err.msg);
                return NW_EXIT_USAGE;
            }
            break;
        case 'o':
            if ((format = cli_format(optarg)) < 0)
                return NW_EXIT_USAGE;
            break;
        case 'h': fputs(hourly_usage, stdout); return NW_EXIT_OK;
        default: return cli_bad_option("hourly", argv);
        }
    }
    if (cli_args_done("hourly", argc, argv, store_dir) != NW_EXIT_OK)
        return NW_EXIT_USAGE;
    if (nw_params_hourly_check(&q, NULL, &err) != NW_OK) {
        cli_error("--%s", err.msg);
        return NW_EXIT_USAGE;
    }
    nw_store *store = cli_store_open(store_dir);
    if (!store)
        return NW_EXIT_ERROR;
    out_ctx o;
    cli_out_init(&o.out);
    nw_enc_begin(&o.enc, (nw_format)format, NW_REC_HOURLY, &o.out.buf);
    cli_out_drain(&o.out);
    nw_status st = nw_query_hourly(store, &q, on_row, &o, NULL, &err);
    nw_enc_end(&o.enc);
    nw_store_close(store);
    if (st != NW_OK) {
        cli_out_close(&o.out, "hourly");
        cli_error("hourly: %s", err.msg);
        return NW_EXIT_ERROR;
    }
    return cli_out_close(&o.out, "hourly");
}
