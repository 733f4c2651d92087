/*
 * decode.c -- one Microsoft-Windows-Kernel-Network JSON event to an nw_event
 * (see decode.h for the envelope and the local/remote rule).
 *
 * Speed: cJSON looks a key up by walking the object's children with a
 * string compare each time; with ~20 keys that would cost more than the
 * parse.  Instead each of "system" and "event_data" is walked once and
 * every child is sorted into a slot by its name (first letter, then a
 * compare within a handful of candidates).  Nothing is allocated here
 * beyond what cJSON allocates, and the detail sentence is only formatted
 * on a rejection.
 *
 * cJSON allocates every node and string with malloc and frees each one in
 * cJSON_Delete: ~80 malloc/free pairs per event, a third of the decode time.
 * So nw_decode_event parses into an arena on its own stack: cJSON's hooks
 * (installed once, process-wide) take memory from the calling thread's
 * current arena, bump-pointer style, and freeing arena memory is a no-op;
 * the whole arena goes when the call returns.  Outside nw_decode_event no
 * arena is current and the hooks are plain malloc/free, so any other cJSON
 * user in the process sees no difference -- as long as nobody else calls
 * cJSON_InitHooks.  An event bigger than the arena spills over to malloc.
 *
 * Choices the header leaves open:
 *   - Field names are matched case-insensitively ("pid" is "PID").
 *   - system.computer longer than NW_HOST_MAX - 1 bytes is rejected
 *     (bad_field) rather than cut, so that two long names can never merge
 *     into one host.  default_host, the operator's own option, is cut at a
 *     UTF-8 character boundary instead.
 *   - A JSON null counts as absent.
 *   - Trailing non-whitespace after the object is bad_json; text that ends
 *     inside the object is truncated.
 */
#include "netwho/decode.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROVIDER_NAME "Microsoft-Windows-Kernel-Network"

/* Longest piece of an offending value quoted in a detail sentence. */
#define DETAIL_VALUE_MAX 40

#define UINT16_LIMIT 65535u
#define UINT32_LIMIT 4294967295u

/* Stack arena for one parse.  A real event's tree is ~5 KiB (about 40
 * nodes of 64 bytes plus their strings); pretty or odd events spill over. */
#define DECODE_ARENA_BYTES (16 * 1024)
#define ARENA_ALIGN 16

/* ---- cJSON allocation ------------------------------------------------- */

typedef struct arena {
    char *base;
    size_t used, cap;
} arena;

/* The arena of the nw_decode_event running on this thread, or NULL. */
static _Thread_local arena *cur_arena;

