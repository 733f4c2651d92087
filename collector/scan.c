/*
 * scan.c -- the Kernel-Network envelope's fields straight from the bytes
 * (see scan.h).
 *
 * A recursive-descent pass over strict JSON (RFC 8259) that keeps nothing
 * but pointers to the fields decode.c reads.  Strict JSON is a subset of
 * what cJSON accepts (cJSON also takes any byte <= 32 as whitespace, '+1',
 * leading zeros, bad \u escapes...), so "the scanner accepts" implies "cJSON
 * accepts"; the scanner gives up on the rest.  Two of cJSON's limits are
 * kept well inside: nesting (cJSON: 1000 levels) and the length of a
 * number (cJSON reads at most 63 bytes of one).
 */
#include "scan.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Deeper nesting than this is left to cJSON: events nest 3 levels. */
#define SCAN_MAX_DEPTH 64
/* A longer number is left to cJSON, which reads at most 63 bytes of one. */
#define SCAN_NUMBER_MAX 40
/* Integers of up to 15 digits are exact in a double, as cJSON's strtod
 * gives them; a field value with more is left to cJSON. */
#define SCAN_INT_DIGITS 15

const char *const NW_ED_NAME[F__COUNT] = {
    "PID", "size", "saddr", "daddr", "sport", "dport",
    "mss", "sackopt", "tsopt", "wsopt", "rcvwin", "rcvwinscale", "sndwinscale",
    "startime", "endtime", "seqnum", "connid", "Proto", "FailureCode"};

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* k[0..len) is name[0..nlen), ignoring ASCII case as strcasecmp does in
 * the C locale (the process never sets another); inline, since names are
 * a few bytes and most compares fail at once. */
static int name_is(const char *k, size_t len, const char *name, size_t nlen)
{
    if (len != nlen)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (k[i] != name[i] && lower((unsigned char)k[i]) != lower((unsigned char)name[i]))
            return 0;
    return 1;
}

#define NAME_IS(k, len, lit) name_is(k, len, lit, sizeof lit - 1)

static const unsigned char ED_NAME_LEN[F__COUNT] = {
    3, 4, 5, 5, 5, 5, 3, 7, 5, 5, 6, 11, 11, 8, 7, 6, 6, 5, 11};

int nw_sys_slot(const char *k, size_t len)
{
    if (len == 0)
        return -1;
    switch (k[0] | 0x20) {   /* ASCII lower case */
    case 'p': return NAME_IS(k, len, "provider") ? NW_SYS_PROVIDER : -1;
    case 'e': return NAME_IS(k, len, "event_id") ? NW_SYS_EVENT_ID : -1;
    case 't': return NAME_IS(k, len, "time_created") ? NW_SYS_TIME_CREATED : -1;
    case 'c': return NAME_IS(k, len, "computer") ? NW_SYS_COMPUTER : -1;
    }
    return -1;
}

/* A switch on the first letter leaves at most seven names to compare. */
int nw_ed_slot(const char *k, size_t len)
{
    static const signed char by_p[] = {F_PID, F_PROTO, -1};
    static const signed char by_s[] = {F_SIZE, F_SADDR, F_SPORT, F_SACKOPT,
                                       F_SNDWINSCALE, F_STARTIME, F_SEQNUM, -1};
    static const signed char by_d[] = {F_DADDR, F_DPORT, -1};
    static const signed char by_r[] = {F_RCVWIN, F_RCVWINSCALE, -1};
    static const signed char by_m[] = {F_MSS, -1};
    static const signed char by_t[] = {F_TSOPT, -1};
    static const signed char by_w[] = {F_WSOPT, -1};
    static const signed char by_e[] = {F_ENDTIME, -1};
    static const signed char by_c[] = {F_CONNID, -1};
    static const signed char by_f[] = {F_FAILURECODE, -1};
    const signed char *cand;

    if (len == 0)
        return -1;
    switch (k[0] | 0x20) {
    case 'p': cand = by_p; break;
    case 's': cand = by_s; break;
    case 'd': cand = by_d; break;
    case 'r': cand = by_r; break;
    case 'm': cand = by_m; break;
    case 't': cand = by_t; break;
    case 'w': cand = by_w; break;
    case 'e': cand = by_e; break;
    case 'c': cand = by_c; break;
    case 'f': cand = by_f; break;
    default: return -1;
    }
    for (; *cand >= 0; cand++)
        if (name_is(k, len, NW_ED_NAME[*cand], ED_NAME_LEN[*cand]))
            return *cand;
    return -1;
}

/* ---- the scan ---------------------------------------------------------- */

