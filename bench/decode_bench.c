/*
 * decode_bench.c -- events/s of the two decoders on one core: cJSON
 * (nw_decode_event_cjson, the reference) and the scanner
 * (nw_scan_line_object + nw_decode_scanned, the hot path), over the lines
 * of an NDJSON file held in memory, alternated run by run; prints each
 * run and the medians.  No framing, threads or store: only decoding.
 *
 *   netwho_decode_bench FILE.ndjson [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/scan.h"
#include "netwho/decode.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: netwho_decode_bench FILE.ndjson [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 100)
        runs = 5;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap)
            buf = realloc(buf, cap *= 2);
    fclose(f);
    if (!buf)
        return 1;
    size_t nlines = 0;
    for (size_t i = 0; i < n; i++)
        nlines += buf[i] == '\n';
    const char **line = malloc(nlines * sizeof *line);
    size_t *len = malloc(nlines * sizeof *len);
    if (!line || !len)
        return 1;
    size_t k = 0;
    for (size_t start = 0, i = 0; i < n; i++)
        if (buf[i] == '\n') {
            line[k] = buf + start;
            len[k++] = i - start;
            start = i + 1;
        }

    double cj[100], sc[100];
    size_t acc_cj = 0, acc_sc = 0;
    nw_event ev;
    for (int r = 0; r < runs; r++) {
        double t = now();
        acc_cj = 0;
        for (size_t i = 0; i < k; i++)
            acc_cj += nw_decode_event_cjson(line[i], len[i], "host", &ev, NULL, 0) ==
                      NW_ACCEPTED;
        cj[r] = (double)k / (now() - t);
        t = now();
        acc_sc = 0;
        for (size_t i = 0; i < k; i++) {
            nw_envelope env;
            size_t used;
            acc_sc += nw_scan_line_object(line[i], len[i], &env, &used) == 0 &&
                      nw_decode_scanned(&env, "host", &ev) == NW_ACCEPTED;
        }
        sc[r] = (double)k / (now() - t);
        printf("run %d: cJSON %.0f events/s, scanner %.0f events/s\n", r + 1, cj[r], sc[r]);
    }
    double mc = median(cj, runs), ms = median(sc, runs);
    printf("%zu lines (accepted: cJSON %zu, scanner %zu); medians: cJSON %.0f events/s, "
           "scanner %.0f events/s, %.1fx\n",
           k, acc_cj, acc_sc, mc, ms, ms / mc);
    free(line);
    free(len);
    free(buf);
    return 0;
}
