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

#include "decode_int.h"
#include "scan.h"

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

/* ---- values ---------------------------------------------------------- */

/* A cJSON node as a field value (scan.h); NULL and JSON null are absent. */
static nw_jval jval_of(const cJSON *c)
{
    nw_jval v = {0};
    if (!c || cJSON_IsNull(c))
        return v;
    if (cJSON_IsString(c)) {
        if (c->valuestring) {
            v.type = NW_J_STRING;
            v.s = c->valuestring;
            v.len = strlen(c->valuestring);
        } else {
            v.type = NW_J_OBJECT;   /* cannot happen after a parse; not a string */
        }
    } else if (cJSON_IsNumber(c)) {
        v.type = NW_J_NUMBER;
        v.num = c->valuedouble;
    } else if (cJSON_IsTrue(c)) {
        v.type = NW_J_TRUE;
    } else if (cJSON_IsFalse(c)) {
        v.type = NW_J_FALSE;
    } else if (cJSON_IsArray(c)) {
        v.type = NW_J_ARRAY;
    } else {
        v.type = NW_J_OBJECT;
    }
    return v;
}

enum num_rc { NUM_OK = 0, NUM_NAN = -1, NUM_RANGE = -2 };

/*
 * Reads v as an unsigned integer no greater than max: a JSON number with
 * no fraction, or a string of decimal digits that ETW pads with spaces
 * ("    4168").  NUM_NAN if it is not one, NUM_RANGE if negative or > max.
 */
static int get_uint(const nw_jval *v, uint64_t max, uint64_t *out)
{
    if (v->type == NW_J_NUMBER) {
        double d = v->num;
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
    if (v->type != NW_J_STRING)
        return NUM_NAN;
    const char *s = v->s, *end = v->s + v->len;
    while (s < end && *s == ' ')
        s++;
    int neg = 0;
    if (s < end && *s == '-') {
        neg = 1;
        s++;
    }
    if (s == end || *s < '0' || *s > '9')
        return NUM_NAN;
    uint64_t u = 0;
    int over = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (!over) {
            u = u * 10 + (uint64_t)(*s - '0');
            over = u > max;
        }
    }
    while (s < end && *s == ' ')
        s++;
    if (s != end)
        return NUM_NAN;
    if (over || (neg && u != 0))
        return NUM_RANGE;
    *out = u;
    return NUM_OK;
}

/* A short quotation of v for a detail sentence: "\"abc\"", 12, null... */
static void describe(const nw_jval *v, char *buf, size_t cap)
{
    switch (v->type) {
    case NW_J_STRING:
        snprintf(buf, cap, "\"%.*s\"",
                 (int)(v->len < DETAIL_VALUE_MAX ? v->len : DETAIL_VALUE_MAX), v->s);
        break;
    case NW_J_NUMBER: snprintf(buf, cap, "%.17g", v->num); break;
    case NW_J_TRUE: snprintf(buf, cap, "true"); break;
    case NW_J_FALSE: snprintf(buf, cap, "false"); break;
    case NW_J_OBJECT: snprintf(buf, cap, "an object"); break;
    case NW_J_ARRAY: snprintf(buf, cap, "an array"); break;
    case NW_J_ABSENT: snprintf(buf, cap, "null"); break;
    }
}

/* Where decode writes its detail sentence (NULL: nowhere). */
typedef struct detail_out {
    char *buf;
    size_t cap;
} detail_out;

/* Rejects with reason r, naming the field and what is wrong with it (v
 * NULL or absent: the field is not there). */
