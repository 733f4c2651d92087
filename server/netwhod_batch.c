/*
 * netwhod_batch.c -- a live source's batch (netwhod.h): what --fifo,
 * --stdin (netwhod_sources.c) and --follow (netwhod_follow.c) collect
 * between two hand-overs to the ingest thread.  Arrays grow by doubling
 * and are kept across batches; nwd_batch_clear empties, nwd_batch_free
 * releases.
 */
#include <stdlib.h>
#include <string.h>

#include "netwhod.h"
#include "netwho/procevent.h"

int nwd_batch_reserve_event(nwd_batch *b)
{
    if (b->nev < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    nw_event *v = realloc(b->ev, cap * sizeof *v);
    if (!v)
        return -1;
    b->ev = v;
    b->cap = cap;
    return 0;
}

int nwd_batch_add_reject(nwd_batch *b, const nw_rejection *r)
{
    if (b->nrej == b->rcap) {
        size_t cap = b->rcap ? b->rcap * 2 : 64;
        nwd_rej *v = realloc(b->rej, cap * sizeof *v);
        if (!v)
            return -1;
        b->rej = v;
        b->rcap = cap;
    }
    nwd_rej *o = &b->rej[b->nrej];
    memset(o, 0, sizeof *o);
    o->reason = r->reason;
    o->offset = r->offset;
    o->full_len = r->full_len;
    o->raw = malloc(r->raw_len ? r->raw_len : 1);
    o->detail = strdup(r->detail ? r->detail : "");
    if (!o->raw || !o->detail) {
        free(o->raw);
        free(o->detail);
        return -1;
    }
    if (r->raw_len)
        memcpy(o->raw, r->raw, r->raw_len);
    o->raw_len = r->raw_len;
    b->nrej++;
    return 0;
}

int nwd_batch_add_process(nwd_batch *b, struct nw_proc_event *pe)
{
    if (b->nproc == b->pcap) {
        size_t cap = b->pcap ? b->pcap * 2 : 64;
        struct nw_proc_event **v = realloc(b->proc, cap * sizeof *v);
        if (!v) {
            free(pe);
            return -1;
        }
        b->proc = v;
        b->pcap = cap;
    }
    b->proc[b->nproc++] = pe;
    if (pe->source != NW_PSRC_SYSMON_NETWORK)
        b->nproc_frames++;
    return 0;
}

void nwd_batch_clear(nwd_batch *b)
{
    for (size_t i = 0; i < b->nrej; i++) {
        free(b->rej[i].raw);
        free(b->rej[i].detail);
    }
    for (size_t i = 0; i < b->nproc; i++)
        free(b->proc[i]);
    b->nev = b->nrej = b->nproc = b->nproc_frames = 0;
}

void nwd_batch_free(nwd_batch *b)
{
    nwd_batch_clear(b);
    free(b->ev);
    free(b->rej);
    free(b->proc);
    b->ev = NULL;
    b->rej = NULL;
    b->proc = NULL;
    b->cap = b->rcap = b->pcap = 0;
}
