/*
 * framer.c -- cuts a byte stream into JSON object texts (see framer.h).
 *
 * The framer is a small state machine over bytes: between frames (TOP), in
 * an object (OBJECT), in a non-object array element (ELEMENT), or skipping
 * a line of garbage (GARBAGE).  Inside an object only four bytes matter
 * outside strings ('"', '{', '}', '\n') and three inside them ('"', '\\',
 * '\n'), so the hot loops skip everything else with a table lookup per byte.
 *
 * A frame that lies wholly inside one feed is handed out as a pointer into
 * the caller's buffer: no copy.  Only a frame still open when a feed ends is
 * copied, into `pend`, which never holds more than max_frame bytes (or
 * NW_FRAME_KEEP_BYTES once the frame is known to be too large).
 *
 * Past max_frame every kind of frame keeps only its first
 * NW_FRAME_KEEP_BYTES (full_len says how long it really was); an object,
 * complete or cut short, over max_frame is reported TOO_LARGE, while an
 * over-long garbage line or array element keeps its own kind.
 *
 * After a callback has stopped a feed (non-zero return), the framer's state
 * is mid-frame and undefined: the caller may only free it.
 */
#include "netwho/framer.h"

#include <stdlib.h>
#include <string.h>

enum fr_mode {
    FR_TOP = 0,    /* between frames: whitespace, '[', ',', ']' or a start */
    FR_OBJECT,     /* inside a {...}                                      */
    FR_ELEMENT,    /* inside an array element that is not an object      */
    FR_GARBAGE     /* skipping bytes that cannot start an object, to '\n' */
};

struct nw_framer {
    size_t max_frame;
    uint64_t base;       /* stream offset of the current feed's first byte */
    int mode;            /* enum fr_mode                                    */
    int in_array;        /* a top-level '[' is open                         */
    int in_str, esc;     /* string state of the open frame                  */
    int line_start;      /* the open frame's last byte was a raw '\n'       */
    uint64_t depth;      /* brace (and, in ELEMENT, bracket) nesting        */
    unsigned bom;        /* bytes of a leading UTF-8 byte order mark seen   */
    /* The open frame. */
    uint64_t start;      /* its stream offset                               */
    uint64_t flen;       /* its bytes in earlier feeds (0: started in this) */
    char *pend;          /* its first bytes from earlier feeds              */
    size_t pend_len, pend_cap;
    uint64_t tail_ws;    /* whitespace bytes ending its earlier feeds' part */
};

/* Bytes that end the fast skip outside and inside a string of an object. */
static const unsigned char OBJ_STOP[256] = {['"'] = 1, ['{'] = 1, ['}'] = 1, ['\n'] = 1};
static const unsigned char STR_STOP[256] = {['"'] = 1, ['\\'] = 1, ['\n'] = 1};

static const unsigned char UTF8_BOM[3] = {0xEF, 0xBB, 0xBF};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* How many whitespace bytes end buf[seg..end). */
static size_t ws_tail(const char *buf, size_t seg, size_t end)
{
    size_t t = end;
    while (t > seg && is_ws((unsigned char)buf[t - 1]))
        t--;
    return end - t;
}

nw_framer *nw_framer_new(size_t max_frame)
{
    nw_framer *fr = calloc(1, sizeof *fr);
    if (!fr)
        return NULL;
    fr->max_frame = max_frame;
    return fr;
}

void nw_framer_free(nw_framer *fr)
{
    if (!fr)
        return;
    free(fr->pend);
    free(fr);
}

/*
 * Appends src[0..n) to the open frame's kept bytes, given that the frame is
 * `total` bytes long once they are added.  Keeps at most max_frame bytes,
 * and only the first NW_FRAME_KEEP_BYTES of a frame over max_frame: that is
 * what bounds memory whatever the input.  0, or -1 on ENOMEM.
 */
static int pend_keep(nw_framer *fr, const char *src, size_t n, uint64_t total)
{
    size_t limit = total > fr->max_frame ? NW_FRAME_KEEP_BYTES : fr->max_frame;
    if (fr->pend_len > limit)
        fr->pend_len = limit;
    if (n > limit - fr->pend_len)
        n = limit - fr->pend_len;
    if (n == 0)
        return 0;
    if (fr->pend_len + n > fr->pend_cap) {
        size_t cap = fr->pend_cap ? fr->pend_cap : 4096;
        while (cap < fr->pend_len + n)
            cap *= 2;
        if (cap > limit && limit >= fr->pend_len + n)
            cap = limit;
        char *p = realloc(fr->pend, cap);
        if (!p)
            return -1;
        fr->pend = p;
        fr->pend_cap = cap;
    }
    memcpy(fr->pend + fr->pend_len, src, n);
    fr->pend_len += n;
    return 0;
}

