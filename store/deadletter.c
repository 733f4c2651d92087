/*
 * deadletter.c -- rejected events, one JSON line each, in
 * DIR/rejected/rejected-YYYY-MM-DD.ndjson (UTC wall-clock date).
 *
 * A rejected event is by definition text we could not trust: it may hold
 * quotes, backslashes, control bytes, NULs and invalid UTF-8.  The line
 * must stay valid JSON whatever it held, so strings are escaped here byte
 * by byte (cJSON would stop at a NUL and pass invalid UTF-8 through):
 * valid UTF-8 sequences are kept, control bytes become \uXXXX, and every
 * byte that does not start a valid sequence becomes U+FFFD.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "netwho/decode.h"
#include "netwho/pipeline.h"
#include "store_int.h"

#define REJECTED_DIR "rejected"

/* stdio buffer of the dead-letter file: rejections come in bursts. */
#define NW_DL_BUFFER_BYTES 65536

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if p does not start
 * one (stray continuation, overlong form, surrogate, above U+10FFFF, cut). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                     /* overlong */
        else if (c == 0xED)
            hi = 0x9F;                     /* UTF-16 surrogates */
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;                     /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;                     /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Writes s[0..n) as a JSON string (with quotes). */
static void put_json_string(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s)
        n = 0;
    putc('"', f);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
               p[run] != '\\')
            run++;
        if (run > i) {
            fwrite(p + i, 1, run - i, f);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        switch (c) {
        case '"': fputs("\\\"", f); i++; continue;
        case '\\': fputs("\\\\", f); i++; continue;
        case '\n': fputs("\\n", f); i++; continue;
        case '\r': fputs("\\r", f); i++; continue;
        case '\t': fputs("\\t", f); i++; continue;
        default: break;
        }
        if (c < 0x80) {            /* other control bytes and DEL */
            fprintf(f, "\\u%04x", c);
            i++;
            continue;
        }
        size_t len = utf8_len(p + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", f);
            i++;
        } else {
            fwrite(p + i, 1, len, f);
            i += len;
        }
    }
    putc('"', f);
}

static void put_cstring(FILE *f, const char *s)
{
    put_json_string(f, s, s ? strlen(s) : 0);
}

nw_status nw__dl_init(nw_deadletter *d, const char *store_dir, nw_err *err)
{
    memset(d, 0, sizeof *d);
    d->dir = nw__path(store_dir, REJECTED_DIR);
    if (!d->dir)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST)
        return nw_fail(err, NW_ERR_IO, "mkdir %s: %s", d->dir, strerror(errno));
    return NW_OK;
}

static nw_status dl_close_file(nw_deadletter *d, nw_err *err)
{
    if (!d->f)
        return NW_OK;
    nw_status st = nw__dl_flush(d, err);
    if (fclose(d->f) != 0 && st == NW_OK)
        st = nw_fail(err, NW_ERR_IO, "close %s/rejected-%s.ndjson: %s", d->dir, d->date,
                     strerror(errno));
    d->f = NULL;
    return st;
}

/* Makes d->f the file of now's date, closing yesterday's. */
static nw_status dl_file_for(nw_deadletter *d, nw_time now, nw_err *err)
{
    char ts[NW_TIME_STRLEN], date[sizeof d->date];
    if (nw_time_format(now, ts, sizeof ts) == 0)
        return nw_fail(err, NW_ERR_INVALID, "clock outside the years 0000-9999");
    snprintf(date, sizeof date, "%.10s", ts);
    if (d->f && strcmp(date, d->date) == 0)
        return NW_OK;
    nw_status st = dl_close_file(d, err);
    if (st != NW_OK)
        return st;
    char name[64];
    snprintf(name, sizeof name, "rejected-%s.ndjson", date);
    char *path = nw__path(d->dir, name);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    d->f = fopen(path, "a");
    if (!d->f) {
        st = nw_fail(err, NW_ERR_IO, "open %s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    setvbuf(d->f, NULL, _IOFBF, NW_DL_BUFFER_BYTES);
    memcpy(d->date, date, sizeof d->date);
    return NW_OK;
}

nw_status nw__dl_write(nw_deadletter *d, const nw_rejection *r, nw_time now, nw_err *err)
{
    nw_status st = dl_file_for(d, now, err);
    if (st != NW_OK)
        return st;
    /* A too_large event arrives already cut to NW_FRAME_KEEP_BYTES; cap
     * anything else at the largest event the decoder accepts. */
    size_t keep = r->raw_len < NW_EVENT_MAX_BYTES ? r->raw_len : NW_EVENT_MAX_BYTES;
    if (!r->raw)
        keep = 0;
    char ts[NW_TIME_STRLEN];
    nw_time_format(now, ts, sizeof ts);
    FILE *f = d->f;
    fputs("{\"time\":", f);
    put_cstring(f, ts);
    fputs(",\"reason\":", f);
    put_cstring(f, nw_reject_name(r->reason));
    fputs(",\"detail\":", f);
    put_cstring(f, r->detail);
    fputs(",\"source\":", f);
    put_cstring(f, r->source);
    fprintf(f, ",\"offset\":%llu,\"length\":%llu,\"truncated\":%s,\"raw\":",
            (unsigned long long)r->offset, (unsigned long long)r->full_len,
            keep < r->full_len ? "true" : "false");
    put_json_string(f, r->raw, keep);
    fputs("}\n", f);
    if (ferror(f))
        return nw_fail(err, NW_ERR_IO, "write %s/rejected-%s.ndjson failed", d->dir,
                       d->date);
    return NW_OK;
}

nw_status nw__dl_flush(nw_deadletter *d, nw_err *err)
{
    if (d->f && (fflush(d->f) != 0 || ferror(d->f)))
        return nw_fail(err, NW_ERR_IO, "write %s/rejected-%s.ndjson: %s", d->dir,
                       d->date, strerror(errno));
    return NW_OK;
}

nw_status nw__dl_close(nw_deadletter *d, nw_err *err)
{
    nw_status st = dl_close_file(d, err);
    free(d->dir);
    d->dir = NULL;
    return st;
}