static void *arena_malloc(size_t n)
{
    arena *a = cur_arena;
    if (a) {
        size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (need >= n && need <= a->cap - a->used) {
            void *p = a->base + a->used;
            a->used += need;
            return p;
        }
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    arena *a = cur_arena;
    uintptr_t lo = a ? (uintptr_t)a->base : 0, at = (uintptr_t)p;
    if (a && at >= lo && at - lo < a->cap)
        return;   /* goes with the arena */
    free(p);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
    cJSON_Hooks h = {arena_malloc, arena_free};
    cJSON_InitHooks(&h);
}

/* ---- event ids ------------------------------------------------------- */

typedef struct id_info {
    uint8_t valid, kind, proto, ip_version;
} id_info;

#define ID_MAX 59
#define TCP4(k) {1, (k), NW_PROTO_TCP, 4}
#define TCP6(k) {1, (k), NW_PROTO_TCP, 6}
#define UDP4(k) {1, (k), NW_PROTO_UDP, 4}
#define UDP6(k) {1, (k), NW_PROTO_UDP, 6}

/* The provider's 22 event ids; 33 does not exist. */
static const id_info ID_TABLE[ID_MAX + 1] = {
    [10] = TCP4(NW_EV_SEND),       [11] = TCP4(NW_EV_RECV),
    [12] = TCP4(NW_EV_CONNECT),    [13] = TCP4(NW_EV_CLOSE),
    [14] = TCP4(NW_EV_RETRANSMIT), [15] = TCP4(NW_EV_ACCEPT),
    [16] = TCP4(NW_EV_RECONNECT),  [17] = TCP4(NW_EV_FAIL),
    [18] = TCP4(NW_EV_COPY),
    [26] = TCP6(NW_EV_SEND),       [27] = TCP6(NW_EV_RECV),
    [28] = TCP6(NW_EV_CONNECT),    [29] = TCP6(NW_EV_CLOSE),
    [30] = TCP6(NW_EV_RETRANSMIT), [31] = TCP6(NW_EV_ACCEPT),
    [32] = TCP6(NW_EV_RECONNECT),  [34] = TCP6(NW_EV_COPY),
    [42] = UDP4(NW_EV_SEND),       [43] = UDP4(NW_EV_RECV),
    [49] = UDP4(NW_EV_FAIL),
    [58] = UDP6(NW_EV_SEND),       [59] = UDP6(NW_EV_RECV),
};

/* ---- names ----------------------------------------------------------- */

const char *nw_reject_name(nw_reject r)
{
    switch (r) {
    case NW_ACCEPTED: return "accepted";
    case NW_REJ_BAD_JSON: return "bad_json";
    case NW_REJ_TRUNCATED: return "truncated";
    case NW_REJ_TOO_LARGE: return "too_large";
    case NW_REJ_NOT_OBJECT: return "not_object";
    case NW_REJ_NO_SYSTEM: return "missing_system";
    case NW_REJ_NO_EVENT_DATA: return "missing_event_data";
    case NW_REJ_UNKNOWN_PROVIDER: return "unknown_provider";
    case NW_REJ_UNKNOWN_EVENT_ID: return "unknown_event_id";
    case NW_REJ_BAD_TIME: return "bad_time";
    case NW_REJ_BAD_PID: return "bad_pid";
    case NW_REJ_BAD_SIZE: return "bad_size";
    case NW_REJ_BAD_ADDRESS: return "bad_address";
    case NW_REJ_BAD_PORT: return "bad_port";
    case NW_REJ_BAD_FIELD: return "bad_field";
    case NW_REJ__COUNT: break;
    }
    return "unknown";
}

const char *nw_event_kind_name(int kind)
{
    static const char *const names[NW_EV__COUNT] = {
        "send", "recv", "connect", "close", "retransmit",
        "accept", "reconnect", "fail", "copy"};
    if (kind < 0 || kind >= NW_EV__COUNT)
        return "unknown";
    return names[kind];
}

/* ---- field slots ----------------------------------------------------- */

/* The event_data fields read, in slot order. */
enum ed_field {
    F_PID, F_SIZE, F_SADDR, F_DADDR, F_SPORT, F_DPORT,
    F_MSS, F_SACKOPT, F_TSOPT, F_WSOPT, F_RCVWIN, F_RCVWINSCALE, F_SNDWINSCALE,
    F_STARTIME, F_ENDTIME, F_SEQNUM, F_CONNID, F_PROTO, F_FAILURECODE,
    F__COUNT
};

static const char *const FIELD_NAME[F__COUNT] = {
    "PID", "size", "saddr", "daddr", "sport", "dport",
    "mss", "sackopt", "tsopt", "wsopt", "rcvwin", "rcvwinscale", "sndwinscale",
    "startime", "endtime", "seqnum", "connid", "Proto", "FailureCode"};

/* Slot of an event_data key, or -1 if it is not read.  A switch on the
 * first letter leaves at most seven names to compare. */
static int field_slot(const char *k)
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

    switch (k[0] | 0x20) {   /* ASCII lower case */
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
        if (strcasecmp(k, FIELD_NAME[*cand]) == 0)
            return *cand;
    return -1;
}

/* The system fields read. */
typedef struct sys_fields {
    const cJSON *provider, *event_id, *time_created, *computer;
} sys_fields;

static void sort_system(const cJSON *sys, sys_fields *sf)
{
    memset(sf, 0, sizeof *sf);
    for (const cJSON *c = sys->child; c; c = c->next) {
        const char *k = c->string;
        if (!k || cJSON_IsNull(c))
            continue;
        switch (k[0] | 0x20) {
        case 'p':
            if (strcasecmp(k, "provider") == 0)
                sf->provider = c;
            break;
        case 'e':
            if (strcasecmp(k, "event_id") == 0)
                sf->event_id = c;
            break;
        case 't':
            if (strcasecmp(k, "time_created") == 0)
                sf->time_created = c;
            break;
        case 'c':
            if (strcasecmp(k, "computer") == 0)
                sf->computer = c;
            break;
        }
    }
}

/* ---- values ---------------------------------------------------------- */

enum num_rc { NUM_OK = 0, NUM_NAN = -1, NUM_RANGE = -2 };

/*
 * Reads v as an unsigned integer no greater than max: a JSON number with
 * no fraction, or a string of decimal digits that ETW pads with spaces
 * ("    4168").  NUM_NAN if it is not one, NUM_RANGE if negative or > max.
 */
static int get_uint(const cJSON *v, uint64_t max, uint64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != d)
            return NUM_NAN;
        if (d < 0 || d > (double)max)
            return NUM_RANGE;
        uint64_t u = (uint64_t)d;
        if ((double)u != d)
            return NUM_NAN;   /* a fraction */
        *out = u;
        return NUM_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return NUM_NAN;
    const char *s = v->valuestring;
    while (*s == ' ')
        s++;
    int neg = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (*s < '0' || *s > '9')
        return NUM_NAN;
    uint64_t u = 0;
    int over = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (!over) {
            u = u * 10 + (uint64_t)(*s - '0');
            over = u > max;
        }
    }
    while (*s == ' ')
        s++;
    if (*s != '\0')
        return NUM_NAN;
    if (over || (neg && u != 0))
        return NUM_RANGE;
    *out = u;
    return NUM_OK;
}

