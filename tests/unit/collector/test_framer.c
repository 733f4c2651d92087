/* test_framer.c -- framer.h: the three framings, recovery, bounded memory,
 * and the same frames and offsets however the input is split into feeds. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/decode.h"
#include "netwho/framer.h"
#include "tests/unit/check_main.h"

#if defined(__SANITIZE_ADDRESS__)
/* From libasan (<sanitizer/allocator_interface.h>, which GCC lacks). */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_used(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

#define SEED NW_TEST_DATA "/kernel_network_seed_examples.jsonl"
#define SEED_EVENTS 16
#define LINE_MAX_BYTES 8192
#define BIG_MAX (1024 * 1024)

/* ---- recording frames ------------------------------------------------- */

typedef struct rec_frame {
    nw_frame_kind kind;
    char *data;
    size_t len, full_len;
    uint64_t offset;
} rec_frame;

typedef struct rec {
    rec_frame *f;
    size_t n, cap;
    int stop_at;     /* return 1 from the callback at this frame (-1 never) */
} rec;

static int rec_cb(void *ctx, const nw_frame *f)
{
    rec *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->f = realloc(r->f, r->cap * sizeof *r->f);
        if (!r->f)
            ck_abort_msg("out of memory");
    }
    rec_frame *x = &r->f[r->n++];
    x->kind = f->kind;
    x->len = f->len;
    x->full_len = f->full_len;
    x->offset = f->offset;
    x->data = malloc(f->len + 1);
    if (!x->data)
        ck_abort_msg("out of memory");
    memcpy(x->data, f->data, f->len);
    x->data[f->len] = '\0';
    return r->stop_at >= 0 && (size_t)r->stop_at + 1 == r->n;
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i].data);
    free(r->f);
    memset(r, 0, sizeof *r);
}

/* Frames in[0..len) fed in pieces: piece sizes come from next_piece (NULL:
 * one feed).  Fills *r. */
typedef size_t (*piece_fn)(void *state, size_t left);

static void frame_split(const char *in, size_t len, size_t max_frame, piece_fn next_piece,
                        void *state, rec *r)
{
    memset(r, 0, sizeof *r);
    r->stop_at = -1;
    nw_framer *fr = nw_framer_new(max_frame);
    ck_assert_ptr_nonnull(fr);
    size_t off = 0;
    do {
        size_t n = next_piece ? next_piece(state, len - off) : len - off;
        /* Feed from a private copy, so that no frame can point into the
         * input after its feed returned. */
        char *piece = malloc(n ? n : 1);
        memcpy(piece, in + off, n);
        if (nw_framer_feed(fr, piece, n, rec_cb, r) != 0)   /* no ck_assert per feed: slow */
            ck_abort_msg("feed failed at %zu", off);
        free(piece);
        off += n;
    } while (off < len);
    ck_assert_int_eq(nw_framer_finish(fr, rec_cb, r), 0);
    nw_framer_free(fr);
}

static void frame_all(const char *in, size_t max_frame, rec *r)
{
    frame_split(in, strlen(in), max_frame, NULL, NULL, r);
}

static size_t one_byte(void *state, size_t left)
{
    return left < 1 ? left : 1;
}

static size_t random_piece(void *state, size_t left)
{
    unsigned *seed = state;
    *seed = *seed * 1103515245u + 12345u;
    size_t n = (*seed >> 8) % 300;
    return n > left ? left : n;   /* zero-length feeds included */
}

#define ck_frame(r, i, k, text, off)                                      \
    do {                                                                  \
        ck_assert_int_eq((r)->f[i].kind, (k));                            \
        ck_assert_str_eq((r)->f[i].data, (text));                         \
        ck_assert_uint_eq((r)->f[i].len, strlen(text));                   \
        ck_assert_uint_eq((r)->f[i].offset, (off));                       \
    } while (0)

/* ---- inputs ----------------------------------------------------------- */

/* The 16 seed lines, without their newlines. */
static char seed[SEED_EVENTS][LINE_MAX_BYTES];

