/*
 * cli_ingest.c -- netwho ingest: files or stdin -> pipeline -> tracker -> store.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "netwho/buf.h"
#include "netwho/hourly.h"
#include "netwho/pipeline.h"
#include "netwho/store.h"
#include "netwho/tracker.h"
#include "netwho/writer.h"

static const char ingest_usage[] =
    "usage: netwho ingest --store DIR [options] FILE... (- reads standard input)\n"
    "\n"
    "Reads Microsoft-Windows-Kernel-Network events -- NDJSON, concatenated or\n"
    "pretty-printed objects, or one JSON array, detected per input -- folds them\n"
    "into connections and writes them to the store, creating it if needed.\n"
    "Rejected events are counted by reason and kept in DIR/rejected/.  Prints one\n"
    "JSON summary on standard output.  Exit 0 when it ran (even with rejected\n"
    "events), 1 on a runtime error, 2 on a usage error.\n"
    "\n"
    "options:\n"
    "  --store DIR            the store directory (required)\n"
    "  --host NAME            host for events whose system.computer is empty\n"
    "                         (default: unknown)\n"
    "  --partition day|hour   partition size of a new store (default day); an\n"
    "                         existing store keeps its own\n"
    "  --threads N            decode threads (default: number of CPUs)\n"
    "  --reorder-window SEC   how far out of time order events may come (default 3)\n"
    "  --udp-idle SEC         silence that ends a UDP flow (default 60)\n"
    "  --tcp-idle SEC         idle time after which an open TCP connection is\n"
    "                         written and dropped from memory (default 300)\n"
    "  --resolution SEC|raw   transfer time buckets (default 1; raw = every event)\n"
    "  --max-open N           open connections held in memory (default 100000)\n"
    "  --retention-days N     afterwards, drop partitions older than N days\n"
    "  --max-store-bytes N    afterwards, drop oldest partitions until the store\n"
    "                         is at most N bytes (suffixes K, M, G)\n"
    "  --rollup-retention-days N  afterwards, delete hourly roll-up rows (netwho\n"
    "                         hourly) older than N days (default 400; 0 keeps\n"
    "                         them forever); partition retention never does\n"
    "  --quiet                no progress on a terminal\n"
    "  -h, --help             this text\n";

/* Parses "3", "0.5" into ticks; -1 if not a non-negative number. */
static int parse_seconds(const char *s, nw_time *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0) || v > 1e9)
        return -1;
    *out = (nw_time)(v * NW_TICKS_PER_SEC + 0.5);
    return 0;
}

