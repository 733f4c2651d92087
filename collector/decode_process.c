/*
 * decode_process.c -- Microsoft-Windows-Kernel-Process ProcessStart (1),
 * ProcessStop (2) and ProcessRundown (15) to an nw_proc_event (see
 * procevent.h).
 *
 * Field names as the provider's manifest has them (ProcessID,
 * ProcessSequenceNumber, CreateTime, ParentProcessID, SessionID, ImageName;
 * a stop adds ExitTime and ExitCode), matched case-insensitively like
 * decode.c does.  Numbers may be JSON numbers or space-padded strings
 * (" 12824").  CreateTime/ExitTime are RFC 3339 text, or a raw FILETIME.
 * A stop's ImageName is the short image file name (an AnsiString of at
 * most 15 characters); the store never lets it replace a full path.
 */
#include <stdio.h>
#include <string.h>

#include "decode_int.h"

static nw_reject opt_u32(const cJSON *data, const char *name, int *has, uint32_t *out,
                         const nw__detail *d)
{
    const cJSON *v = nw__get_ci(data, name);
    uint64_t u;
    if (!v)
        return NW_ACCEPTED;
    if (nw__val_uint(v, UINT32_MAX, &u))
        return nw__dfail(d, NW_REJ_BAD_FIELD, "event_data.%s is not a 32-bit number", name);
    *out = (uint32_t)u;
    if (has)
        *has = 1;
    return NW_ACCEPTED;
}

nw_reject nw__decode_kproc(const cJSON *sys, const cJSON *data, const char *default_host,
                           nw_proc_event *pe, const nw__detail *d)
{
    const cJSON *idv = nw__get_ci(sys, "event_id");
    uint64_t id;
    if (!idv)
        return nw__dfail(d, NW_REJ_UNKNOWN_EVENT_ID, "system.event_id is missing");
    if (nw__val_uint(idv, 65535, &id) || (id != 1 && id != 2 && id != 15))
        return nw__dfail(d, NW_REJ_UNKNOWN_EVENT_ID,
                         "system.event_id is not a process start, stop or rundown of "
                         "Microsoft-Windows-Kernel-Process");
    pe->source = (int)id;

    const cJSON *tc = nw__get_ci(sys, "time_created");
    if (!tc || nw__val_time(tc, &pe->time))
        return nw__dfail(d, NW_REJ_BAD_TIME, "system.time_created %s",
                         tc ? "is not an RFC 3339 time" : "is missing");
    const cJSON *c = nw__get_ci(sys, "computer");
    nw__copy_host(pe->host, cJSON_IsString(c) ? c->valuestring : NULL, default_host);

    nw_process *p = &pe->p;
    p->exit_time = NW_TIME_MAX;
    const cJSON *pidv = nw__get_ci(data, "ProcessID");
    uint64_t u;
    if (!pidv)
        return nw__dfail(d, NW_REJ_BAD_PID, "event_data.ProcessID is missing");
    if (nw__val_uint(pidv, UINT32_MAX, &u))
        return nw__dfail(d, NW_REJ_BAD_PID, "event_data.ProcessID is not a number");
    p->pid = (uint32_t)u;

    const cJSON *ct = nw__get_ci(data, "CreateTime");
    if (ct) {
        if (nw__val_time(ct, &p->create_time))
            return nw__dfail(d, NW_REJ_BAD_TIME, "event_data.CreateTime is not a time");
        pe->create_prec = NW_PREC_EXACT;
    } else if (id != 2) {
        return nw__dfail(d, NW_REJ_BAD_TIME, "event_data.CreateTime is missing");
    }
    if (id == 2) {
        const cJSON *xt = nw__get_ci(data, "ExitTime");
        if (xt && nw__val_time(xt, &p->exit_time))
            return nw__dfail(d, NW_REJ_BAD_TIME, "event_data.ExitTime is not a time");
        if (!xt)
            p->exit_time = pe->time;
        pe->has_exit = 1;
    }

    nw_reject r;
    if ((r = opt_u32(data, "ParentProcessID", &p->has_parent, &p->parent_pid, d)) ||
        (r = opt_u32(data, "SessionID", &p->has_session, &p->session_id, d)))
        return r;
    const cJSON *seq = nw__get_ci(data, "ProcessSequenceNumber");
    if (seq && nw__val_uint(seq, UINT64_MAX, &p->sequence))
        return nw__dfail(d, NW_REJ_BAD_FIELD,
                         "event_data.ProcessSequenceNumber is not a number");
    const cJSON *img = nw__get_ci(data, "ImageName");
    if (cJSON_IsString(img) && img->valuestring)
        nw__copy_cut(pe->image, sizeof pe->image, img->valuestring, strlen(img->valuestring));
    return NW_ACCEPTED;
}