static void load_seed(void)
{
    FILE *f = fopen(SEED, "r");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < SEED_EVENTS; i++) {
        ck_assert_ptr_nonnull(fgets(seed[i], LINE_MAX_BYTES, f));
        seed[i][strcspn(seed[i], "\n")] = '\0';
    }
    fclose(f);
}

/* Event 10 exactly as the provider's page prints it. */
static const char *PRETTY10 =
    "{\n"
    "  \"system\": {\n"
    "    \"provider\": \"Microsoft-Windows-Kernel-Network\",\n"
    "    \"guid\": \"{7dd42a49-5329-4832-8dfd-43d979153a88}\",\n"
    "    \"event_source_name\": \"\",\n"
    "    \"event_id\": \"10\",\n"
    "    \"version\": \"0\",\n"
    "    \"level\": \"4\",\n"
    "    \"task\": \"10\",\n"
    "    \"opcode\": \"10\",\n"
    "    \"keywords\": 9223372036854775824,\n"
    "    \"time_created\": \"2026-03-16T00:21:36.423105900+00:00\",\n"
    "    \"event_record_id\": 0,\n"
    "    \"correlation\": {\n"
    "      \"ActivityID\": \"{00000000-0000-0000-0000-000000000000}\"\n"
    "    },\n"
    "    \"execution\": {\n"
    "      \"process_id\": \"4168\",\n"
    "      \"thread_id\": \"6844\"\n"
    "    },\n"
    "    \"channel\": \"Microsoft-Windows-Kernel-Network/Analytic\",\n"
    "    \"computer\": \"\",\n"
    "    \"security\": {\n"
    "      \"user_id\": \"\"\n"
    "    }\n"
    "  },\n"
    "  \"event_data\": {\n"
    "    \"PID\": \"    4168\",\n"
    "    \"size\": \"    1007\",\n"
    "    \"daddr\": \"10.2.20.41\",\n"
    "    \"saddr\": \"10.2.10.21\",\n"
    "    \"dport\": \"5044\",\n"
    "    \"sport\": \"50993\",\n"
    "    \"startime\": \" 5775532\",\n"
    "    \"endtime\": \" 5775532\",\n"
    "    \"seqnum\": \"       0\",\n"
    "    \"connid\": \"       0\"\n"
    "  },\n"
    "  \"message\": \"\"\n"
    "}";