/*
 * Ends the open frame, whose bytes are pend (from earlier feeds) followed by
 * buf[seg..end), and hands it to cb as `kind`.  trim drops trailing
 * whitespace (a garbage line's '\r', the newline before a truncation).
 * Returns cb's value, or -1 on ENOMEM.
 */
static int emit(nw_framer *fr, nw_frame_kind kind, const char *buf, size_t seg,
                size_t end, int trim, nw_frame_cb cb, void *ctx)
{
    size_t tail = end - seg;
    uint64_t full = fr->flen + tail;
    nw_frame f;

    if (fr->flen == 0) {
        f.data = buf + seg;
        f.len = tail;
    } else {
        if (tail > 0 && pend_keep(fr, buf + seg, tail, full))
            return -1;
        f.data = fr->pend;
        f.len = fr->pend_len;
    }
    if (trim) {
        /* Trailing whitespace of the whole frame, counted over bytes that
         * were not kept too: the result must not depend on where the feeds
         * split the frame. */
        uint64_t ws = ws_tail(buf, seg, end);
        if (ws == end - seg)
            ws += fr->flen > 0 ? fr->tail_ws : 0;
        full -= ws;
        if (f.len > full)
            f.len = (size_t)full;
    }
    if (full > fr->max_frame) {
        if (kind == NW_FRAME_OBJECT || kind == NW_FRAME_TRUNCATED)
            kind = NW_FRAME_TOO_LARGE;
        if (f.len > NW_FRAME_KEEP_BYTES)
            f.len = NW_FRAME_KEEP_BYTES;
    }
    f.kind = kind;
    f.full_len = (size_t)full;
    f.offset = fr->start;
    fr->flen = 0;
    fr->pend_len = 0;
    fr->tail_ws = 0;
    return cb(ctx, &f);
}

/* Ends a feed with a frame still open: keeps buf[seg..len) for later. */
static int keep_tail(nw_framer *fr, const char *buf, size_t seg, size_t len)
{
    size_t tail = len - seg;
    if (fr->flen == 0) {
        fr->pend_len = 0;
        fr->tail_ws = 0;
    }
    uint64_t total = fr->flen + tail;
    if (pend_keep(fr, buf + seg, tail, total))
        return -1;
    size_t ws = ws_tail(buf, seg, len);
    fr->tail_ws = ws == tail ? fr->tail_ws + tail : ws;
    fr->flen = total;
    return 0;
}