/* A short quotation of v for a detail sentence: "\"abc\"", 12, null... */
static void describe(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v))
        snprintf(buf, cap, "\"%.*s\"", DETAIL_VALUE_MAX, v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsObject(v))
        snprintf(buf, cap, "an object");
    else if (cJSON_IsArray(v))
        snprintf(buf, cap, "an array");
    else
        snprintf(buf, cap, "null");
}

/* Where decode writes its detail sentence (NULL: nowhere). */
typedef struct detail_out {
    char *buf;
    size_t cap;
} detail_out;

/* Rejects with reason r, naming the field and what is wrong with it. */
static nw_reject fail_field(const detail_out *d, nw_reject r, const char *where,
                            const char *name, const cJSON *v, const char *what)
{
    if (d->buf && d->cap > 0) {
        char val[DETAIL_VALUE_MAX + 8];
        if (v) {
            describe(v, val, sizeof val);
            snprintf(d->buf, d->cap, "%s.%s %s: %s", where, name, what, val);
        } else {
            snprintf(d->buf, d->cap, "%s.%s %s", where, name, what);
        }
    }
    return r;
}

static nw_reject fail_msg(const detail_out *d, nw_reject r, const char *msg)
{
    if (d->buf && d->cap > 0)
        snprintf(d->buf, d->cap, "%s", msg);
    return r;
}

/*
 * Reads event_data field f as an unsigned integer <= max into *out.  An
 * absent field leaves *out alone and is an error only if required.
 * Returns NW_ACCEPTED or r with the detail written.
 */
static nw_reject read_uint(const cJSON *const *ed, int f, uint64_t max, int required,
                           nw_reject r, const detail_out *d, uint64_t *out)
{
    const cJSON *v = ed[f];
    if (!v) {
        if (required)
            return fail_field(d, r, "event_data", FIELD_NAME[f], NULL, "is missing");
        return NW_ACCEPTED;
    }
    int rc = get_uint(v, max, out);
    if (rc == NUM_NAN)
        return fail_field(d, r, "event_data", FIELD_NAME[f], v, "is not a number");
    if (rc == NUM_RANGE) {
        const char *what = max == UINT16_LIMIT ? "is out of range 0..65535"
                                               : "is out of range 0..4294967295";
        return fail_field(d, r, "event_data", FIELD_NAME[f], v, what);
    }
    return NW_ACCEPTED;
}