/* A growing string for building inputs. */
typedef struct sb {
    char *s;
    size_t len, cap;
} sb;

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        ck_assert_ptr_nonnull(b->s);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_adds(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* cJSON's pretty form of a seed line (tab-indented, multi-line). */
static char *pretty_of(const char *line)
{
    cJSON *j = cJSON_Parse(line);
    ck_assert_ptr_nonnull(j);
    char *p = cJSON_Print(j);
    cJSON_Delete(j);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Decodes a frame and checks it is the seed event `want` (same decode). */
static void ck_same_event(const rec_frame *f, int want)
{
    nw_event a, b;
    ck_assert_int_eq(nw_decode_event(f->data, f->len, NULL, &a, NULL, 0), NW_ACCEPTED);
    ck_assert_int_eq(nw_decode_event(seed[want], strlen(seed[want]), NULL, &b, NULL, 0),
                     NW_ACCEPTED);
    ck_assert_mem_eq(&a, &b, sizeof a);
}

/* ---- the three framings ----------------------------------------------- */

START_TEST(ndjson_offsets)
{
    load_seed();
    sb in = {0};
    uint64_t offs[SEED_EVENTS];
    for (int i = 0; i < SEED_EVENTS; i++) {
        offs[i] = in.len;
        sb_adds(&in, seed[i]);
        sb_adds(&in, i % 2 ? "\r\n" : "\n");   /* CRLF or LF */
    }
    rec r;
    frame_all(in.s, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, SEED_EVENTS);
    for (int i = 0; i < SEED_EVENTS; i++) {
        ck_frame(&r, i, NW_FRAME_OBJECT, seed[i], offs[i]);
        ck_assert_uint_eq(r.f[i].full_len, strlen(seed[i]));
    }
    rec_free(&r);
    free(in.s);
}
END_TEST

START_TEST(pretty_concatenated)
{
    load_seed();
    /* The page's own event 10, then every event pretty-printed by cJSON,
     * separated by blank lines, as pasted. */
    sb in = {0};
    sb_adds(&in, PRETTY10);
    sb_adds(&in, "\n\n");
    uint64_t offs[SEED_EVENTS + 1];
    offs[0] = 0;
    for (int i = 0; i < SEED_EVENTS; i++) {
        char *p = pretty_of(seed[i]);
        offs[i + 1] = in.len;
        sb_adds(&in, p);
        sb_adds(&in, i % 3 == 0 ? "\n" : i % 3 == 1 ? "\n\n  \t\n" : " ");
        free(p);
    }
    rec r;
    frame_all(in.s, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, SEED_EVENTS + 1);
    ck_frame(&r, 0, NW_FRAME_OBJECT, PRETTY10, 0);
    ck_same_event(&r.f[0], 0);
    for (int i = 0; i < SEED_EVENTS; i++) {
        ck_assert_int_eq(r.f[i + 1].kind, NW_FRAME_OBJECT);
        ck_assert_uint_eq(r.f[i + 1].offset, offs[i + 1]);
        ck_same_event(&r.f[i + 1], i);
    }
    rec_free(&r);
    free(in.s);
}
END_TEST

START_TEST(top_level_array_compact_and_pretty)
{
    load_seed();
    /* Compact: [{...},{...},...] on one line. */
    sb in = {0};
    uint64_t offs[SEED_EVENTS];
    sb_adds(&in, "[");
    for (int i = 0; i < SEED_EVENTS; i++) {
        if (i)
            sb_adds(&in, ",");
        offs[i] = in.len;
        sb_adds(&in, seed[i]);
    }
    sb_adds(&in, "]\n");
    rec r;
    frame_all(in.s, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, SEED_EVENTS);
    for (int i = 0; i < SEED_EVENTS; i++)
        ck_frame(&r, i, NW_FRAME_OBJECT, seed[i], offs[i]);
    rec_free(&r);
    free(in.s);

    /* Pretty: cJSON's printing of the array of all 16. */
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < SEED_EVENTS; i++)
        cJSON_AddItemToArray(arr, cJSON_Parse(seed[i]));
    char *p = cJSON_Print(arr);
    cJSON_Delete(arr);
    frame_all(p, BIG_MAX, &r);
    free(p);
    ck_assert_uint_eq(r.n, SEED_EVENTS);
    for (int i = 0; i < SEED_EVENTS; i++) {
        ck_assert_int_eq(r.f[i].kind, NW_FRAME_OBJECT);
        ck_same_event(&r.f[i], i);
    }
    rec_free(&r);
}
END_TEST

START_TEST(array_elements_that_are_not_objects)
{
    const char *in = "[{\"a\":1}, 42 ,\"x,]\" ,[1,[2]],{\"b\":2}, null]\n{\"c\":3}\n";
    rec r;
    frame_all(in, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 7);
    ck_frame(&r, 0, NW_FRAME_OBJECT, "{\"a\":1}", 1);
    ck_frame(&r, 1, NW_FRAME_NOT_OBJECT, "42", 10);
    ck_frame(&r, 2, NW_FRAME_NOT_OBJECT, "\"x,]\"", 14);
    ck_frame(&r, 3, NW_FRAME_NOT_OBJECT, "[1,[2]]", 21);
    ck_frame(&r, 4, NW_FRAME_OBJECT, "{\"b\":2}", 29);
    ck_frame(&r, 5, NW_FRAME_NOT_OBJECT, "null", 38);
    ck_frame(&r, 6, NW_FRAME_OBJECT, "{\"c\":3}", 44);
    rec_free(&r);

    /* Empty arrays and whitespace are no frames. */
    frame_all("[]\n[ ]\n  \n", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 0);
    rec_free(&r);
}
END_TEST

START_TEST(braces_quotes_escapes_in_strings)
{
    const char *a = "{\"a\":\"}{\\\"}\",\"b\":\"\\\\\",\"c\":\"{{{\",\"d\":{\"e\":\"]\"}}";
    const char *b = "{\"x\":\"\\\\\\\"}\"}";
    sb in = {0};
    sb_adds(&in, a);
    sb_adds(&in, b);   /* no separator at all */
    sb_adds(&in, "\n");
    rec r;
    frame_all(in.s, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 2);
    ck_frame(&r, 0, NW_FRAME_OBJECT, a, 0);
    ck_frame(&r, 1, NW_FRAME_OBJECT, b, strlen(a));
    rec_free(&r);
    free(in.s);
}
END_TEST

/* ---- recovery --------------------------------------------------------- */

START_TEST(truncated_line_inside_ndjson)
{
    load_seed();
    sb in = {0};
    char cut_obj[128], cut_str[128];
    /* Cut outside a string and cut inside one. */
    memcpy(cut_obj, seed[1], 57);
    cut_obj[57] = '\0';
    ck_assert_int_eq(cut_obj[56], ',');
    memcpy(cut_str, seed[3], 60);
    cut_str[60] = '\0';
    uint64_t o[6];
    o[0] = in.len; sb_adds(&in, seed[0]); sb_adds(&in, "\n");
    o[1] = in.len; sb_adds(&in, cut_obj); sb_adds(&in, "\n");
    o[2] = in.len; sb_adds(&in, seed[2]); sb_adds(&in, "\n");
    o[3] = in.len; sb_adds(&in, cut_str); sb_adds(&in, "\r\n");
    o[4] = in.len; sb_adds(&in, seed[4]); sb_adds(&in, "\n");
    o[5] = in.len; sb_adds(&in, seed[5]); sb_adds(&in, "\n");
    rec r;
    frame_all(in.s, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 6);
    ck_frame(&r, 0, NW_FRAME_OBJECT, seed[0], o[0]);
    ck_frame(&r, 1, NW_FRAME_TRUNCATED, cut_obj, o[1]);
    ck_frame(&r, 2, NW_FRAME_OBJECT, seed[2], o[2]);
    ck_frame(&r, 3, NW_FRAME_TRUNCATED, cut_str, o[3]);
    ck_frame(&r, 4, NW_FRAME_OBJECT, seed[4], o[4]);
    ck_frame(&r, 5, NW_FRAME_OBJECT, seed[5], o[5]);
    rec_free(&r);
    free(in.s);
}
END_TEST

START_TEST(garbage_lines)
{
    const char *in = "hello world\n{\"a\":1}\n   junk ] } junk\r\n{\"b\":2} tail\n"
                     "]\n,\n{\"c\":3}";
    rec r;
    frame_all(in, BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 8);
    ck_frame(&r, 0, NW_FRAME_GARBAGE, "hello world", 0);
    ck_frame(&r, 1, NW_FRAME_OBJECT, "{\"a\":1}", 12);
    ck_frame(&r, 2, NW_FRAME_GARBAGE, "junk ] } junk", 23);
    ck_frame(&r, 3, NW_FRAME_OBJECT, "{\"b\":2}", 38);
    ck_frame(&r, 4, NW_FRAME_GARBAGE, "tail", 46);
    ck_frame(&r, 5, NW_FRAME_GARBAGE, "]", 51);   /* no array is open */
    ck_frame(&r, 6, NW_FRAME_GARBAGE, ",", 53);
    ck_frame(&r, 7, NW_FRAME_OBJECT, "{\"c\":3}", 55);
    rec_free(&r);
    /* The last object had no newline: finish reports... nothing missing. */
    frame_all("{\"c\":3}", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 1);
    ck_frame(&r, 0, NW_FRAME_OBJECT, "{\"c\":3}", 0);
    rec_free(&r);
}
END_TEST

START_TEST(truncated_and_garbage_at_eof)
{
    rec r;
    frame_all("{\"a\":1}\n{\"b\":{\"c\":\"x", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 2);
    ck_frame(&r, 1, NW_FRAME_TRUNCATED, "{\"b\":{\"c\":\"x", 8);
    ck_assert_uint_eq(r.f[1].full_len, 12);
    rec_free(&r);

    frame_all("{\"a\":1}\nnot json", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 2);
    ck_frame(&r, 1, NW_FRAME_GARBAGE, "not json", 8);
    rec_free(&r);

    /* Whitespace and a closing ']' at the end are no frames; an array that
     * never closes loses nothing either. */
    frame_all("[{\"a\":1}\n]\n\n", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 1);
    rec_free(&r);
    frame_all("[{\"a\":1},\n", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 1);
    rec_free(&r);
}
END_TEST

START_TEST(too_large_skipped_next_survive)
{
    const size_t max = 100;
    sb in = {0};
    sb_adds(&in, "{\"a\":1}\n");
    /* An object of exactly max bytes is fine ... */
    char ok[128];
    memset(ok, 'x', sizeof ok);
    memcpy(ok, "{\"p\":\"", 6);
    memcpy(ok + max - 2, "\"}", 2);
    ok[max] = '\0';
    sb_adds(&in, ok);
    sb_adds(&in, "\n");
    /* ... one of 5000 is not; it has braces inside strings too. */
    uint64_t big_off = in.len;
    sb_adds(&in, "{\"big\":\"");
    for (int i = 0; i < 4990; i++)
        sb_adds(&in, i % 7 ? "y" : "}");
    sb_adds(&in, "\"}");
    size_t big_len = in.len - big_off;
    sb_adds(&in, "\n{\"b\":2}\n");

    rec r;
    frame_split(in.s, in.len, max, NULL, NULL, &r);
    ck_assert_uint_eq(r.n, 4);
    ck_frame(&r, 0, NW_FRAME_OBJECT, "{\"a\":1}", 0);
    ck_frame(&r, 1, NW_FRAME_OBJECT, ok, 8);
    ck_assert_int_eq(r.f[2].kind, NW_FRAME_TOO_LARGE);
    ck_assert_uint_eq(r.f[2].offset, big_off);
    ck_assert_uint_eq(r.f[2].full_len, big_len);
    ck_assert_uint_eq(r.f[2].len, NW_FRAME_KEEP_BYTES);
    ck_assert_int_eq(memcmp(r.f[2].data, in.s + big_off, NW_FRAME_KEEP_BYTES), 0);
    ck_frame(&r, 3, NW_FRAME_OBJECT, "{\"b\":2}", big_off + big_len + 1);
    rec_free(&r);

    /* The same one byte at a time. */
    frame_split(in.s, in.len, max, one_byte, NULL, &r);
    ck_assert_uint_eq(r.n, 4);
    ck_assert_int_eq(r.f[2].kind, NW_FRAME_TOO_LARGE);
    ck_assert_uint_eq(r.f[2].full_len, big_len);
    ck_assert_uint_eq(r.f[2].len, NW_FRAME_KEEP_BYTES);
    ck_assert_int_eq(memcmp(r.f[2].data, in.s + big_off, NW_FRAME_KEEP_BYTES), 0);
    ck_frame(&r, 3, NW_FRAME_OBJECT, "{\"b\":2}", big_off + big_len + 1);
    rec_free(&r);
    free(in.s);
}
END_TEST

/* Counts frames without keeping them (the memory test must not grow). */
typedef struct counter {
    size_t n, big_full, big_len;
    nw_frame_kind big_kind;
} counter;

static int count_cb(void *ctx, const nw_frame *f)
{
    counter *c = ctx;
    if (c->n++ == 0) {
        c->big_kind = f->kind;
        c->big_full = f->full_len;
        c->big_len = f->len;
    }
    return 0;
}

START_TEST(too_large_memory_stays_bounded)
{
    const size_t max = 16 * 1024, piece = 64 * 1024;
    const size_t total = 64u * 1024 * 1024;   /* one 64 MiB object */
    char *buf = malloc(piece);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'z', piece);
    nw_framer *fr = nw_framer_new(max);
    counter c = {0};
    ck_assert_int_eq(nw_framer_feed(fr, "{\"v\":\"", 6, count_cb, &c), 0);
    size_t fed = 6, before = 0;
    while (fed + piece < total) {
        ck_assert_int_eq(nw_framer_feed(fr, buf, piece, count_cb, &c), 0);
        fed += piece;
        if (fed > 1024 * 1024 && before == 0)
            before = heap_used();   /* after the first MiB: pend is at its size */
    }
    size_t after = heap_used();
    ck_assert_msg(after <= before + 4096, "heap grew from %zu to %zu", before, after);
    ck_assert_int_eq(nw_framer_feed(fr, "\"}\n{}", 5, count_cb, &c), 0);
    fed += 2;
    ck_assert_int_eq(nw_framer_finish(fr, count_cb, &c), 0);
    ck_assert_uint_eq(c.n, 2);   /* the big one, then "{}" */
    ck_assert_int_eq(c.big_kind, NW_FRAME_TOO_LARGE);
    ck_assert_uint_eq(c.big_full, fed);
    ck_assert_uint_eq(c.big_len, NW_FRAME_KEEP_BYTES);
    nw_framer_free(fr);
    free(buf);
}
END_TEST

