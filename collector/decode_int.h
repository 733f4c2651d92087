/*
 * decode_int.h -- what the decoders of process events share (internal to
 * collector/; decode.c, the Kernel-Network hot path, only shares
 * nw__root_parts with them).
 */
#ifndef NETWHO_DECODE_INT_H
#define NETWHO_DECODE_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "netwho/procevent.h"

/* Where a decoder writes its detail sentence (buf NULL: nowhere). */
typedef struct nw__detail {
    char *buf;
    size_t cap;
} nw__detail;

/* Writes the sentence (printf style) and returns r. */
nw_reject nw__dfail(const nw__detail *d, nw_reject r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The first "system" and "event_data" children of the object root (names
 * matched case-insensitively), each NULL if there is none: where
 * decode.c and decode_record.c find the envelope. */
void nw__root_parts(const cJSON *root, const cJSON **sys, const cJSON **data);

/* Child k of object o: case-insensitive (ci) or exact (cs); a JSON null
 * counts as absent. */
const cJSON *nw__get_ci(const cJSON *o, const char *k);
const cJSON *nw__get_cs(const cJSON *o, const char *k);

/* v as an unsigned integer <= max: a JSON number without fraction or a
 * decimal string padded with spaces ("    4168").  0, or -1. */
int nw__val_uint(const cJSON *v, uint64_t max, uint64_t *out);

/* The same over text s[0..n) (spaces around allowed). */
int nw__text_uint(const char *s, size_t n, uint64_t max, uint64_t *out);

/* Copies s[0..n) into dst[cap] cut at a UTF-8 character boundary; a cut
 * value ends in "..." so that nobody takes it for the whole. */
void nw__copy_cut(char *dst, size_t cap, const char *s, size_t n);

/* A process event's host (host[NW_HOST_MAX]): h, or if it is NULL or
 * empty default_host, or if that is too "unknown"; cut as nw__copy_cut. */
void nw__copy_host(char *host, const char *h, const char *default_host);

/* A time as Kernel-Process writes it: RFC 3339 text, or a FILETIME (100 ns
 * since 1601) as a number or decimal string.  0, or -1. */
int nw__val_time(const cJSON *v, nw_time *out);

/* The two non-hot-path decoders, called by nw_decode_record on a parsed
 * root.  Each fills a zeroed *pe (already allocated) and, for a Sysmon 3,
 * *ev and *has_ev.  *want_proc is set to 0 when the event gives no process
 * row (a Sysmon 3 whose ProcessGuid carries no time). */
nw_reject nw__decode_kproc(const cJSON *sys, const cJSON *data, const char *default_host,
                           nw_proc_event *pe, const nw__detail *d);
nw_reject nw__decode_sysmon(const cJSON *root, const cJSON *sys, const cJSON *data,
                            const char *default_host, nw_event *ev, int *has_ev,
                            nw_proc_event *pe, int *want_proc, const nw__detail *d);

/* Points pe->p's strings at pe's arrays where they are not empty. */
void nw__proc_event_link(nw_proc_event *pe);

#endif
