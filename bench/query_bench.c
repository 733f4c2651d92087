/*
 * query_bench.c -- "which processes talked to this IP", timed in-process.
 *
 *   netwho_query_bench --store DIR [--iterations N] [--max-seconds S]
 *                      [--rows] IP|CIDR...
 *
 * Opens the store once (nw_store_open, read side only: no writer lock), then
 * for each address runs nw_query_who once untimed (to warm the page cache and
 * SQLite's schema cache, as a long-running reader such as netwhod would be)
 * and N more times timed with CLOCK_MONOTONIC.  Prints one line per address:
 *
 *   ip=10.2.10.11 rows=12 connections=1096 bytes=123456 iterations=1000
 *       first_us=812.3 min_us=401.2 median_us=420.5 p99_us=610.0
 *
 * (one line; wrapped here), after a first line with the catalog's totals:
 *
 *   store partitions=1 connections=6388 transfers=8879 failures=160 bytes=...
 *
 * first_us is the untimed warm-up run, i.e. the first query on a freshly
 * opened store.  With --rows, the answer follows as tab-separated lines
 * "row\thost\tpid\tconnections\tbytes_sent\tbytes_received", so a script
 * can check it against another system's answer.
 * --max-seconds (default 30) stops an address early once its timed runs
 * take that long, after at least 10 of them.
 *
 * Exit 0 on success, 1 on a runtime error, 2 on a usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netwho/addr.h"
#include "netwho/query.h"
#include "netwho/status.h"
#include "netwho/store.h"

static const char usage[] =
    "usage: netwho_query_bench --store DIR [--iterations N] [--max-seconds S]\n"
    "                          [--rows] IP|CIDR...\n";

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n), p in (0, 100]. */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static double median(const double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static int run_one(nw_store *s, const char *ip, long iterations,
                   double max_seconds, int print_rows)
{
    nw_query q;
    nw_query_init(&q);
    if (nw_cidr_parse(ip, &q.ip_lo, &q.ip_hi, NULL) != 0) {
        fprintf(stderr, "netwho_query_bench: not an address or CIDR block: %s\n",
                ip);
        return 2;
    }
    q.has_ip = 1;

    nw_err err = {{0}};
    nw_who_row *rows = NULL;
    size_t n = 0;

    /* Warm-up: the first query on the open store, reported, not counted. */
    double t0 = now_us();
    nw_status st = nw_query_who(s, &q, &rows, &n, &err);
    double first = now_us() - t0;
    if (st != NW_OK) {
        fprintf(stderr, "netwho_query_bench: %s: %s (%s)\n", ip, err.msg,
                nw_status_name(st));
        free(rows);
        return 1;
    }
    uint64_t conns = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        conns += rows[i].connections;
        bytes += rows[i].bytes_sent + rows[i].bytes_received;
    }
    size_t nrows = n;
    nw_who_row *answer = rows;
    rows = NULL;

    double *t = malloc((size_t)iterations * sizeof *t);
    if (!t) {
        fprintf(stderr, "netwho_query_bench: out of memory\n");
        free(answer);
        return 1;
    }
    long done = 0;
    double budget_start = now_us();
    for (; done < iterations; done++) {
        double a = now_us();
        st = nw_query_who(s, &q, &rows, &n, &err);
        double b = now_us();
        free(rows);
        rows = NULL;
        if (st != NW_OK) {
            fprintf(stderr, "netwho_query_bench: %s: %s (%s)\n", ip, err.msg,
                    nw_status_name(st));
            free(t);
            free(answer);
            return 1;
        }
        if (n != nrows) {
            fprintf(stderr, "netwho_query_bench: %s: answer changed between "
                    "runs (%zu rows, then %zu)\n", ip, nrows, n);
            free(t);
            free(answer);
            return 1;
        }
        t[done] = b - a;
        if (done >= 9 && (b - budget_start) / 1e6 > max_seconds) {
            done++;
            break;
        }
    }
    qsort(t, (size_t)done, sizeof *t, cmp_double);
    printf("ip=%s rows=%zu connections=%" PRIu64 " bytes=%" PRIu64
           " iterations=%ld first_us=%.1f min_us=%.1f median_us=%.1f"
           " p99_us=%.1f\n",
           ip, nrows, conns, bytes, done, first, done ? t[0] : 0.0,
           median(t, (size_t)done), percentile(t, (size_t)done, 99.0));
    if (print_rows)
        for (size_t i = 0; i < nrows; i++)
            printf("row\t%s\t%" PRIu32 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
                   "\n", answer[i].host, answer[i].pid, answer[i].connections,
                   answer[i].bytes_sent, answer[i].bytes_received);
    fflush(stdout);
    free(t);
    free(answer);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long iterations = 1000;
    double max_seconds = 30.0;
    int print_rows = 0;
    int first_ip = argc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--store") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(a, "--iterations") && i + 1 < argc) {
            char *end;
            iterations = strtol(argv[++i], &end, 10);
            if (*end || iterations < 1 || iterations > 100000000L) {
                fputs(usage, stderr);
                return 2;
            }
        } else if (!strcmp(a, "--max-seconds") && i + 1 < argc) {
            char *end;
            max_seconds = strtod(argv[++i], &end);
            if (*end || !(max_seconds > 0)) {
                fputs(usage, stderr);
                return 2;
            }
        } else if (!strcmp(a, "--rows")) {
            print_rows = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (a[0] == '-' && a[1] == '-') {
            fputs(usage, stderr);
            return 2;
        } else {
            first_ip = i;
            break;
        }
    }
    if (!dir || first_ip >= argc) {
        fputs(usage, stderr);
        return 2;
    }

    nw_store_opts opts = {NW_PART_DEFAULT, 0};
    nw_store *s = NULL;
    nw_err err = {{0}};
    nw_status st = nw_store_open(dir, &opts, &s, &err);
    if (st != NW_OK) {
        fprintf(stderr, "netwho_query_bench: %s (%s)\n", err.msg,
                nw_status_name(st));
        return 1;
    }
    /* What the store holds, from its catalog. */
    nw_partition_info *parts = NULL;
    size_t nparts = 0;
    st = nw_store_partitions(s, &parts, &nparts, &err);
    if (st != NW_OK) {
        fprintf(stderr, "netwho_query_bench: %s (%s)\n", err.msg,
                nw_status_name(st));
        nw_store_close(s);
        return 1;
    }
    uint64_t nconn = 0, ntrans = 0, nfail = 0;
    for (size_t i = 0; i < nparts; i++) {
        nconn += parts[i].connections;
        ntrans += parts[i].transfers;
        nfail += parts[i].failures;
    }
    free(parts);
    printf("store partitions=%zu connections=%" PRIu64 " transfers=%" PRIu64
           " failures=%" PRIu64 " bytes=%" PRIu64 "\n", nparts, nconn, ntrans,
           nfail, nw_store_bytes(s));

    int rc = 0;
    for (int i = first_ip; i < argc && rc == 0; i++)
        rc = run_one(s, argv[i], iterations, max_seconds, print_rows);
    nw_store_close(s);
    return rc;
}