START_TEST(long_garbage_line_is_kept_short)
{
    sb in = {0};
    for (int i = 0; i < 3000; i++)
        sb_adds(&in, "garbage ");
    size_t glen = in.len;
    sb_adds(&in, "\n{\"a\":1}\n");
    rec r;
    frame_split(in.s, in.len, 1000, one_byte, NULL, &r);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(r.f[0].kind, NW_FRAME_GARBAGE);
    /* The trailing space is trimmed as from a line fed in one piece: the
     * length must not depend on how reads split the line. */
    ck_assert_uint_eq(r.f[0].full_len, glen - 1);
    ck_assert_uint_eq(r.f[0].len, NW_FRAME_KEEP_BYTES);
    ck_frame(&r, 1, NW_FRAME_OBJECT, "{\"a\":1}", glen + 1);
    rec_free(&r);
    frame_split(in.s, in.len, 1000, NULL, NULL, &r);
    ck_assert_uint_eq(r.f[0].full_len, glen - 1);
    rec_free(&r);
    free(in.s);
}
END_TEST

START_TEST(byte_order_mark_and_stop)
{
    rec r;
    frame_all("\xEF\xBB\xBF{\"a\":1}\n", BIG_MAX, &r);
    ck_assert_uint_eq(r.n, 1);
    ck_frame(&r, 0, NW_FRAME_OBJECT, "{\"a\":1}", 3);
    rec_free(&r);

    /* A callback's non-zero return stops the feed and is returned. */
    memset(&r, 0, sizeof r);
    r.stop_at = 1;
    nw_framer *fr = nw_framer_new(BIG_MAX);
    const char *in = "{\"a\":1}{\"b\":2}{\"c\":3}";
    ck_assert_int_eq(nw_framer_feed(fr, in, strlen(in), rec_cb, &r), 1);
    ck_assert_uint_eq(r.n, 2);
    nw_framer_free(fr);
    rec_free(&r);
}
END_TEST

