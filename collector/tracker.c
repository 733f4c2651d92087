/*
 * tracker.c -- events to connections (see tracker.h for the rules).
 *
 * Three structures, each bounded:
 *   - a min-heap of pending events ordered by (time, arrival): the reorder
 *     buffer.  An event leaves it when the newest time seen is
 *     reorder_window past it, or when the heap is full;
 *   - a chained hash table of open connections keyed by the 5-tuple, host
 *     and pid;
 *   - three activity lists (TCP open, UDP open, closed-and-lingering), each
 *     in fold order, so that the idle checks only ever look at list heads.
 * Host names are interned with a reference count, so a connection or a
 * pending event costs 4 bytes of host, and a stream of ever-new host names
 * frees them again when their connections end.
 */
#include "netwho/tracker.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TICKS(sec) ((nw_time)(sec) * NW_TICKS_PER_SEC)

/* Ids are taken from the sink in blocks: one catalog write per block. */
#define ID_BLOCK 4096

/* ---------------------------------------------------------------- hosts */

typedef struct host_ent {
    struct host_ent *next;
    uint64_t hash;
    uint32_t refs;
    char name[];
} host_ent;

typedef struct host_table {
    host_ent **slots;
    size_t nslots, count;
} host_table;

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;   /* FNV-1a */
    }
    return h;
}

