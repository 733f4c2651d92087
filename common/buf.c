/* buf.c -- bounded growable buffer (see buf.h). */
#include "netwho/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nw_buf_init(nw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void nw_buf_free(nw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void nw_buf_reset(nw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus a NUL. */
static int reserve(nw_buf *b, size_t n)
{
    if (n > b->max - b->len)
        return -1;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int nw_buf_add(nw_buf *b, const void *p, size_t n)
{
    if (reserve(b, n))
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int nw_buf_adds(nw_buf *b, const char *s)
{
    return nw_buf_add(b, s, strlen(s));
}

int nw_buf_addf(nw_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return nw_buf_add(b, small, (size_t)n);
    if (reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

int nw_buf_add_json_str(nw_buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (nw_buf_add(b, "\"", 1))
        return -1;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i && nw_buf_add(b, s + i, run - i))
            return -1;
        i = run;
        if (i >= n)
            break;
        unsigned char c = s[i];
        int rc;
        if (c == '"')
            rc = nw_buf_add(b, "\\\"", 2);
        else if (c == '\\')
            rc = nw_buf_add(b, "\\\\", 2);
        else if (c == '\n')
            rc = nw_buf_add(b, "\\n", 2);
        else if (c == '\r')
            rc = nw_buf_add(b, "\\r", 2);
        else if (c == '\t')
            rc = nw_buf_add(b, "\\t", 2);
        else if (c < 0x20)
            rc = nw_buf_addf(b, "\\u%04x", c);
        else {
            size_t u = utf8_len(s + i, n - i);
            if (u == 0) {
                rc = nw_buf_add(b, "\\ufffd", 6);
                u = 1;
            } else {
                rc = nw_buf_add(b, s + i, u);
            }
            if (rc)
                return -1;
            i += u;
            continue;
        }
        if (rc)
            return -1;
        i++;
    }
    return nw_buf_add(b, "\"", 1);
}