/* ---- splits ----------------------------------------------------------- */

/* Everything above in one stream. */
static sb mixed_input(void)
{
    load_seed();
    sb in = {0};
    sb_adds(&in, seed[0]);
    sb_adds(&in, "\ngarbage line\n");
    sb_adds(&in, PRETTY10);
    sb_adds(&in, "\n");
    sb_add(&in, seed[1], 90);   /* cut short by the next line's '{' */
    sb_adds(&in, "\n");
    sb_adds(&in, seed[2]);
    sb_adds(&in, "\n[");
    sb_adds(&in, seed[3]);
    sb_adds(&in, ",\n  7, \"s\\\"]\" ,\n");
    sb_adds(&in, seed[4]);
    sb_adds(&in, "]\n{\"esc\":\"\\\\\",\"q\":\"\\\"{\"}\n");
    sb_adds(&in, "{\"big\":\"");
    for (int i = 0; i < 300; i++)
        sb_adds(&in, "0123456789{}[]\\\"");
    sb_adds(&in, "\"}\n");
    for (int i = 5; i < SEED_EVENTS; i++) {
        sb_adds(&in, seed[i]);
        sb_adds(&in, "\n");
    }
    sb_adds(&in, "{\"open\":[1,2");
    return in;
}

/* Index of the first frame where a and b differ, or -1.  Plain C: one
 * Check assertion per comparison would cost more than the framing. */
