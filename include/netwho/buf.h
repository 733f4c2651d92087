/*
 * buf.h -- a growable byte buffer with a hard maximum.
 *
 * Every buffer that grows with input is created with the most it may ever
 * hold (curl's dynbuf idea), so unbounded memory is impossible by
 * construction: an append past max fails with -1 and frees nothing the
 * caller did not already own.  Leaf module.
 */
#ifndef NETWHO_BUF_H
#define NETWHO_BUF_H

#include <stddef.h>

typedef struct nw_buf {
    char *data;      /* NUL-terminated while len < cap                 */
    size_t len;
    size_t cap;
    size_t max;      /* len never exceeds this                          */
} nw_buf;

/* An empty buffer that will hold at most max bytes.  Allocates lazily. */
void nw_buf_init(nw_buf *b, size_t max);
void nw_buf_free(nw_buf *b);
/* Forgets the content, keeps the memory. */
void nw_buf_reset(nw_buf *b);

/* 0, or -1 if the result would exceed max or memory ran out. */
int nw_buf_add(nw_buf *b, const void *p, size_t n);
int nw_buf_adds(nw_buf *b, const char *s);
int nw_buf_addf(nw_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s[0..n) as a JSON string literal, quotes included.  Bytes that are not
 * valid UTF-8 become U+FFFD, so the output is always valid JSON. */
int nw_buf_add_json_str(nw_buf *b, const char *s, size_t n);

#endif
