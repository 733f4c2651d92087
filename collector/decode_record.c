/*
 * decode_record.c -- any record to an nw_event and/or an nw_proc_event
 * (see procevent.h for the shapes and their order).
 *
 * The Kernel-Network decoder runs first, unchanged; only what it rejects
 * as missing_system or unknown_provider is parsed a second time here and
 * shown to the Kernel-Process and Sysmon decoders.  Process events are a
 * few per second against thousands of network events, so their second
 * parse costs nothing, and the hot path stays exactly as it is.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode_int.h"

#define KPROC_PROVIDER "Microsoft-Windows-Kernel-Process"
#define SYSMON_PROVIDER "Microsoft-Windows-Sysmon"

/* FILETIME of the Unix epoch: 100 ns ticks from 1601-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000ULL

nw_reject nw__dfail(const nw__detail *d, nw_reject r, const char *fmt, ...)
{
    if (d->buf && d->cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->buf, d->cap, fmt, ap);
        va_end(ap);
    }
    return r;
}

const cJSON *nw__get_ci(const cJSON *o, const char *k)
{
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next)
        if (c->string && strcasecmp(c->string, k) == 0 && !cJSON_IsNull(c))
            return c;
    return NULL;
}

const cJSON *nw__get_cs(const cJSON *o, const char *k)
{
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next)
        if (c->string && strcmp(c->string, k) == 0 && !cJSON_IsNull(c))
            return c;
    return NULL;
}

int nw__text_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i == n || s[i] < '0' || s[i] > '9')
        return -1;
    uint64_t u = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (u > (max - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    while (i < n && s[i] == ' ')
        i++;
    if (i != n)
        return -1;
    *out = u;
    return 0;
}

int nw__val_uint(const cJSON *v, uint64_t max, uint64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (!(x >= 0) || x > (double)max || (double)(uint64_t)x != x)
            return -1;
        *out = (uint64_t)x;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring)
        return nw__text_uint(v->valuestring, strlen(v->valuestring), max, out);
    return -1;
}

void nw__copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return;
    if (n < cap) {
        memcpy(dst, s, n);
        dst[n] = '\0';
        return;
    }
    size_t keep = cap > 4 ? cap - 4 : 0;   /* room for "..." and the NUL */
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(dst, s, keep);
    memcpy(dst + keep, "...", cap > 4 ? 4 : 1);
    if (cap <= 4)
        dst[0] = '\0';
}

void nw__copy_host(char *host, const char *h, const char *default_host)
{
    if (!h || !h[0])
        h = default_host && default_host[0] ? default_host : "unknown";
    nw__copy_cut(host, NW_HOST_MAX, h, strlen(h));
}

int nw__val_time(const cJSON *v, nw_time *out)
{
    uint64_t ft;
    if (nw__val_uint(v, UINT64_MAX, &ft) == 0) {
        if (ft < FILETIME_UNIX_EPOCH)
            return -1;
        *out = (nw_time)(ft - FILETIME_UNIX_EPOCH);
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return -1;
    return nw_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), out);
}

void nw__proc_event_link(nw_proc_event *pe)
{
    nw_process *p = &pe->p;
    p->host = pe->host;
    p->image = pe->image[0] ? pe->image : NULL;
    p->parent_image = pe->parent_image[0] ? pe->parent_image : NULL;
    p->user = pe->user[0] ? pe->user : NULL;
    p->guid = pe->guid[0] ? pe->guid : NULL;
    p->command_line = pe->command_line[0] ? pe->command_line : NULL;
}