static int host_table_grow(host_table *ht)
{
    size_t n = ht->nslots ? ht->nslots * 2 : 64;
    host_ent **slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < ht->nslots; i++) {
        host_ent *e = ht->slots[i];
        while (e) {
            host_ent *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(ht->slots);
    ht->slots = slots;
    ht->nslots = n;
    return 0;
}

/* Returns the interned entry for name with one more reference, or NULL. */
static host_ent *host_ref(host_table *ht, const char *name)
{
    size_t len = strlen(name);
    uint64_t h = hash_bytes(name, len, 14695981039346656037ULL);
    if (ht->nslots) {
        for (host_ent *e = ht->slots[h & (ht->nslots - 1)]; e; e = e->next)
            if (e->hash == h && strcmp(e->name, name) == 0) {
                e->refs++;
                return e;
            }
    }
    if (ht->count + 1 > ht->nslots && host_table_grow(ht))
        return NULL;
    host_ent *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->refs = 1;
    memcpy(e->name, name, len + 1);
    e->next = ht->slots[h & (ht->nslots - 1)];
    ht->slots[h & (ht->nslots - 1)] = e;
    ht->count++;
    return e;
}

static void host_unref(host_table *ht, host_ent *e)
{
    if (--e->refs > 0)
        return;
    host_ent **pp = &ht->slots[e->hash & (ht->nslots - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    ht->count--;
    free(e);
}

static void host_table_free(host_table *ht)
{
    for (size_t i = 0; i < ht->nslots; i++) {
        host_ent *e = ht->slots[i];
        while (e) {
            host_ent *next = e->next;
            free(e);
            e = next;
        }
    }
    free(ht->slots);
}

/* ------------------------------------------------------ pending events */

/* Bytes of an nw_event before its 256-byte host text: what a pending event
 * keeps, so the reorder buffer costs ~130 bytes an event, not ~370. */
#define EVENT_CORE offsetof(nw_event, host)

/* An event waiting in the reorder buffer. */
typedef struct pending {
    nw_time time;
    uint64_t seq;         /* arrival order breaks ties of equal times    */
    host_ent *host;
    unsigned char core[EVENT_CORE];
} pending;

static int pending_before(const pending *a, const pending *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

/* ---------------------------------------------------------- connections */

enum { LIST_TCP = 0, LIST_UDP, LIST_CLOSED, LIST__COUNT };

typedef struct tconn {
    struct tconn *hnext;            /* hash chain                          */
    struct tconn *prev, *next;      /* activity list                       */
    uint64_t hash;
    host_ent *host;
    nw_conn c;                      /* c.host is set when written          */
    uint8_t list;                   /* LIST_*                              */
    uint8_t written;                /* a row exists (anchor is fixed)      */
    uint8_t dirty;                  /* changed since last written          */
    nw_time closed_at;              /* fold time of the close (LIST_CLOSED)*/
    /* The transfer bucket being filled. */
    uint8_t has_bucket;
    nw_transfer bucket;
} tconn;

typedef struct tlist {
    tconn *head, *tail;
    size_t count;
} tlist;

struct nw_tracker {
    nw_tracker_opts opts;
    nw_sink sink;
    host_table hosts;

    pending *heap;
    size_t heap_len, heap_cap;
    uint64_t seq;

    tconn **slots;
    size_t nslots, nconns;
    tlist lists[LIST__COUNT];

    nw_time watermark;      /* newest event time fed (or ticked)          */
    nw_time frontier;       /* newest time folded: the tracker's "now"    */
    int64_t next_id, id_end;
    int64_t first_id;       /* first id this tracker took; 0 = none yet   */

    nw_tracker_stats stats;
};

void nw_tracker_opts_default(nw_tracker_opts *o)
{
    o->reorder_window = TICKS(3);
    o->udp_idle = TICKS(60);
    o->tcp_idle = TICKS(300);
    o->bucket = TICKS(1);
    o->max_open = 100000;
    o->max_reorder = 131072;
}

nw_tracker *nw_tracker_new(const nw_tracker_opts *opts, const nw_sink *sink)
{
    nw_tracker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (opts)
        t->opts = *opts;
    else
        nw_tracker_opts_default(&t->opts);
    if (t->opts.max_reorder == 0)
        t->opts.max_reorder = 1;
    if (t->opts.max_open == 0)
        t->opts.max_open = 1;
    t->sink = *sink;
    t->watermark = t->frontier = NW_TIME_MIN;
    t->stats.watermark = NW_TIME_MIN;
    return t;
}

static void list_remove(tlist *l, tconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->count--;
}

static void list_append(tlist *l, tconn *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->count++;
}

/* Moves c to the tail of list (which may be its own). */
static void list_touch(nw_tracker *t, tconn *c, int list)
{
    list_remove(&t->lists[c->list], c);
    c->list = (uint8_t)list;
    list_append(&t->lists[list], c);
}

static uint64_t key_hash(const host_ent *h, const nw_event *ev)
{
    uint64_t x = h->hash;
    x = hash_bytes(ev->local_ip.b, 16, x);
    x = hash_bytes(ev->remote_ip.b, 16, x);
    uint32_t w[3] = {ev->pid, (uint32_t)ev->local_port << 16 | ev->remote_port,
                     (uint32_t)ev->proto << 8 | ev->ip_version};
    x = hash_bytes(w, sizeof w, x);
    return x ^ (x >> 29);
}

static int key_equal(const tconn *c, const host_ent *h, const nw_event *ev)
{
    return c->host == h && c->c.pid == ev->pid && c->c.proto == ev->proto &&
           c->c.ip_version == ev->ip_version && c->c.local_port == ev->local_port &&
           c->c.remote_port == ev->remote_port &&
           memcmp(c->c.local_ip.b, ev->local_ip.b, 16) == 0 &&
           memcmp(c->c.remote_ip.b, ev->remote_ip.b, 16) == 0;
}

static int table_grow(nw_tracker *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 1024;
    tconn **slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->nslots; i++) {
        tconn *c = t->slots[i];
        while (c) {
            tconn *next = c->hnext;
            c->hnext = slots[c->hash & (n - 1)];
            slots[c->hash & (n - 1)] = c;
            c = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

static tconn *table_find(nw_tracker *t, uint64_t h, const host_ent *host,
                         const nw_event *ev)
{
    if (!t->nslots)
        return NULL;
    for (tconn *c = t->slots[h & (t->nslots - 1)]; c; c = c->hnext)
        if (c->hash == h && key_equal(c, host, ev))
            return c;
    return NULL;
}

static void table_unlink(nw_tracker *t, tconn *c)
{
    tconn **pp = &t->slots[c->hash & (t->nslots - 1)];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    t->nconns--;
}

/* ------------------------------------------------------------- output */

static nw_status emit_bucket(nw_tracker *t, tconn *c)
{
    if (!c->has_bucket)
        return NW_OK;
    c->has_bucket = 0;
    c->bucket.conn_id = c->c.id;
    return t->sink.transfer ? t->sink.transfer(t->sink.ctx, &c->bucket) : NW_OK;
}

/* Writes c (and its open bucket) to the sink. */
static nw_status emit_conn(nw_tracker *t, tconn *c)
{
    nw_status st = emit_bucket(t, c);
    if (st != NW_OK)
        return st;
    if (!c->written) {
        c->c.anchor = c->c.first_seen;
        c->written = 1;
    }
    c->c.host = c->host->name;
    c->dirty = 0;
    return t->sink.conn ? t->sink.conn(t->sink.ctx, &c->c) : NW_OK;
}

/* Writes c if it changed, unlinks and frees it. */
static nw_status retire_conn(nw_tracker *t, tconn *c)
{
    nw_status st = NW_OK;
    if (c->dirty || c->has_bucket)
        st = emit_conn(t, c);
    table_unlink(t, c);
    list_remove(&t->lists[c->list], c);
    host_unref(&t->hosts, c->host);
    free(c);
    t->stats.open = t->nconns;
    return st;
}

/* Ends the connections whose time is up at frontier `now`:
 * closed ones after their linger, UDP flows after udp_idle, open TCP after
 * tcp_idle, and the least recently active ones beyond max_open. */
static nw_status expire(nw_tracker *t, nw_time now)
{
    nw_status st = NW_OK;
    tconn *c;
    while (st == NW_OK && (c = t->lists[LIST_CLOSED].head) &&
           now - c->closed_at >= t->opts.reorder_window)
        st = retire_conn(t, c);
    while (st == NW_OK && (c = t->lists[LIST_UDP].head) &&
           now - c->c.last_seen >= t->opts.udp_idle) {
        c->c.state = NW_STATE_CLOSED;
        c->dirty = 1;
        st = retire_conn(t, c);
    }
    while (st == NW_OK && (c = t->lists[LIST_TCP].head) &&
           now - c->c.last_seen >= t->opts.tcp_idle) {
        t->stats.evicted_idle++;
        st = retire_conn(t, c);
    }
    while (st == NW_OK && t->nconns > t->opts.max_open) {
        /* The oldest head of the three lists goes first. */
        tconn *victim = NULL;
        for (int l = 0; l < LIST__COUNT; l++) {
            tconn *h = t->lists[l].head;
            if (h && (!victim || h->c.last_seen < victim->c.last_seen))
                victim = h;
        }
        t->stats.evicted_full++;
        st = retire_conn(t, victim);
    }
    return st;
}

/* ------------------------------------------------------------ folding */

static int64_t take_id(nw_tracker *t)
{
    if (t->next_id >= t->id_end) {
        int64_t first = t->sink.reserve_ids ? t->sink.reserve_ids(t->sink.ctx, ID_BLOCK)
                                            : (t->id_end > 0 ? t->id_end : 1);
        if (first <= 0)
            return -1;
        t->next_id = first;
        t->id_end = first + ID_BLOCK;
        if (t->first_id == 0)
            t->first_id = first;
    }
    return t->next_id++;
}

static void copy_tcp_opts(nw_conn *c, const nw_event *ev)
{
    /* A connect without options (a Sysmon 3, or a kernel event whose
     * option fields are all absent) says nothing about them: null. */
    if (!ev->has_tcp_opts)
        return;
    c->has_tcp_opts = 1;
    c->mss = ev->mss;
    c->sackopt = ev->sackopt;
    c->tsopt = ev->tsopt;
    c->wsopt = ev->wsopt;
    c->rcvwin = ev->rcvwin;
    c->rcvwinscale = ev->rcvwinscale;
    c->sndwinscale = ev->sndwinscale;
}

static int is_data(int kind)
{
    return kind == NW_EV_SEND || kind == NW_EV_RECV || kind == NW_EV_RETRANSMIT ||
           kind == NW_EV_COPY;
}

static tconn *new_conn(nw_tracker *t, uint64_t h, host_ent *host, const nw_event *ev)
{
    if (t->nconns + 1 > t->nslots && table_grow(t))
        return NULL;
    tconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->hash = h;
    c->host = host;
    host->refs++;
    c->c.pid = ev->pid;
    c->c.proto = ev->proto;
    c->c.ip_version = ev->ip_version;
    c->c.local_ip = ev->local_ip;
    c->c.remote_ip = ev->remote_ip;
    c->c.local_port = ev->local_port;
    c->c.remote_port = ev->remote_port;
    c->c.first_seen = c->c.last_seen = ev->time;
    c->list = ev->proto == NW_PROTO_UDP ? LIST_UDP : LIST_TCP;
    list_append(&t->lists[c->list], c);
    c->hnext = t->slots[h & (t->nslots - 1)];
    t->slots[h & (t->nslots - 1)] = c;
    t->nconns++;
    t->stats.open = t->nconns;
    return c;
}

/* Starts a connection for ev, continuing a stored one where the sink has it. */
static nw_status open_conn(nw_tracker *t, uint64_t h, host_ent *host,
                           const nw_event *ev, tconn **out)
{
    tconn *c = new_conn(t, h, host, ev);
    if (!c)
        return NW_ERR_NOMEM;
    *out = c;
    if (ev->kind != NW_EV_CONNECT && ev->kind != NW_EV_ACCEPT && t->sink.resume) {
        /* A UDP gap of exactly udp_idle already ends the flow (expire uses
         * >=), so only a flow seen strictly later may continue. */
        nw_time since = ev->proto == NW_PROTO_UDP ? ev->time - t->opts.udp_idle + 1
                                                  : ev->time - NW_TCP_RESUME_HORIZON;
        nw_conn key = c->c, prev;
        key.host = host->name;
        int r = t->sink.resume(t->sink.ctx, &key, since, &prev);
        if (r < 0)
            return NW_ERR_SQL;
        if (r > 0) {
            /* Keep our key (and interned host); take the stored rest. */
            c->c = prev;
            c->c.host = NULL;
            c->c.pid = ev->pid;
            c->written = 1;
            t->stats.resumed++;
            /* Ids grow across ingests, so an id below the first this
             * tracker took was made by an earlier ingest: a connection new
             * to this run's count.  One this run evicted is not. */
            if (t->first_id == 0 || c->c.id < t->first_id)
                t->stats.connections++;
            return NW_OK;
        }
    }
    c->c.id = take_id(t);
    if (c->c.id <= 0)
        return NW_ERR_IO;
    t->stats.connections++;
    /* Connect and accept set their own direction and state in fold(). */
    c->c.state = NW_STATE_ESTABLISHED;
    if (ev->proto == NW_PROTO_UDP) {
        c->c.direction = ev->kind == NW_EV_RECV ? NW_DIR_INBOUND : NW_DIR_OUTBOUND;
    } else if (ev->kind == NW_EV_RECONNECT) {
        /* A retry whose connect we missed: still only an attempt. */
        c->c.direction = NW_DIR_OUTBOUND;
        c->c.state = NW_STATE_ATTEMPTED;
    }
    return NW_OK;
}

/* Adds a data event to c's transfer buckets. */
static nw_status add_transfer(nw_tracker *t, tconn *c, const nw_event *ev)
{
    nw_time b = t->opts.bucket > 0
                    ? ev->time - ((ev->time % t->opts.bucket) + t->opts.bucket) % t->opts.bucket
                    : ev->time;
    if (c->has_bucket && c->bucket.time != b) {
        /* A late event for an earlier bucket is written on its own: the store
         * adds it to that bucket's row. */
        if (b < c->bucket.time) {
            nw_transfer late = {.conn_id = c->c.id, .time = b};
            if (ev->kind == NW_EV_SEND) {
                late.bytes_sent = ev->size;
                late.send_events = 1;
            } else if (ev->kind == NW_EV_RECV) {
                late.bytes_received = ev->size;
                late.receive_events = 1;
            } else {
                late.bytes_retransmitted = ev->size;
                late.retransmit_events = 1;
            }
            return t->sink.transfer ? t->sink.transfer(t->sink.ctx, &late) : NW_OK;
        }
        nw_status st = emit_bucket(t, c);
        if (st != NW_OK)
            return st;
    }
    if (!c->has_bucket) {
        memset(&c->bucket, 0, sizeof c->bucket);
        c->bucket.time = b;
        c->has_bucket = 1;
    }
    if (ev->kind == NW_EV_SEND) {
        c->bucket.bytes_sent += ev->size;
        c->bucket.send_events++;
    } else if (ev->kind == NW_EV_RECV) {
        c->bucket.bytes_received += ev->size;
        c->bucket.receive_events++;
    } else {
        c->bucket.bytes_retransmitted += ev->size;
        c->bucket.retransmit_events++;
    }
    return NW_OK;
}

static nw_status fold(nw_tracker *t, const pending *p)
{
    nw_event evbuf;
    memcpy(&evbuf, p->core, EVENT_CORE);
    const nw_event *ev = &evbuf;
    nw_status st;
    t->stats.events++;
    if (ev->time < t->frontier)
        t->stats.late_events++;
    else
        t->frontier = ev->time;

    st = expire(t, t->frontier);
    if (st != NW_OK)
        return st;

    if (ev->kind == NW_EV_FAIL) {
        nw_failure f = {.time = ev->time, .host = p->host->name, .event_id = ev->event_id,
                        .proto = ev->proto, .fail_proto = ev->fail_proto,
                        .fail_code = ev->fail_code};
        t->stats.failures++;
        return t->sink.failure ? t->sink.failure(t->sink.ctx, &f) : NW_OK;
    }

    uint64_t h = key_hash(p->host, ev);
    tconn *c = table_find(t, h, p->host, ev);
    int opening = ev->kind == NW_EV_CONNECT || ev->kind == NW_EV_ACCEPT;

    /* The lists' heads are expired above; a connection that a late event
     * moved behind a younger one is checked here, where it matters. */
    if (c && ((c->list == LIST_UDP && ev->time - c->c.last_seen >= t->opts.udp_idle) ||
              (c->list == LIST_CLOSED &&
               t->frontier - c->closed_at >= t->opts.reorder_window))) {
        if (c->list == LIST_UDP)
            c->c.state = NW_STATE_CLOSED;
        c->dirty = 1;
        st = retire_conn(t, c);
        if (st != NW_OK)
            return st;
        c = NULL;
    }

    /* A connect or accept on a tuple we still hold is a new connection on a
     * reused port, and the old one ends as it is -- unless it is older than
     * everything the held connection saw: then it is that connection's own
     * opening, arriving later than the reorder window. */
    int late_opening = c && opening && ev->time <= c->c.first_seen;
    if (c && opening && !late_opening) {
        st = retire_conn(t, c);
        if (st != NW_OK)
            return st;
        c = NULL;
    }
    if (!c) {
        st = open_conn(t, h, p->host, ev, &c);
        if (st != NW_OK)
            return st;
    }

    nw_conn *k = &c->c;
    if (ev->time < k->first_seen)
        k->first_seen = ev->time;
    if (ev->time > k->last_seen)
        k->last_seen = ev->time;
    c->dirty = 1;

    switch (ev->kind) {
    case NW_EV_CONNECT:
        k->direction = NW_DIR_OUTBOUND;
        if (!late_opening)
            k->state = NW_STATE_ATTEMPTED;
        copy_tcp_opts(k, ev);
        break;
    case NW_EV_ACCEPT:
        k->direction = NW_DIR_INBOUND;
        if (k->state == NW_STATE_ATTEMPTED || !late_opening)
            k->state = NW_STATE_ESTABLISHED;
        copy_tcp_opts(k, ev);
        break;
    case NW_EV_RECONNECT:
        k->reconnects++;
        if (k->direction == NW_DIR_UNKNOWN)
            k->direction = NW_DIR_OUTBOUND;
        break;
    case NW_EV_SEND:
        k->bytes_sent += ev->size;
        k->send_events++;
        break;
    case NW_EV_RECV:
        k->bytes_received += ev->size;
        k->receive_events++;
        break;
    case NW_EV_RETRANSMIT:
        k->bytes_retransmitted += ev->size;
        k->retransmit_events++;
        break;
    case NW_EV_COPY:
        k->bytes_copied += ev->size;
        k->copy_events++;
        break;
    case NW_EV_CLOSE:
        break;
    }

    if (is_data(ev->kind)) {
        if (k->state == NW_STATE_ATTEMPTED)
            k->state = NW_STATE_ESTABLISHED;
        if (ev->kind != NW_EV_COPY) {
            st = add_transfer(t, c, ev);
            if (st != NW_OK)
                return st;
        }
    }

    if (ev->kind == NW_EV_CLOSE && c->list != LIST_CLOSED) {
        int moved = k->send_events + k->receive_events + k->retransmit_events +
                    k->copy_events > 0;
        k->state = (k->state == NW_STATE_ATTEMPTED && !moved && k->reconnects > 0)
                       ? NW_STATE_FAILED
                       : NW_STATE_CLOSED;
        c->closed_at = t->frontier;
        list_touch(t, c, LIST_CLOSED);
    } else if (c->list != LIST_CLOSED) {
        list_touch(t, c, c->list);
    }
    return NW_OK;
}

/* ------------------------------------------------------- reorder heap */

/* Both sifts move elements into a hole instead of swapping: a pending
 * event is ~130 bytes, and (time, seq) is a strict total order, so the heap
 * ends up the same as with swaps. */
static void heap_sift_up(pending *hp, size_t i)
{
    pending x = hp[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pending_before(&x, &hp[parent]))
            break;
        hp[i] = hp[parent];
        i = parent;
    }
    hp[i] = x;
}

static void heap_sift_down(pending *hp, size_t n, size_t i)
{
    pending x = hp[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m;
        if (l >= n)
            break;
        m = r < n && pending_before(&hp[r], &hp[l]) ? r : l;
        if (!pending_before(&hp[m], &x))
            break;
        hp[i] = hp[m];
        i = m;
    }
    hp[i] = x;
}

/* Folds the oldest pending event. */
static nw_status pop_and_fold(nw_tracker *t)
{
    pending p = t->heap[0];
    t->heap[0] = t->heap[--t->heap_len];
    heap_sift_down(t->heap, t->heap_len, 0);
    nw_status st = fold(t, &p);
    host_unref(&t->hosts, p.host);
    return st;
}

/* Folds every pending event at or before limit. */
static nw_status drain(nw_tracker *t, nw_time limit)
{
    nw_status st = NW_OK;
    while (st == NW_OK && t->heap_len > 0 && t->heap[0].time <= limit)
        st = pop_and_fold(t);
    return st;
}

nw_status nw_tracker_feed(nw_tracker *t, const nw_event *ev)
{
    nw_status st = NW_OK;
    if (t->heap_len >= t->opts.max_reorder) {
        st = pop_and_fold(t);    /* full: the oldest goes early */
        if (st != NW_OK)
            return st;
    }
    if (t->heap_len == t->heap_cap) {
        size_t cap = t->heap_cap ? t->heap_cap * 2 : 1024;
        if (cap > t->opts.max_reorder)
            cap = t->opts.max_reorder;
        pending *hp = realloc(t->heap, cap * sizeof *hp);
        if (!hp)
            return NW_ERR_NOMEM;
        t->heap = hp;
        t->heap_cap = cap;
    }
    host_ent *host = host_ref(&t->hosts, ev->host);
    if (!host)
        return NW_ERR_NOMEM;
    pending *p = &t->heap[t->heap_len];
    memcpy(p->core, ev, EVENT_CORE);
    p->time = ev->time;
    p->host = host;
    p->seq = t->seq++;
    heap_sift_up(t->heap, t->heap_len++);

    if (ev->time > t->watermark)
        t->watermark = ev->time;
    t->stats.watermark = t->watermark;
    if (t->watermark > NW_TIME_MIN + t->opts.reorder_window)
        st = drain(t, t->watermark - t->opts.reorder_window);
    return st;
}

nw_status nw_tracker_tick(nw_tracker *t, nw_time now)
{
    if (now > t->watermark)
        t->watermark = now;
    nw_status st = drain(t, t->watermark - t->opts.reorder_window);
    if (st != NW_OK)
        return st;
    if (t->watermark - t->opts.reorder_window > t->frontier)
        t->frontier = t->watermark - t->opts.reorder_window;
    return expire(t, t->frontier);
}

/* Folds every held event, moves the frontier up to the watermark and ends
 * what has gone idle by then: what flush and checkpoint both do first. */
static nw_status fold_all(nw_tracker *t)
{
    nw_status st = drain(t, NW_TIME_MAX);
    if (st != NW_OK)
        return st;
    if (t->watermark > t->frontier)
        t->frontier = t->watermark;
    return expire(t, t->frontier);
}

nw_status nw_tracker_flush(nw_tracker *t)
{
    nw_status st = fold_all(t);
    /* Whatever is still open is written as it is; a later ingest resumes it. */
    for (int l = 0; l < LIST__COUNT && st == NW_OK; l++)
        while (st == NW_OK && t->lists[l].head)
            st = retire_conn(t, t->lists[l].head);
    return st;
}

nw_status nw_tracker_checkpoint(nw_tracker *t)
{
    nw_status st = fold_all(t);
    /* Written as they stand, and kept: the next event continues them in
     * memory (nw_tracker_sync). */
    return st == NW_OK ? nw_tracker_sync(t) : st;
}

void nw_tracker_stats_get(const nw_tracker *t, nw_tracker_stats *out)
{
    *out = t->stats;
    out->open = t->nconns;
}

void nw_tracker_free(nw_tracker *t)
{
    if (!t)
        return;
    for (int l = 0; l < LIST__COUNT; l++) {
        tconn *c = t->lists[l].head;
        while (c) {
            tconn *next = c->next;
            free(c);
            c = next;
        }
    }
    free(t->slots);
    free(t->heap);
    host_table_free(&t->hosts);
    free(t);
}

/* ---------------------------------------------------- snapshot (state) */

/*
 * Layout of a snapshot (native byte order and struct layout: it is read back
 * by the same build, and the header's sizes refuse any other):
 *   header   "NWTK" u32 version, u32 EVENT_CORE, u32 sizeof(nw_conn),
 *            u32 sizeof(nw_transfer), then watermark, frontier, seq,
 *            next_id, id_end, first_id, stats
 *   u64 npending, then each: time, seq, u16 host length, host, core bytes
 *   u64 nconns, then each in list order (TCP, UDP, closed):
 *            u8 list, written, dirty, has_bucket; closed_at; bucket;
 *            nw_conn (host NULL); u16 host length, host
 */
#define SNAP_MAGIC "NWTK"
#define SNAP_VERSION 1u

typedef struct snapw {
    unsigned char *p;
    size_t len, cap;
    int oom;
} snapw;

static void sw_put(snapw *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *np = realloc(w->p, cap);
        if (!np) {
            w->oom = 1;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void sw_host(snapw *w, const char *name)
{
    size_t n = strlen(name);
    uint16_t l = (uint16_t)(n < NW_HOST_MAX ? n : NW_HOST_MAX - 1);
    sw_put(w, &l, sizeof l);
    sw_put(w, name, l);
}

nw_status nw_tracker_save(const nw_tracker *t, unsigned char **out, size_t *len)
{
    snapw w = {0};
    uint32_t hdr[4] = {SNAP_VERSION, (uint32_t)EVENT_CORE, (uint32_t)sizeof(nw_conn),
                       (uint32_t)sizeof(nw_transfer)};
    sw_put(&w, SNAP_MAGIC, 4);
    sw_put(&w, hdr, sizeof hdr);
    sw_put(&w, &t->watermark, sizeof t->watermark);
    sw_put(&w, &t->frontier, sizeof t->frontier);
    sw_put(&w, &t->seq, sizeof t->seq);
    sw_put(&w, &t->next_id, sizeof t->next_id);
    sw_put(&w, &t->id_end, sizeof t->id_end);
    sw_put(&w, &t->first_id, sizeof t->first_id);
    sw_put(&w, &t->stats, sizeof t->stats);
    uint64_t n = t->heap_len;
    sw_put(&w, &n, sizeof n);
    for (size_t i = 0; i < t->heap_len; i++) {
        const pending *p = &t->heap[i];
        sw_put(&w, &p->time, sizeof p->time);
        sw_put(&w, &p->seq, sizeof p->seq);
        sw_host(&w, p->host->name);
        sw_put(&w, p->core, EVENT_CORE);
    }
    n = t->nconns;
    sw_put(&w, &n, sizeof n);
    for (int l = 0; l < LIST__COUNT; l++)
        for (const tconn *c = t->lists[l].head; c; c = c->next) {
            uint8_t f[4] = {c->list, c->written, c->dirty, c->has_bucket};
            sw_put(&w, f, sizeof f);
            sw_put(&w, &c->closed_at, sizeof c->closed_at);
            sw_put(&w, &c->bucket, sizeof c->bucket);
            nw_conn k = c->c;
            k.host = NULL;
            sw_put(&w, &k, sizeof k);
            sw_host(&w, c->host->name);
        }
    if (w.oom) {
        free(w.p);
        return NW_ERR_NOMEM;
    }
    *out = w.p;
    *len = w.len;
    return NW_OK;
}

typedef struct snapr {
    const unsigned char *p;
    size_t len, at;
    int bad;
} snapr;

static void sr_get(snapr *r, void *dst, size_t n)
{
    if (r->bad || r->len - r->at < n) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->at, n);
    r->at += n;
}

static void sr_host(snapr *r, char name[NW_HOST_MAX])
{
    uint16_t l = 0;
    sr_get(r, &l, sizeof l);
    if (l >= NW_HOST_MAX)
        r->bad = 1;
    if (r->bad) {
        name[0] = 0;
        return;
    }
    sr_get(r, name, l);
    name[l] = 0;
}

static uint64_t conn_key_hash(const host_ent *h, const nw_conn *c)
{
    nw_event ev;
    memset(&ev, 0, sizeof ev);
    ev.local_ip = c->local_ip;
    ev.remote_ip = c->remote_ip;
    ev.pid = c->pid;
    ev.local_port = c->local_port;
    ev.remote_port = c->remote_port;
    ev.proto = c->proto;
    ev.ip_version = c->ip_version;
    return key_hash(h, &ev);
}

nw_status nw_tracker_load(nw_tracker *t, const unsigned char *buf, size_t len)
{
    if (t->heap_len || t->nconns)
        return NW_ERR_INVALID;               /* only into a fresh tracker */
    snapr r = {buf, len, 0, 0};
    char magic[4];
    uint32_t hdr[4];
    sr_get(&r, magic, 4);
    sr_get(&r, hdr, sizeof hdr);
    if (r.bad || memcmp(magic, SNAP_MAGIC, 4) != 0 || hdr[0] != SNAP_VERSION ||
        hdr[1] != EVENT_CORE || hdr[2] != sizeof(nw_conn) || hdr[3] != sizeof(nw_transfer))
        return NW_ERR_INVALID;
    sr_get(&r, &t->watermark, sizeof t->watermark);
    sr_get(&r, &t->frontier, sizeof t->frontier);
    sr_get(&r, &t->seq, sizeof t->seq);
    sr_get(&r, &t->next_id, sizeof t->next_id);
    sr_get(&r, &t->id_end, sizeof t->id_end);
    sr_get(&r, &t->first_id, sizeof t->first_id);
    sr_get(&r, &t->stats, sizeof t->stats);
    uint64_t n = 0;
    sr_get(&r, &n, sizeof n);
    if (r.bad || n > t->opts.max_reorder || n > (len - r.at) / (EVENT_CORE + 18))
        return NW_ERR_INVALID;
    if (n) {
        t->heap = malloc((size_t)n * sizeof *t->heap);
        if (!t->heap)
            return NW_ERR_NOMEM;
        t->heap_cap = (size_t)n;
    }
    char name[NW_HOST_MAX];
    nw_status st = NW_OK;
    for (uint64_t i = 0; i < n && st == NW_OK; i++) {
        pending p;
        sr_get(&r, &p.time, sizeof p.time);
        sr_get(&r, &p.seq, sizeof p.seq);
        sr_host(&r, name);
        sr_get(&r, p.core, EVENT_CORE);
        if (r.bad) {
            st = NW_ERR_INVALID;
            break;
        }
        if (!(p.host = host_ref(&t->hosts, name))) {
            st = NW_ERR_NOMEM;
            break;
        }
        t->heap[t->heap_len] = p;
        heap_sift_up(t->heap, t->heap_len++);
    }
    uint64_t nc = 0;
    if (st == NW_OK)
        sr_get(&r, &nc, sizeof nc);
    if (st == NW_OK && r.bad)
        st = NW_ERR_INVALID;
    for (uint64_t i = 0; i < nc && st == NW_OK; i++) {
        uint8_t f[4];
        tconn tmp;
        memset(&tmp, 0, sizeof tmp);
        sr_get(&r, f, sizeof f);
        sr_get(&r, &tmp.closed_at, sizeof tmp.closed_at);
        sr_get(&r, &tmp.bucket, sizeof tmp.bucket);
        sr_get(&r, &tmp.c, sizeof tmp.c);
        sr_host(&r, name);
        if (r.bad || f[0] >= LIST__COUNT) {
            st = NW_ERR_INVALID;
            break;
        }
        if (t->nconns + 1 > t->nslots && table_grow(t)) {
            st = NW_ERR_NOMEM;
            break;
        }
        tconn *c = calloc(1, sizeof *c);
        host_ent *h = c ? host_ref(&t->hosts, name) : NULL;
        if (!h) {
            free(c);
            st = NW_ERR_NOMEM;
            break;
        }
        *c = tmp;
        c->c.host = NULL;
        c->host = h;
        c->list = f[0];
        c->written = f[1];
        c->dirty = f[2];
        c->has_bucket = f[3];
        c->hash = conn_key_hash(h, &c->c);
        list_append(&t->lists[c->list], c);
        c->hnext = t->slots[c->hash & (t->nslots - 1)];
        t->slots[c->hash & (t->nslots - 1)] = c;
        t->nconns++;
    }
    if (st == NW_OK && r.at != r.len)
        st = NW_ERR_INVALID;
    t->stats.open = t->nconns;       /* stats.watermark: as saved */
    return st;
}

nw_status nw_tracker_sync(nw_tracker *t)
{
    nw_status st = NW_OK;
    for (int l = 0; l < LIST__COUNT && st == NW_OK; l++)
        for (tconn *c = t->lists[l].head; c && st == NW_OK; c = c->next) {
            /* The open bucket so far; the rest of it is added to the same
             * row later (the store adds up a bucket written twice). */
            if (c->has_bucket && c->written)
                st = emit_bucket(t, c);
            if (st != NW_OK || (!c->dirty && c->written))
                continue;
            if (!c->written) {
                c->c.anchor = c->c.first_seen;
                c->written = 1;
            }
            c->c.host = c->host->name;
            c->dirty = 0;
            st = t->sink.conn ? t->sink.conn(t->sink.ctx, &c->c) : NW_OK;
            if (st == NW_OK && c->has_bucket)
                st = emit_bucket(t, c);
        }
    return st;
}
