/*
 * framer.h -- cuts a byte stream into JSON object texts.
 *
 * Three framings are detected, never configured:
 *   NDJSON            one object per line;
 *   concatenated      objects separated by any whitespace, pretty-printed
 *                     or not (as pasted from the provider's web page);
 *   array             one top-level JSON array of objects ("[{...},{...}]").
 * The framer only tracks strings, escapes and brace depth; it does not parse
 * values (that is decode.h's job, on many threads).
 *
 * Recovery, so that one bad event never costs the next:
 *   - bytes that cannot start an object (garbage) are skipped up to the next
 *     newline and reported as one NW_FRAME_GARBAGE frame;
 *   - a '{' right after a newline while an object is still open means that
 *     object was cut short: it is reported NW_FRAME_TRUNCATED and framing
 *     restarts at the '{' (pretty-printed events indent nested braces, and
 *     NDJSON lines start with '{', so a column-0 brace is a new event);
 *   - an object longer than max_frame is reported NW_FRAME_TOO_LARGE with
 *     its first bytes only; the rest is skipped without being buffered, so
 *     memory stays bounded by max_frame plus one feed;
 *   - input that ends inside an object is reported NW_FRAME_TRUNCATED.
 * Leaf module: depends on the C library only.
 */
#ifndef NETWHO_FRAMER_H
#define NETWHO_FRAMER_H

#include <stddef.h>
#include <stdint.h>

typedef enum nw_frame_kind {
    NW_FRAME_OBJECT = 0,   /* a complete {...}: decode it                   */
    NW_FRAME_GARBAGE,      /* text that is not an object (bad_json)          */
    NW_FRAME_TRUNCATED,    /* an object cut short (truncated)                */
    NW_FRAME_TOO_LARGE,    /* an object over max_frame bytes (too_large)     */
    NW_FRAME_NOT_OBJECT    /* an array element that is not an object         */
} nw_frame_kind;

/* How many leading bytes of a too-large frame are kept for the dead letter. */
#define NW_FRAME_KEEP_BYTES 4096

typedef struct nw_frame {
    nw_frame_kind kind;
    const char *data;    /* the frame's bytes (for TOO_LARGE: its first bytes) */
    size_t len;          /* bytes at data                                   */
    size_t full_len;     /* the frame's real length in the input            */
    uint64_t offset;     /* byte offset of the frame's start in the stream  */
} nw_frame;

/* Called once per frame, in input order.  f->data is valid only during the
 * call.  Return 0 to go on, non-zero to stop (the feed returns that value). */
typedef int (*nw_frame_cb)(void *ctx, const nw_frame *f);

typedef struct nw_framer nw_framer;

/* New framer; objects over max_frame bytes are TOO_LARGE.  NULL on ENOMEM.
 * Caller frees with nw_framer_free. */
nw_framer *nw_framer_new(size_t max_frame);
void nw_framer_free(nw_framer *fr);

/*
 * Feeds the next len bytes of the stream.  Frames complete within what was
 * fed so far are passed to cb; an incomplete tail is kept (copied) until the
 * next feed.  Returns 0, the callback's non-zero value, or -1 on ENOMEM.
 */
int nw_framer_feed(nw_framer *fr, const char *buf, size_t len, nw_frame_cb cb,
                   void *ctx);

/* Ends the stream: an open object becomes TRUNCATED, trailing garbage
 * GARBAGE.  Whitespace and a closing ']' are not frames.  Returns as feed. */
int nw_framer_finish(nw_framer *fr, nw_frame_cb cb, void *ctx);

/*
 * Framing pieces of one stream on several framers (pipeline.h).  A piece
 * may start at any point where the framer that fed everything before it is
 * between frames; knowing only whether that framer is inside the top-level
 * array, a framer restarted there frames the rest exactly as it would.
 * Column-0 braces ("\n{") are such points for every input but a broken
 * string inside an array element, which is why pieces are cut there.
 *
 * nw_framer_restart: makes fr a framer about to read stream offset
 * `offset`, between frames, inside a top-level array if in_array.  Offset 0
 * is a stream's start (a byte order mark may follow).  Keeps fr's memory.
 *
 * nw_framer_cut: to be called when the bytes fed so far end with a newline
 * and the stream's next byte is a '{': emits the frame that '{' will end (an
 * object cut short is TRUNCATED, an array element NOT_OBJECT), as feeding
 * the '{' would, so that fr is between frames if a '{' can leave it so.
 * Returns 0, cb's non-zero value, or -1 on ENOMEM.
 *
 * nw_framer_between: 1 if fr is between frames (and *in_array, if not
 * NULL, says whether inside the top-level array), 0 if a frame is open.
 *
 * Frames are the same whatever the feeds' sizes; so are they when a stream
 * is cut at points where nw_framer_between holds and each piece is framed
 * by a framer restarted at its offset.
 */
void nw_framer_restart(nw_framer *fr, uint64_t offset, int in_array);
int nw_framer_cut(nw_framer *fr, nw_frame_cb cb, void *ctx);
int nw_framer_between(const nw_framer *fr, int *in_array);

#endif