typedef struct scan {
    const unsigned char *p, *end;
    int newline;   /* a '\n' was skipped between tokens */
} scan;

/* Bytes that end a run of plain string bytes: '"', '\\' and the control
 * bytes, which strict JSON does not allow raw in a string. */
#define C8(x) x, x, x, x, x, x, x, x
static const unsigned char STR_STOP[256] = {
    C8(1), C8(1), C8(1), C8(1),                 /* 0x00-0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, C8(0),              /* 0x20-0x2f: '"' */
    C8(0), C8(0), C8(0), C8(0),                 /* 0x30-0x4f */
    C8(0), 0, 0, 0, 0, 1, 0, 0, 0,              /* 0x50-0x5f: '\\' */
};
#undef C8

static void skip_ws(scan *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->newline |= *s->p == '\n';
        s->p++;
    }
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * The first byte at or after p (before end) that is '"', '\\' or below 0x20,
 * or the last point from which fewer than a step's bytes remain.  Strings
 * are most of an event's bytes, so this is the scanner's inner loop.
 */
#if defined(__SSE2__)
#include <emmintrin.h>

static const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* x <= 0x1F unsigned: max(x, 0x1F) == 0x1F */
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
            _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return p;
}
#else
/* Eight bytes at a time: the lowest byte that is '"', '\\' or below 0x20 is
 * found exactly by the "has zero byte" tests (a borrow can only mark bytes
 * above the first true one). */
static const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | (x - ones * 0x20)) & ~x & high;
        if (hit) {
            /* The lowest marked byte: count trailing zero bits portably. */
            unsigned n = 0;
            while (!(hit & 0x80))
                hit >>= 8, n++;
            return p + n;
        }
        p += 8;
    }
    return p;
}
#endif

/*
 * A string at s->p (a '"').  *str, *len: its raw bytes between the quotes;
 * *escaped: it holds an escape, so the raw bytes are not its value.
 * Surrogate escapes are left to cJSON (it has its own rules for them).
 */
static int scan_string(scan *s, const char **str, size_t *len, int *escaped)
{
    const unsigned char *p = s->p + 1, *end = s->end, *start = p;
    int esc = 0;
    for (;;) {
        p = plain_run(p, end);
        while (p < end && !STR_STOP[*p])
            p++;
        if (p >= end)
            return -1;
        if (*p == '"')
            break;
        if (*p != '\\')
            return -1;   /* a raw control byte */
        esc = 1;
        if (++p >= end)
            return -1;
        switch (*p) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p++;
            break;
        case 'u': {
            if (end - p < 5)
                return -1;
            unsigned v = 0;
            for (int i = 1; i <= 4; i++) {
                int h = hex(p[i]);
                if (h < 0)
                    return -1;
                v = v << 4 | (unsigned)h;
            }
            if (v >= 0xD800 && v <= 0xDFFF)
                return -1;
            p += 5;
            break;
        }
        default:
            return -1;
        }
    }
    *str = (const char *)start;
    *len = (size_t)(p - start);
    *escaped = esc;
    s->p = p + 1;
    return 0;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/*
 * A number at s->p.  If v is not NULL the number is a field's value: only a
 * non-negative integer of at most SCAN_INT_DIGITS digits is taken (into v),
 * anything else is -1.
 */
static int scan_number(scan *s, nw_jval *v)
{
    const unsigned char *p = s->p, *end = s->end, *start = p;
    int neg = 0, plain = 1;
    if (*p == '-') {
        neg = 1;
        if (++p >= end)
            return -1;
    }
    const unsigned char *digits = p;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return -1;
    }
    size_t ndigits = (size_t)(p - digits);
    if (p < end && *p == '.') {
        plain = 0;
        if (++p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p | 0x20) == 'e') {
        plain = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p - start > SCAN_NUMBER_MAX)
        return -1;
    if (v) {
        if (neg || !plain || ndigits > SCAN_INT_DIGITS)
            return -1;
        uint64_t u = 0;
        for (const unsigned char *d = digits; d < p; d++)
            u = u * 10 + (uint64_t)(*d - '0');
        v->type = NW_J_NUMBER;
        v->num = (double)u;
    }
    s->p = p;
    return 0;
}

static int scan_literal(scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* A member's key at s->p and the ':' after it; s->p is left at the value.
 * *escaped: as scan_string gives it. */
static int scan_key(scan *s, const char **k, size_t *klen, int *escaped)
{
    if (s->p >= s->end || *s->p != '"' || scan_string(s, k, klen, escaped))
        return -1;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return -1;
    s->p++;
    skip_ws(s);
    return 0;
}

/* What follows a member or element: 1 if a ',' (s->p left at the next
 * one), 0 if the container's close (s->p left past it), -1 if anything
 * else. */
static int next_member(scan *s, unsigned char close)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        return 1;
    }
    if (*s->p != close)
        return -1;
    s->p++;
    return 0;
}