/* Shorthands for reading into narrower fields of nw_event. */
static nw_reject read_u16(const cJSON *const *ed, int f, int required, nw_reject r,
                          const detail_out *d, uint16_t *out)
{
    uint64_t u = 0;
    nw_reject rc = read_uint(ed, f, UINT16_LIMIT, required, r, d, &u);
    *out = (uint16_t)u;
    return rc;
}

static nw_reject read_u32(const cJSON *const *ed, int f, int required, nw_reject r,
                          const detail_out *d, uint32_t *out)
{
    uint64_t u = 0;
    nw_reject rc = read_uint(ed, f, UINT32_LIMIT, required, r, d, &u);
    *out = (uint32_t)u;
    return rc;
}

static nw_reject read_addr(const cJSON *const *ed, int f, int version,
                           const detail_out *d, nw_addr *out)
{
    const cJSON *v = ed[f];
    if (!v)
        return fail_field(d, NW_REJ_BAD_ADDRESS, "event_data", FIELD_NAME[f], NULL,
                          "is missing");
    if (!cJSON_IsString(v) || !v->valuestring ||
        nw_addr_parse(v->valuestring, strlen(v->valuestring), version, out, NULL))
        return fail_field(d, NW_REJ_BAD_ADDRESS, "event_data", FIELD_NAME[f], v,
                          version == 4 ? "is not an IPv4 address"
                                       : "is not an IPv6 address");
    return NW_ACCEPTED;
}

