/*
 * encode_process.c -- a connection's process as JSON and as CSV columns
 * (encode.h).  null / empty where unknown: never a guess.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "netwho/encode.h"
#include "netwho/nwtime.h"
#include "netwho/procguid.h"
#include "netwho/process.h"
#include "netwho/procstore.h"

static int json_str_or_null(nw_buf *b, const char *s)
{
    if (!s)
        return nw_buf_adds(b, "null");
    return nw_buf_add_json_str(b, s, strlen(s));
}

/* p's ProcessGuid: the one Sysmon logged, else the one derived like
 * Sysmon's (procguid.h) into g, else NULL.  Derived, it is the same for
 * every connection of the process and differs for a reused pid, so scripts
 * can group by it whatever the source of the process. */
static const char *process_guid(const nw_process *p, char g[NW_GUID_MAX])
{
    if (p->guid && p->guid[0])
        return p->guid;
    return nw_process_guid(p, g, NW_GUID_MAX) > 0 ? g : NULL;
}

int nw_json_process(nw_buf *b, const nw_process *p)
{
    if (!p)
        return nw_buf_adds(b, "null") ? -1 : 0;
    char ts[NW_TIME_STRLEN];
    int rc = nw_buf_adds(b, "{\"image\":");
    rc |= json_str_or_null(b, p->image);
    rc |= nw_buf_adds(b, ",\"name\":");
    rc |= json_str_or_null(b, nw_process_name(p->image));
    rc |= nw_buf_adds(b, ",\"create_time\":");
    if (nw_time_format(p->create_time, ts, sizeof ts))
        rc |= nw_buf_addf(b, "\"%s\"", ts);
    else
        rc |= nw_buf_adds(b, "null");
    if (p->has_parent)
        rc |= nw_buf_addf(b, ",\"parent_pid\":%" PRIu32, p->parent_pid);
    else
        rc |= nw_buf_adds(b, ",\"parent_pid\":null");
    rc |= nw_buf_adds(b, ",\"parent_image\":");
    rc |= json_str_or_null(b, p->parent_image);
    rc |= nw_buf_adds(b, ",\"user\":");
    rc |= json_str_or_null(b, p->user);
    rc |= nw_buf_adds(b, ",\"command_line\":");
    rc |= json_str_or_null(b, p->command_line);
    rc |= nw_buf_adds(b, ",\"guid\":");
    char g[NW_GUID_MAX];
    rc |= json_str_or_null(b, process_guid(p, g));
    rc |= nw_buf_adds(b, "}");
    return rc ? -1 : 0;
}

/* A CSV field, quoted when RFC 4180 says so; "" for NULL. */
static int csv_field(nw_buf *b, const char *s)
{
    int rc = nw_buf_add(b, ",", 1);
    if (!s)
        return rc;
    if (!strpbrk(s, ",\"\r\n"))
        return rc | nw_buf_adds(b, s);
    rc |= nw_buf_add(b, "\"", 1);
    for (; *s && !rc; s++)
        rc = *s == '"' ? nw_buf_add(b, "\"\"", 2) : nw_buf_add(b, s, 1);
    return rc | nw_buf_add(b, "\"", 1);
}

int nw_csv_process(nw_buf *b, const nw_process *p)
{
    if (!p)
        return nw_buf_adds(b, ",,,,,,,,") ? -1 : 0;
    char ts[NW_TIME_STRLEN] = "", ppid[16] = "";
    nw_time_format(p->create_time, ts, sizeof ts);
    if (p->has_parent)
        snprintf(ppid, sizeof ppid, "%" PRIu32, p->parent_pid);
    int rc = csv_field(b, p->image);
    rc |= csv_field(b, nw_process_name(p->image));
    rc |= csv_field(b, ts);
    rc |= csv_field(b, ppid);
    rc |= csv_field(b, p->parent_image);
    rc |= csv_field(b, p->user);
    rc |= csv_field(b, p->command_line);
    char g[NW_GUID_MAX];
    rc |= csv_field(b, process_guid(p, g));
    return rc ? -1 : 0;
}