static long first_difference(const rec *a, const rec *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const rec_frame *x = &a->f[i], *y = &b->f[i];
        if (x->kind != y->kind || x->offset != y->offset || x->len != y->len ||
            x->full_len != y->full_len || memcmp(x->data, y->data, x->len) != 0)
            return (long)i;
    }
    return a->n == b->n ? -1 : (long)n;
}

#define ck_same_frames(a, b, what)                                           \
    do {                                                                     \
        long d_ = first_difference(a, b);                                    \
        ck_assert_msg(d_ < 0, "%s: frame %ld differs", what, d_);            \
    } while (0)

START_TEST(every_split_gives_the_same_frames)
{
    sb in = mixed_input();
    const size_t max = 2048;   /* the "big" object (4.8 kB) is too large */
    rec whole;
    frame_split(in.s, in.len, max, NULL, NULL, &whole);

    /* What the whole feed gives, checked once by kind. */
    static const nw_frame_kind want[] = {
        NW_FRAME_OBJECT, NW_FRAME_GARBAGE, NW_FRAME_OBJECT, NW_FRAME_TRUNCATED,
        NW_FRAME_OBJECT, NW_FRAME_OBJECT, NW_FRAME_NOT_OBJECT, NW_FRAME_NOT_OBJECT,
        NW_FRAME_OBJECT, NW_FRAME_OBJECT, NW_FRAME_TOO_LARGE};
    size_t nwant = sizeof want / sizeof want[0];
    ck_assert_uint_eq(whole.n, nwant + (SEED_EVENTS - 5) + 1);
    for (size_t i = 0; i < nwant; i++)
        ck_assert_msg(whole.f[i].kind == want[i], "frame %zu kind %d", i, whole.f[i].kind);
    ck_assert_str_eq(whole.f[6].data, "7");
    ck_assert_str_eq(whole.f[7].data, "\"s\\\"]\"");
    ck_assert_int_eq(whole.f[whole.n - 1].kind, NW_FRAME_TRUNCATED);
    ck_assert_str_eq(whole.f[whole.n - 1].data, "{\"open\":[1,2");

    rec r;
    frame_split(in.s, in.len, max, one_byte, NULL, &r);
    ck_same_frames(&whole, &r, "one byte at a time");
    rec_free(&r);
    for (unsigned seed_no = 1; seed_no <= 40; seed_no++) {
        unsigned st = seed_no;
        frame_split(in.s, in.len, max, random_piece, &st, &r);
        ck_same_frames(&whole, &r, "random pieces");
        rec_free(&r);
    }
    /* Every two-piece split. */
    for (size_t cut = 0; cut <= in.len; cut++) {
        nw_framer *fr = nw_framer_new(max);
        memset(&r, 0, sizeof r);
        r.stop_at = -1;
        ck_assert_int_eq(nw_framer_feed(fr, in.s, cut, rec_cb, &r), 0);
        ck_assert_int_eq(nw_framer_feed(fr, in.s + cut, in.len - cut, rec_cb, &r), 0);
        ck_assert_int_eq(nw_framer_finish(fr, rec_cb, &r), 0);
        nw_framer_free(fr);
        ck_same_frames(&whole, &r, "two pieces");
        rec_free(&r);
    }
    rec_free(&whole);
    free(in.s);
}
END_TEST

static Suite *framer_suite(void)
{
    Suite *s = suite_create("framer");
    TCase *tc = tcase_create("framer");
    tcase_add_test(tc, ndjson_offsets);
    tcase_add_test(tc, pretty_concatenated);
    tcase_add_test(tc, top_level_array_compact_and_pretty);
    tcase_add_test(tc, array_elements_that_are_not_objects);
    tcase_add_test(tc, braces_quotes_escapes_in_strings);
    tcase_add_test(tc, truncated_line_inside_ndjson);
    tcase_add_test(tc, garbage_lines);
    tcase_add_test(tc, truncated_and_garbage_at_eof);
    tcase_add_test(tc, too_large_skipped_next_survive);
    tcase_add_test(tc, too_large_memory_stays_bounded);
    tcase_add_test(tc, long_garbage_line_is_kept_short);
    tcase_add_test(tc, byte_order_mark_and_stop);
    tcase_add_test(tc, every_split_gives_the_same_frames);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(framer_suite());
}