/* Copies s into host (NW_HOST_MAX), cut at a UTF-8 character boundary. */
static void copy_host_cut(char *host, const char *s)
{
    size_t n = strlen(s);
    if (n > NW_HOST_MAX - 1) {
        n = NW_HOST_MAX - 1;
        /* Back off continuation bytes (10xxxxxx) so no character is split. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(host, s, n);
    host[n] = '\0';
}

static nw_reject read_host(const cJSON *computer, const char *default_host,
                           const detail_out *d, char *host)
{
    if (computer && !cJSON_IsString(computer))
        return fail_field(d, NW_REJ_BAD_FIELD, "system", "computer", computer,
                          "is not a string");
    if (computer && computer->valuestring && computer->valuestring[0]) {
        size_t n = strlen(computer->valuestring);
        if (n > NW_HOST_MAX - 1)
            return fail_msg(d, NW_REJ_BAD_FIELD,
                            "system.computer is longer than 255 bytes");
        memcpy(host, computer->valuestring, n + 1);
        return NW_ACCEPTED;
    }
    copy_host_cut(host, default_host && default_host[0] ? default_host : "unknown");
    return NW_ACCEPTED;
}

/* ---- raw text checks (failure path only) ------------------------------ */

/* 1 if json[0..len) ends inside an object, array or string: a text cut
 * short rather than one that is wrong. */
static int ends_inside(const char *json, size_t len)
{
    size_t depth = 0;
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return in_str || depth > 0;
}

static int only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return 0;
    return 1;
}

/* ---- the event ------------------------------------------------------- */

/* Fills the id-specific part of ev from the sorted event_data fields. */
static nw_reject decode_data(const cJSON *const *ed, const detail_out *d, nw_event *ev)
{
    nw_reject r;
    int kind = ev->kind;

    if (kind == NW_EV_FAIL) {
        /* 17/49 carry no PID and no address: pid 0, addresses all zero. */
        r = read_u16(ed, F_PROTO, 1, NW_REJ_BAD_FIELD, d, &ev->fail_proto);
        if (r)
            return r;
        return read_u16(ed, F_FAILURECODE, 1, NW_REJ_BAD_FIELD, d, &ev->fail_code);
    }

    r = read_u32(ed, F_PID, 1, NW_REJ_BAD_PID, d, &ev->pid);
    if (r)
        return r;
    /* Data events must say how much; the others carry "0" or nothing. */
    int data_kind = kind == NW_EV_SEND || kind == NW_EV_RECV ||
                    kind == NW_EV_RETRANSMIT || kind == NW_EV_COPY;
    r = read_u32(ed, F_SIZE, data_kind, NW_REJ_BAD_SIZE, d, &ev->size);
    if (r)
        return r;

    nw_addr saddr, daddr;
    uint16_t sport = 0, dport = 0;
    if ((r = read_addr(ed, F_SADDR, ev->ip_version, d, &saddr)) ||
        (r = read_addr(ed, F_DADDR, ev->ip_version, d, &daddr)) ||
        (r = read_u16(ed, F_SPORT, 1, NW_REJ_BAD_PORT, d, &sport)) ||
        (r = read_u16(ed, F_DPORT, 1, NW_REJ_BAD_PORT, d, &dport)))
        return r;
    /* decode.h: UDP receives name the sender in saddr, so the local end is
     * daddr; every other event names the local socket in saddr. */
    if (ev->proto == NW_PROTO_UDP && kind == NW_EV_RECV) {
        ev->local_ip = daddr;
        ev->local_port = dport;
        ev->remote_ip = saddr;
        ev->remote_port = sport;
    } else {
        ev->local_ip = saddr;
        ev->local_port = sport;
        ev->remote_ip = daddr;
        ev->remote_port = dport;
    }

    if ((r = read_u32(ed, F_SEQNUM, 0, NW_REJ_BAD_FIELD, d, &ev->seqnum)) ||
        (r = read_u32(ed, F_CONNID, 0, NW_REJ_BAD_FIELD, d, &ev->connid)))
        return r;

    if (kind == NW_EV_CONNECT || kind == NW_EV_ACCEPT) {
        static const int opt16[] = {F_MSS, F_SACKOPT, F_TSOPT, F_WSOPT,
                                    F_RCVWINSCALE, F_SNDWINSCALE};
        uint16_t *dst16[] = {&ev->mss, &ev->sackopt, &ev->tsopt, &ev->wsopt,
                             &ev->rcvwinscale, &ev->sndwinscale};
        int any = ed[F_RCVWIN] != NULL;
        for (size_t i = 0; i < sizeof opt16 / sizeof opt16[0]; i++) {
            any |= ed[opt16[i]] != NULL;
            r = read_u16(ed, opt16[i], 0, NW_REJ_BAD_FIELD, d, dst16[i]);
            if (r)
                return r;
        }
        r = read_u32(ed, F_RCVWIN, 0, NW_REJ_BAD_FIELD, d, &ev->rcvwin);
        if (r)
            return r;
        ev->has_tcp_opts = (uint8_t)any;
    } else if (kind == NW_EV_SEND && ev->proto == NW_PROTO_TCP) {
        if ((r = read_u32(ed, F_STARTIME, 0, NW_REJ_BAD_FIELD, d, &ev->startime)) ||
            (r = read_u32(ed, F_ENDTIME, 0, NW_REJ_BAD_FIELD, d, &ev->endtime)))
            return r;
        ev->has_times = ed[F_STARTIME] != NULL || ed[F_ENDTIME] != NULL;
    }
    return NW_ACCEPTED;
}

/* Decodes a parsed root; the caller deletes it. */
static nw_reject decode_root(const cJSON *root, const char *default_host,
                             const detail_out *d, nw_event *ev)
{
    if (!cJSON_IsObject(root))
        return fail_msg(d, NW_REJ_NOT_OBJECT, "the event is not a JSON object");

    const cJSON *sys = NULL, *data = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string)
            continue;
        if (!sys && strcasecmp(c->string, "system") == 0)
            sys = c;
        else if (!data && strcasecmp(c->string, "event_data") == 0)
            data = c;
    }
    if (!sys || !cJSON_IsObject(sys))
        return fail_msg(d, NW_REJ_NO_SYSTEM, sys ? "system is not an object"
                                                 : "system is missing");
    if (!data || !cJSON_IsObject(data))
        return fail_msg(d, NW_REJ_NO_EVENT_DATA, data ? "event_data is not an object"
                                                      : "event_data is missing");

    sys_fields sf;
    sort_system(sys, &sf);
    if (!sf.provider || !cJSON_IsString(sf.provider) || !sf.provider->valuestring ||
        strcasecmp(sf.provider->valuestring, PROVIDER_NAME) != 0)
        return fail_field(d, NW_REJ_UNKNOWN_PROVIDER, "system", "provider", sf.provider,
                          sf.provider ? "is not " PROVIDER_NAME : "is missing");

    uint64_t id = 0;
    if (!sf.event_id)
        return fail_field(d, NW_REJ_UNKNOWN_EVENT_ID, "system", "event_id", NULL,
                          "is missing");
    if (get_uint(sf.event_id, ID_MAX, &id) != NUM_OK || !ID_TABLE[id].valid)
        return fail_field(d, NW_REJ_UNKNOWN_EVENT_ID, "system", "event_id", sf.event_id,
                          "is not an event of the provider");

    memset(ev, 0, sizeof *ev);
    ev->event_id = (uint16_t)id;
    ev->kind = ID_TABLE[id].kind;
    ev->proto = ID_TABLE[id].proto;
    ev->ip_version = ID_TABLE[id].ip_version;

    if (!sf.time_created)
        return fail_field(d, NW_REJ_BAD_TIME, "system", "time_created", NULL,
                          "is missing");
    if (!cJSON_IsString(sf.time_created) || !sf.time_created->valuestring ||
        nw_time_parse_rfc3339(sf.time_created->valuestring,
                              strlen(sf.time_created->valuestring), &ev->time))
        return fail_field(d, NW_REJ_BAD_TIME, "system", "time_created", sf.time_created,
                          "is not an RFC 3339 time");

    nw_reject r = read_host(sf.computer, default_host, d, ev->host);
    if (r)
        return r;

    const cJSON *ed[F__COUNT] = {0};
    for (const cJSON *c = data->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c))
            continue;
        int f = field_slot(c->string);
        if (f >= 0 && !ed[f])
            ed[f] = c;
    }
    return decode_data(ed, d, ev);
}