nw_proc_event *nw_proc_event_copy(const nw_proc_event *pe)
{
    nw_proc_event *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    memcpy(c, pe, sizeof *c);
    nw__proc_event_link(c);
    return c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int hex16(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

int nw_sysmon_guid_time(const char *g, nw_time *out)
{
    /* {xxxxxxxx-LLLL-HHHH-xxxx-xxxxxxxxxxxx} */
    if (!g || strlen(g) != 38 || g[0] != '{' || g[9] != '-' || g[14] != '-' ||
        g[19] != '-' || g[24] != '-' || g[37] != '}')
        return -1;
    unsigned lo, hi;
    if (hex16(g + 10, &lo) || hex16(g + 15, &hi))
        return -1;
    uint64_t secs = (uint64_t)hi << 16 | lo;
    if (secs == 0)
        return -1;
    *out = (nw_time)secs * NW_TICKS_PER_SEC;
    return 0;
}

/* The provider named in system, or NULL. */
static const char *provider_of(const cJSON *sys)
{
    const cJSON *p = nw__get_ci(sys, "provider");
    if (!p)
        p = nw__get_ci(sys, "provider_name");
    return cJSON_IsString(p) ? p->valuestring : NULL;
}

/* 1 if root (flat, no "system") looks like an export of a Windows event
 * log record: EventID at the top, or a winlog object. */
static int looks_flat_eventlog(const cJSON *root)
{
    return nw__get_cs(root, "EventID") != NULL || cJSON_IsObject(nw__get_ci(root, "winlog"));
}

static nw_reject decode_other(const cJSON *root, const char *default_host, nw_event *ev,
                              int *has_ev, nw_proc_event **proc, nw_reject first,
                              const nw__detail *d)
{
    const cJSON *sys, *data;
    nw__root_parts(root, &sys, &data);
    int kproc = 0;
    if (cJSON_IsObject(sys)) {
        const char *prov = provider_of(sys);
        if (!prov)
            return first;
        if (strcasecmp(prov, KPROC_PROVIDER) == 0)
            kproc = 1;
        else if (strcasecmp(prov, SYSMON_PROVIDER) != 0)
            return first;
        if (!cJSON_IsObject(data))
            return nw__dfail(d, NW_REJ_NO_EVENT_DATA, data ? "event_data is not an object"
                                                           : "event_data is missing");
    } else if (sys || !looks_flat_eventlog(root)) {
        return first;
    }

    nw_proc_event *pe = calloc(1, sizeof *pe);
    if (!pe)
        /* No reason fits ENOMEM better: the event is kept in the dead
         * letters with this sentence. */
        return nw__dfail(d, NW_REJ_TOO_LARGE, "out of memory for a process event");
    int want_proc = 1;
    nw_reject r;
    if (kproc)
        r = nw__decode_kproc(sys, data, default_host, pe, d);
    else
        r = nw__decode_sysmon(root, cJSON_IsObject(sys) ? sys : NULL, data, default_host,
                              ev, has_ev, pe, &want_proc, d);
    if (r != NW_ACCEPTED || !want_proc) {
        free(pe);
        return r;
    }
    nw__proc_event_link(pe);
    *proc = pe;
    return NW_ACCEPTED;
}

nw_reject nw_decode_record(const char *json, size_t len, const char *default_host,
                           nw_event *ev, int *has_ev, nw_proc_event **proc,
                           char *detail, size_t detail_cap)
{
    *has_ev = 0;
    *proc = NULL;
    nw_reject r = nw_decode_event(json, len, default_host, ev, detail, detail_cap);
    if (r == NW_ACCEPTED) {
        *has_ev = 1;
        return r;
    }
    if (r != NW_REJ_NO_SYSTEM && r != NW_REJ_UNKNOWN_PROVIDER)
        return r;

    /* Only texts that parsed can get here (missing_system/unknown_provider
     * come after the parse), and cJSON's hooks fall back to malloc outside
     * nw_decode_event. */
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return r;
    nw__detail d = {detail, detail_cap};
    /* decode_other returns r untouched (detail and all) for a text that is
     * none of its shapes either. */
    nw_reject r2 = decode_other(root, default_host, ev, has_ev, proc, r, &d);
    cJSON_Delete(root);
    if (r2 != NW_ACCEPTED)
        *has_ev = 0;
    return r2;
}