int nw_framer_feed(nw_framer *fr, const char *buf, size_t len, nw_frame_cb cb,
                   void *ctx)
{
    const unsigned char *p = (const unsigned char *)buf;
    /* The state lives in locals in the loop (registers), fr between feeds. */
    int mode = fr->mode, in_str = fr->in_str, esc = fr->esc;
    int line_start = fr->line_start;
    uint64_t depth = fr->depth;
    size_t i = 0, seg = 0;   /* seg: the open frame's first byte in buf */
    int rc = 0;

    while (i < len) {
        if (mode == FR_TOP) {
            unsigned char c = p[i];
            if (is_ws(c)) {
                i++;
                continue;
            }
            if (fr->bom < 3 && fr->base + i == fr->bom && c == UTF8_BOM[fr->bom]) {
                fr->bom++;
                i++;
                continue;
            }
            fr->bom = 3;
            seg = i;
            fr->start = fr->base + i;
            fr->flen = 0;
            if (c == '{') {
                mode = FR_OBJECT;
                depth = 1;
                in_str = esc = line_start = 0;
                i++;
            } else if (fr->in_array && c == ',') {
                i++;
            } else if (fr->in_array && c == ']') {
                fr->in_array = 0;
                i++;
            } else if (fr->in_array) {
                mode = FR_ELEMENT;   /* this byte is the element's first */
                depth = 0;
                in_str = esc = line_start = 0;
            } else if (c == '[') {
                fr->in_array = 1;
                i++;
            } else {
                mode = FR_GARBAGE;
            }
            continue;
        }

        if (mode == FR_GARBAGE) {
            const unsigned char *nl = memchr(p + i, '\n', len - i);
            if (!nl) {
                i = len;
                break;
            }
            size_t end = (size_t)(nl - p);
            i = end + 1;
            mode = FR_TOP;
            rc = emit(fr, NW_FRAME_GARBAGE, buf, seg, end, 1, cb, ctx);
            if (rc)
                goto out;
            continue;
        }

        /* OBJECT or ELEMENT: a '{' at the start of a line while the frame is
         * open cuts it short (see framer.h). */
        if (line_start) {
            line_start = 0;
            if (p[i] == '{') {
                int kind = mode == FR_OBJECT ? NW_FRAME_TRUNCATED : NW_FRAME_NOT_OBJECT;
                mode = FR_TOP;
                rc = emit(fr, kind, buf, seg, i, 1, cb, ctx);
                if (rc)
                    goto out;
                continue;   /* TOP opens the new object at this '{' */
            }
        }

        if (mode == FR_OBJECT) {
            if (in_str) {
                if (esc) {
                    esc = 0;
                    if (p[i] != '\n')
                        i++;
                    continue;
                }
                while (i < len && !STR_STOP[p[i]])
                    i++;
                if (i == len)
                    break;
                unsigned char c = p[i++];
                if (c == '"')
                    in_str = 0;
                else if (c == '\\')
                    esc = 1;
                else
                    line_start = 1;   /* raw '\n': the string is broken */
                continue;
            }
            while (i < len && !OBJ_STOP[p[i]])
                i++;
            if (i == len)
                break;
            unsigned char c = p[i++];
            if (c == '"') {
                in_str = 1;
            } else if (c == '{') {
                depth++;
            } else if (c == '}') {
                if (--depth == 0) {
                    mode = FR_TOP;
                    rc = emit(fr, NW_FRAME_OBJECT, buf, seg, i, 0, cb, ctx);
                    if (rc)
                        goto out;
                }
            } else {
                line_start = 1;
            }
            continue;
        }

        /* FR_ELEMENT: rare (arrays of non-objects), so one byte at a time.
         * It ends before a ',' or ']' or newline at its own level. */
        unsigned char c = p[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            else if (c == '\n')
                line_start = 1;
            i++;
            continue;
        }
        if (depth == 0 && (c == ',' || c == ']' || c == '\n')) {
            mode = FR_TOP;   /* TOP consumes the separator */
            rc = emit(fr, NW_FRAME_NOT_OBJECT, buf, seg, i, 1, cb, ctx);
            if (rc)
                goto out;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && depth > 0)
            depth--;
        else if (c == '\n')
            line_start = 1;
        i++;
    }

    if (mode != FR_TOP && keep_tail(fr, buf, seg, len))
        rc = -1;
out:
    fr->mode = mode;
    fr->in_str = in_str;
    fr->esc = esc;
    fr->line_start = line_start;
    fr->depth = depth;
    fr->base += len;
    return rc;
}

int nw_framer_finish(nw_framer *fr, nw_frame_cb cb, void *ctx)
{
    int mode = fr->mode;
    fr->mode = FR_TOP;
    fr->in_array = 0;
    if (mode == FR_TOP)
        return 0;
    nw_frame_kind kind = mode == FR_OBJECT    ? NW_FRAME_TRUNCATED
                         : mode == FR_ELEMENT ? NW_FRAME_NOT_OBJECT
                                              : NW_FRAME_GARBAGE;
    return emit(fr, kind, NULL, 0, 0, 1, cb, ctx);
}

void nw_framer_restart(nw_framer *fr, uint64_t offset, int in_array)
{
    fr->base = offset;
    fr->mode = FR_TOP;
    fr->in_array = in_array != 0;
    fr->in_str = fr->esc = fr->line_start = 0;
    fr->depth = 0;
    /* A byte order mark can only begin the stream. */
    fr->bom = offset == 0 ? 0 : 3;
    fr->start = offset;
    fr->flen = 0;
    fr->pend_len = 0;
    fr->tail_ws = 0;
}

int nw_framer_cut(nw_framer *fr, nw_frame_cb cb, void *ctx)
{
    if (fr->mode == FR_TOP)
        return 0;
    /* What a '{' after a raw newline does to an open frame (see feed). */
    if ((fr->mode == FR_OBJECT || fr->mode == FR_ELEMENT) && fr->line_start) {
        nw_frame_kind kind = fr->mode == FR_OBJECT ? NW_FRAME_TRUNCATED
                                                   : NW_FRAME_NOT_OBJECT;
        fr->mode = FR_TOP;
        fr->line_start = 0;
        return emit(fr, kind, NULL, 0, 0, 1, cb, ctx);
    }
    return 0;
}

int nw_framer_between(const nw_framer *fr, int *in_array)
{
    if (in_array)
        *in_array = fr->in_array;
    return fr->mode == FR_TOP;
}