nw_reject nw_decode_event(const char *json, size_t len, const char *default_host,
                          nw_event *out, char *detail, size_t detail_cap)
{
    detail_out d = {detail, detail_cap};
    if (detail && detail_cap > 0)
        detail[0] = '\0';
    if (len > NW_EVENT_MAX_BYTES) {
        if (detail && detail_cap > 0)
            snprintf(detail, detail_cap, "the event is %zu bytes, over %d", len,
                     NW_EVENT_MAX_BYTES);
        return NW_REJ_TOO_LARGE;
    }

    pthread_once(&hooks_once, install_hooks);
    alignas(ARENA_ALIGN) char space[DECODE_ARENA_BYTES];
    arena ar = {space, 0, sizeof space};
    cur_arena = &ar;

    const char *end = NULL;
    nw_reject r;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        if (ends_inside(json, len)) {
            r = fail_msg(&d, NW_REJ_TRUNCATED, "the JSON text ends inside the event");
        } else {
            r = NW_REJ_BAD_JSON;
            if (detail && detail_cap > 0)
                snprintf(detail, detail_cap, "the event is not valid JSON (at byte %zu)",
                         end && end >= json && end <= json + len ? (size_t)(end - json)
                                                                 : len);
        }
    } else if (end && !only_space(end, json + len)) {
        r = fail_msg(&d, NW_REJ_BAD_JSON, "text follows the event's JSON value");
    } else {
        r = decode_root(root, default_host, &d, out);
    }
    cJSON_Delete(root);   /* frees only what spilled over to malloc */
    cur_arena = NULL;
    return r;
}