static int skip_value(scan *s, int depth);

/* An object or array at s->p, validated and skipped. */
static int skip_container(scan *s, int depth)
{
    if (depth > SCAN_MAX_DEPTH)
        return -1;
    int obj = *s->p == '{';
    unsigned char close = obj ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    int more;
    do {
        if (obj) {
            const char *k;
            size_t klen;
            int esc;
            if (scan_key(s, &k, &klen, &esc))
                return -1;
        }
        if (skip_value(s, depth))
            return -1;
    } while ((more = next_member(s, close)) > 0);
    return more;
}

/* Any value at s->p, validated and skipped; depth: of the container it is
 * in. */
static int skip_value(scan *s, int depth)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"': {
        const char *str;
        size_t len;
        int esc;
        return scan_string(s, &str, &len, &esc);
    }
    case '{':
    case '[':
        return skip_container(s, depth + 1);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default: return scan_number(s, NULL);
    }
}

/* A field's value at s->p into *v: 0; 1 if it is null (absent); -1 if it
 * is something the scanner does not take as a value. */
static int read_value(scan *s, nw_jval *v)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"': {
        int esc;
        if (scan_string(s, &v->s, &v->len, &esc) || esc)
            return -1;
        v->type = NW_J_STRING;
        return 0;
    }
    case 't':
        v->type = NW_J_TRUE;
        return scan_literal(s, "true", 4);
    case 'f':
        v->type = NW_J_FALSE;
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4) ? -1 : 1;
    case '{':
    case '[':
        return -1;
    default:
        return scan_number(s, v);
    }
}

enum { IN_SYSTEM, IN_EVENT_DATA };

/* The system or event_data object at s->p, its fields noted in env. */
static int scan_fields(scan *s, int which, nw_envelope *env)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    int more;
    do {
        const char *k;
        size_t klen;
        int esc;
        if (scan_key(s, &k, &klen, &esc) || esc)
            return -1;   /* an escaped key might spell a field's name */
        int slot = which == IN_SYSTEM ? nw_sys_slot(k, klen) : nw_ed_slot(k, klen);
        if (slot < 0) {
            if (skip_value(s, 2))
                return -1;
        } else {
            nw_jval v = {0};
            int rc = read_value(s, &v);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                /* decode.c: the last system field wins, the first of
                 * event_data. */
                if (which == IN_SYSTEM)
                    env->sys[slot] = v;
                else if (env->ed[slot].type == NW_J_ABSENT)
                    env->ed[slot] = v;
            }
        }
    } while ((more = next_member(s, '}')) > 0);
    return more;
}

/* The root object at s->p (a '{'), its fields noted in env. */
static int scan_root(scan *s, nw_envelope *env)
{
    int have_sys = 0, have_data = 0;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}')
        return -1;   /* no system */
    int more;
    do {
        const char *k;
        size_t klen;
        int esc;
        if (scan_key(s, &k, &klen, &esc) || esc)
            return -1;
        /* decode.c takes the first "system" and "event_data" keys. */
        int rc;
        if (!have_sys && NAME_IS(k, klen, "system")) {
            have_sys = 1;
            rc = s->p < s->end && *s->p == '{' ? scan_fields(s, IN_SYSTEM, env) : -1;
        } else if (!have_data && NAME_IS(k, klen, "event_data")) {
            have_data = 1;
            rc = s->p < s->end && *s->p == '{' ? scan_fields(s, IN_EVENT_DATA, env) : -1;
        } else {
            rc = skip_value(s, 1);
        }
        if (rc)
            return -1;
    } while ((more = next_member(s, '}')) > 0);
    return more == 0 && have_sys && have_data ? 0 : -1;
}

int nw_scan_envelope(const char *json, size_t len, nw_envelope *env)
{
    scan s = {(const unsigned char *)json, (const unsigned char *)json + len, 0};
    memset(env, 0, sizeof *env);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || scan_root(&s, env))
        return -1;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

int nw_scan_line_object(const char *text, size_t avail, nw_envelope *env, size_t *used)
{
    scan s = {(const unsigned char *)text, (const unsigned char *)text + avail, 0};
    memset(env, 0, sizeof *env);
    if (avail == 0 || *s.p != '{' || scan_root(&s, env) || s.newline)
        return -1;
    *used = (size_t)(s.p - (const unsigned char *)text);
    return 0;
}