static nw_reject fail_field(const detail_out *d, nw_reject r, const char *where,
                            const char *name, const nw_jval *v, const char *what)
{
    if (d->buf && d->cap > 0) {
        char val[DETAIL_VALUE_MAX + 8];
        if (v && v->type != NW_J_ABSENT) {
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
static nw_reject read_uint(const nw_jval *ed, int f, uint64_t max, int required,
                           nw_reject r, const detail_out *d, uint64_t *out)
{
    const nw_jval *v = &ed[f];
    if (v->type == NW_J_ABSENT) {
        if (required)
            return fail_field(d, r, "event_data", NW_ED_NAME[f], NULL, "is missing");
        return NW_ACCEPTED;
    }
    int rc = get_uint(v, max, out);
    if (rc == NUM_NAN)
        return fail_field(d, r, "event_data", NW_ED_NAME[f], v, "is not a number");
    if (rc == NUM_RANGE) {
        const char *what = max == UINT16_LIMIT ? "is out of range 0..65535"
                                               : "is out of range 0..4294967295";
        return fail_field(d, r, "event_data", NW_ED_NAME[f], v, what);
    }
    return NW_ACCEPTED;
}

/* Shorthands for reading into narrower fields of nw_event. */
static nw_reject read_u16(const nw_jval *ed, int f, int required, nw_reject r,
                          const detail_out *d, uint16_t *out)
{
    uint64_t u = 0;
    nw_reject rc = read_uint(ed, f, UINT16_LIMIT, required, r, d, &u);
    *out = (uint16_t)u;
    return rc;
}

static nw_reject read_u32(const nw_jval *ed, int f, int required, nw_reject r,
                          const detail_out *d, uint32_t *out)
{
    uint64_t u = 0;
    nw_reject rc = read_uint(ed, f, UINT32_LIMIT, required, r, d, &u);
    *out = (uint32_t)u;
    return rc;
}

static nw_reject read_addr(const nw_jval *ed, int f, int version,
                           const detail_out *d, nw_addr *out)
{
    const nw_jval *v = &ed[f];
    if (v->type == NW_J_ABSENT)
        return fail_field(d, NW_REJ_BAD_ADDRESS, "event_data", NW_ED_NAME[f], NULL,
                          "is missing");
    if (v->type != NW_J_STRING || nw_addr_parse(v->s, v->len, version, out, NULL))
        return fail_field(d, NW_REJ_BAD_ADDRESS, "event_data", NW_ED_NAME[f], v,
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

static nw_reject read_host(const nw_jval *computer, const char *default_host,
                           const detail_out *d, char *host)
{
    if (computer->type != NW_J_ABSENT && computer->type != NW_J_STRING)
        return fail_field(d, NW_REJ_BAD_FIELD, "system", "computer", computer,
                          "is not a string");
    if (computer->type == NW_J_STRING && computer->len > 0) {
        size_t n = computer->len;
        if (n > NW_HOST_MAX - 1)
            return fail_msg(d, NW_REJ_BAD_FIELD,
                            "system.computer is longer than 255 bytes");
        memcpy(host, computer->s, n);
        host[n] = '\0';
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
static nw_reject decode_data(const nw_jval *ed, const detail_out *d, nw_event *ev)
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
        int any = ed[F_RCVWIN].type != NW_J_ABSENT;
        for (size_t i = 0; i < sizeof opt16 / sizeof opt16[0]; i++) {
            any |= ed[opt16[i]].type != NW_J_ABSENT;
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
        ev->has_times = ed[F_STARTIME].type != NW_J_ABSENT ||
                        ed[F_ENDTIME].type != NW_J_ABSENT;
    }
    return NW_ACCEPTED;
}

/* Decodes the envelope's fields, wherever they were found (cJSON or the
 * scanner): the provider, the id, the time, the host, then event_data. */
static nw_reject decode_fields(const nw_envelope *env, const char *default_host,
                               const detail_out *d, nw_event *ev)
{
    const nw_jval *provider = &env->sys[NW_SYS_PROVIDER];
    const nw_jval *event_id = &env->sys[NW_SYS_EVENT_ID];
    const nw_jval *time_created = &env->sys[NW_SYS_TIME_CREATED];

    if (provider->type != NW_J_STRING ||
        provider->len != sizeof PROVIDER_NAME - 1 ||
        strncasecmp(provider->s, PROVIDER_NAME, provider->len) != 0)
        return fail_field(d, NW_REJ_UNKNOWN_PROVIDER, "system", "provider", provider,
                          provider->type != NW_J_ABSENT ? "is not " PROVIDER_NAME
                                                        : "is missing");

    uint64_t id = 0;
    if (event_id->type == NW_J_ABSENT)
        return fail_field(d, NW_REJ_UNKNOWN_EVENT_ID, "system", "event_id", NULL,
                          "is missing");
    if (get_uint(event_id, ID_MAX, &id) != NUM_OK || !ID_TABLE[id].valid)
        return fail_field(d, NW_REJ_UNKNOWN_EVENT_ID, "system", "event_id", event_id,
                          "is not an event of the provider");

    memset(ev, 0, sizeof *ev);
    ev->event_id = (uint16_t)id;
    ev->kind = ID_TABLE[id].kind;
    ev->proto = ID_TABLE[id].proto;
    ev->ip_version = ID_TABLE[id].ip_version;

    if (time_created->type == NW_J_ABSENT)
        return fail_field(d, NW_REJ_BAD_TIME, "system", "time_created", NULL,
                          "is missing");
    if (time_created->type != NW_J_STRING ||
        nw_time_parse_rfc3339(time_created->s, time_created->len, &ev->time))
        return fail_field(d, NW_REJ_BAD_TIME, "system", "time_created", time_created,
                          "is not an RFC 3339 time");

    nw_reject r = read_host(&env->sys[NW_SYS_COMPUTER], default_host, d, ev->host);
    if (r)
        return r;
    return decode_data(env->ed, d, ev);
}

void nw__root_parts(const cJSON *root, const cJSON **sys, const cJSON **data)
{
    *sys = *data = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string)
            continue;
        if (!*sys && strcasecmp(c->string, "system") == 0)
            *sys = c;
        else if (!*data && strcasecmp(c->string, "event_data") == 0)
            *data = c;
    }
}

/* Decodes a parsed root; the caller deletes it. */
static nw_reject decode_root(const cJSON *root, const char *default_host,
                             const detail_out *d, nw_event *ev)
{
    if (!cJSON_IsObject(root))
        return fail_msg(d, NW_REJ_NOT_OBJECT, "the event is not a JSON object");

    const cJSON *sys, *data;
    nw__root_parts(root, &sys, &data);
    if (!sys || !cJSON_IsObject(sys))
        return fail_msg(d, NW_REJ_NO_SYSTEM, sys ? "system is not an object"
                                                 : "system is missing");
    if (!data || !cJSON_IsObject(data))
        return fail_msg(d, NW_REJ_NO_EVENT_DATA, data ? "event_data is not an object"
                                                      : "event_data is missing");

    /* Each object is walked once, every child sorted into its slot: looking
     * each field up by name would cost more than the parse.  In system the
     * last of a name wins, in event_data the first; null is absent. */
    nw_envelope env;
    memset(&env, 0, sizeof env);
    for (const cJSON *c = sys->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c))
            continue;
        int f = nw_sys_slot(c->string, strlen(c->string));
        if (f >= 0)
            env.sys[f] = jval_of(c);
    }
    for (const cJSON *c = data->child; c; c = c->next) {
        if (!c->string || cJSON_IsNull(c))
            continue;
        int f = nw_ed_slot(c->string, strlen(c->string));
        if (f >= 0 && env.ed[f].type == NW_J_ABSENT)
            env.ed[f] = jval_of(c);
    }
    return decode_fields(&env, default_host, d, ev);
}

/* The cJSON path: every input, and the only one for text the scanner
 * leaves alone. */
static nw_reject decode_cjson(const char *json, size_t len, const char *default_host,
                              nw_event *out, const detail_out *dp)
{
    detail_out d = *dp;
    char *detail = d.buf;
    size_t detail_cap = d.cap;

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

nw_reject nw_decode_event_cjson(const char *json, size_t len, const char *default_host,
                                nw_event *out, char *detail, size_t detail_cap)
{
    detail_out d = {detail, detail_cap};
    if (detail && detail_cap > 0)
        detail[0] = '\0';
    if (len > NW_EVENT_MAX_BYTES)
        return nw_decode_event(json, len, default_host, out, detail, detail_cap);
    return decode_cjson(json, len, default_host, out, &d);
}

nw_reject nw_decode_scanned(const nw_envelope *env, const char *default_host,
                            nw_event *out)
{
    static const detail_out quiet = {NULL, 0};
    return decode_fields(env, default_host, &quiet, out);
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

    /* The fast path: the scanner finds the fields of a plain event.  An
     * event it does not understand, or one these fields reject, is decoded
     * again through cJSON, which then says why (scan.h). */
    nw_envelope env;
    if (nw_scan_envelope(json, len, &env) == 0) {
        static const detail_out quiet = {NULL, 0};
        if (decode_fields(&env, default_host, &quiet, out) == NW_ACCEPTED)
            return NW_ACCEPTED;
    }
    return decode_cjson(json, len, default_host, out, &d);
}