static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    if (!s[0] || s[0] == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024ULL, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024ULL * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024ULL * 1024 * 1024, end++;
    if (*end != '\0' || v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

typedef struct ingest_ctx {
    nw_tracker *tracker;
    nw_writer *writer;
    nw_status failed;          /* first error of a callback              */
    nw_err err;
    uint64_t rejected_by[NW_REJ__COUNT];
    int progress;              /* stderr is a terminal                   */
    uint64_t bytes_done;       /* of earlier inputs                      */
    uint64_t events;
    struct timespec started, last_progress;
} ingest_ctx;

static double since(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static int on_event(void *p, const nw_event *ev)
{
    ingest_ctx *c = p;
    c->events++;
    nw_status st = nw_tracker_feed(c->tracker, ev);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    return 0;
}

/* A process event (Kernel-Process, Sysmon 1/3/5) into the process table. */
static int on_process(void *p, const nw_proc_event *pe)
{
    ingest_ctx *c = p;
    nw_status st = nw_writer_process(c->writer, pe, &c->err);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    return 0;
}

static int on_reject(void *p, const nw_rejection *r)
{
    ingest_ctx *c = p;
    c->events++;
    if ((unsigned)r->reason < NW_REJ__COUNT)
        c->rejected_by[r->reason]++;
    nw_status st = nw_writer_reject(c->writer, r, &c->err);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    return 0;
}

static void on_progress(void *p, uint64_t bytes)
{
    ingest_ctx *c = p;
    if (!c->progress || since(&c->last_progress) < 0.5)
        return;
    clock_gettime(CLOCK_MONOTONIC, &c->last_progress);
    double secs = since(&c->started);
    fprintf(stderr, "\r%.1f MB read, %" PRIu64 " events, %.0f events/s   ",
            (double)(c->bytes_done + bytes) / 1e6, c->events,
            secs > 0 ? (double)c->events / secs : 0.0);
}

static void print_summary(const ingest_ctx *c, const nw_pipeline_stats *ps,
                          const nw_tracker_stats *ts, size_t partitions, size_t dropped,
                          uint64_t store_bytes, double secs)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 20);
    nw_buf_addf(&b,
                "{\"events\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
                ",\"rejected_by_reason\":{",
                ps->events, ps->accepted, ps->rejected);
    int first = 1;
    for (int r = 1; r < NW_REJ__COUNT; r++) {
        if (!c->rejected_by[r])
            continue;
        nw_buf_addf(&b, "%s\"%s\":%" PRIu64, first ? "" : ",", nw_reject_name(r),
                    c->rejected_by[r]);
        first = 0;
    }
    nw_buf_addf(&b,
                "},\"connections\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"failures\":%" PRIu64
                ",\"late_events\":%" PRIu64 ",\"partitions\":%zu,\"partitions_dropped\":%zu"
                ",\"bytes_read\":%" PRIu64 ",\"store_bytes\":%" PRIu64
                ",\"seconds\":%.3f,\"events_per_second\":%.0f,\"process_events\":%" PRIu64
                "}\n",
                ts->connections, ts->resumed, ts->failures, ts->late_events, partitions,
                dropped, ps->bytes, store_bytes, secs, secs > 0 ? (double)ps->events / secs : 0.0,
                ps->processes);
    fwrite(b.data, 1, b.len, stdout);
    nw_buf_free(&b);
}

int cli_ingest(int argc, char **argv)
{
    enum { O_STORE = 256, O_HOST, O_PART, O_THREADS, O_REORDER, O_UDP, O_TCP, O_RES,
           O_MAXOPEN, O_RETDAYS, O_MAXBYTES, O_ROLLDAYS, O_QUIET };
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE},
        {"host", required_argument, 0, O_HOST},
        {"partition", required_argument, 0, O_PART},
        {"threads", required_argument, 0, O_THREADS},
        {"reorder-window", required_argument, 0, O_REORDER},
        {"udp-idle", required_argument, 0, O_UDP},
        {"tcp-idle", required_argument, 0, O_TCP},
        {"resolution", required_argument, 0, O_RES},
        {"max-open", required_argument, 0, O_MAXOPEN},
        {"retention-days", required_argument, 0, O_RETDAYS},
        {"max-store-bytes", required_argument, 0, O_MAXBYTES},
        {"rollup-retention-days", required_argument, 0, O_ROLLDAYS},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_dir = NULL, *host = NULL;
    nw_store_opts sopts = {.partition = NW_PART_DEFAULT, .create = 1};
    nw_tracker_opts topts;
    nw_tracker_opts_default(&topts);
    nw_pipeline_opts popts = {0};
    nw_retention ret = {.rollup_days = NW_ROLLUP_RETENTION_DAYS_DEFAULT};
    int quiet = 0, c;
    uint64_t n;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_STORE: store_dir = optarg; break;
        case O_HOST:
            if (!optarg[0] || strlen(optarg) >= NW_HOST_MAX) {
                cli_error("--host: expected a name of 1 to 255 bytes");
                return NW_EXIT_USAGE;
            }
            host = optarg;
            break;
        case O_PART:
            if (strcmp(optarg, "day") == 0)
                sopts.partition = NW_PART_DAY;
            else if (strcmp(optarg, "hour") == 0)
                sopts.partition = NW_PART_HOUR;
            else {
                cli_error("--partition: expected day or hour, got '%s'", optarg);
                return NW_EXIT_USAGE;
            }
            break;
        case O_THREADS:
            if (parse_count(optarg, &n) || n < 1 || n > NW_PIPELINE_MAX_THREADS) {
                cli_error("--threads: expected a number from 1 to %d", NW_PIPELINE_MAX_THREADS);
                return NW_EXIT_USAGE;
            }
            popts.threads = (int)n;
            break;
        case O_REORDER:
        case O_UDP:
        case O_TCP: {
            nw_time *dst = c == O_REORDER ? &topts.reorder_window
                           : c == O_UDP   ? &topts.udp_idle
                                          : &topts.tcp_idle;
            if (parse_seconds(optarg, dst) || (c != O_REORDER && *dst == 0)) {
                cli_error("--%s: expected seconds, got '%s'",
                          c == O_REORDER ? "reorder-window" : c == O_UDP ? "udp-idle" : "tcp-idle",
                          optarg);
                return NW_EXIT_USAGE;
            }
            break;
        }
        case O_RES:
            if (strcmp(optarg, "raw") == 0)
                topts.bucket = 0;
            else if (parse_seconds(optarg, &topts.bucket) || topts.bucket == 0) {
                cli_error("--resolution: expected seconds (> 0) or raw, got '%s'", optarg);
                return NW_EXIT_USAGE;
            }
            break;
        case O_MAXOPEN:
            if (parse_count(optarg, &n) || n < 1 || n > 100000000) {
                cli_error("--max-open: expected a number from 1 to 100000000");
                return NW_EXIT_USAGE;
            }
            topts.max_open = (size_t)n;
            break;
        case O_RETDAYS:
            if (parse_count(optarg, &n) || n < 1 || n > 36500) {
                cli_error("--retention-days: expected a number of days from 1 to 36500");
                return NW_EXIT_USAGE;
            }
            ret.days = (int)n;
            break;
        case O_ROLLDAYS:
            if (parse_count(optarg, &n) || n > 36500) {
                cli_error("--rollup-retention-days: expected a number of days from 0 to 36500");
                return NW_EXIT_USAGE;
            }
            ret.rollup_days = (int)n;
            break;
        case O_MAXBYTES:
            if (parse_count(optarg, &n) || n == 0) {
                cli_error("--max-store-bytes: expected a size like 500M or 2G, got '%s'", optarg);
                return NW_EXIT_USAGE;
            }
            ret.max_bytes = n;
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': fputs(ingest_usage, stdout); return NW_EXIT_OK;
        default:
            cli_error("ingest: unknown or incomplete option '%s' (see 'netwho ingest --help')",
                      argv[optind - 1]);
            return NW_EXIT_USAGE;
        }
    }
    if (!store_dir) {
        cli_error("ingest: --store DIR is required");
        return NW_EXIT_USAGE;
    }
    int nfiles = argc - optind;
    if (nfiles < 1) {
        cli_error("ingest: name at least one FILE (or - for standard input)");
        return NW_EXIT_USAGE;
    }

    /* Open every input first: a typo in the last name must not leave half
     * the inputs ingested. */
    int *fds = calloc((size_t)nfiles, sizeof *fds);
    if (!fds)
        return NW_EXIT_ERROR;
    int rc = NW_EXIT_ERROR;
    int stdin_seen = 0;
    for (int i = 0; i < nfiles; i++) {
        const char *f = argv[optind + i];
        if (strcmp(f, "-") == 0) {
            if (stdin_seen++) {
                cli_error("ingest: - (standard input) may be named once");
                for (int j = 0; j < i; j++)
                    if (fds[j] > 0)
                        close(fds[j]);
                free(fds);
                return NW_EXIT_USAGE;
            }
            fds[i] = STDIN_FILENO;
            continue;
        }
        fds[i] = open(f, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fds[i] >= 0 && fstat(fds[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            close(fds[i]);
            fds[i] = -1;
            errno = EISDIR;
        }
        if (fds[i] < 0) {
            cli_error("cannot read %s: %s", f, strerror(errno));
            for (int j = 0; j < i; j++)
                if (fds[j] > 0)
                    close(fds[j]);
            free(fds);
            return NW_EXIT_ERROR;
        }
    }

    nw_err err = {{0}};
    nw_store *store = NULL;
    nw_writer *writer = NULL;
    nw_tracker *tracker = NULL;
    ingest_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    nw_pipeline_stats total = {0};

    if (nw_store_open(store_dir, &sopts, &store, &err) != NW_OK ||
        nw_writer_open(store, &writer, &err) != NW_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    /* With a second CPU, SQLite writes beside the tracker instead of after
     * it; without one a thread would only add switching. */
    if (popts.threads != 1 && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
        nw_writer_start_thread(writer, &err) != NW_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    nw_sink sink;
    nw_writer_sink(writer, &sink);
    tracker = nw_tracker_new(&topts, &sink);
    if (!tracker) {
        cli_error("out of memory");
        goto done;
    }
    ctx.tracker = tracker;
    ctx.writer = writer;
    ctx.progress = !quiet && isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &ctx.started);
    ctx.last_progress = ctx.started;

    popts.default_host = host;
    nw_pipeline_cbs cbs = {.on_event = on_event, .on_reject = on_reject,
                           .on_progress = on_progress, .on_process = on_process};
    for (int i = 0; i < nfiles; i++) {
        nw_pipeline_stats ps = {0};
        popts.source = argv[optind + i];
        nw_status st = nw_pipeline_run_fd(fds[i], &popts, &cbs, &ctx, &ps, &err);
        total.bytes += ps.bytes;
        total.events += ps.events;
        total.accepted += ps.accepted;
        total.rejected += ps.rejected;
        total.processes += ps.processes;
        ctx.bytes_done += ps.bytes;
        if (ctx.failed != NW_OK) {
            const char *why = ctx.err.msg[0] ? ctx.err.msg : nw_writer_last_error(writer);
            cli_error("%s: writing to the store failed: %s", popts.source,
                      why && why[0] ? why : nw_status_name(ctx.failed));
            goto done;
        }
        if (st != NW_OK) {
            cli_error("%s: %s", popts.source, err.msg);
            goto done;
        }
    }
    if (ctx.progress)
        fputs("\r\033[K", stderr);

    nw_status st = nw_tracker_flush(tracker);
    if (st == NW_OK)
        st = nw_writer_commit(writer, &err);
    if (st != NW_OK) {
        const char *why = err.msg[0] ? err.msg : nw_writer_last_error(writer);
        cli_error("writing to the store failed: %s", why && why[0] ? why : nw_status_name(st));
        goto done;
    }
    size_t dropped = 0;
    if ((ret.days || ret.max_bytes || ret.rollup_days) &&
        nw_store_apply_retention(store, &ret, &dropped, &err) != NW_OK) {
        cli_error("retention: %s", err.msg);
        goto done;
    }
    nw_tracker_stats ts;
    nw_tracker_stats_get(tracker, &ts);
    nw_partition_info *parts = NULL;
    size_t nparts = 0;
    if (nw_store_partitions(store, &parts, &nparts, &err) != NW_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    free(parts);
    /* Closing checkpoints the WAL into the partition files: measure the
     * store after that, as it will stay on disk. */
    nw_status cst = nw_writer_close(writer, &err);
    writer = NULL;
    if (cst != NW_OK) {
        cli_error("closing the store: %s", err.msg);
        goto done;
    }
    print_summary(&ctx, &total, &ts, nparts, dropped, nw_store_bytes(store),
                  since(&ctx.started));
    rc = NW_EXIT_OK;

done:
    nw_tracker_free(tracker);
    if (writer && nw_writer_close(writer, &err) != NW_OK && rc == NW_EXIT_OK) {
        cli_error("closing the store: %s", err.msg);
        rc = NW_EXIT_ERROR;
    }
    nw_store_close(store);
    for (int i = 0; i < nfiles; i++)
        if (fds[i] > 0)
            close(fds[i]);
    free(fds);
    return rc;
}
