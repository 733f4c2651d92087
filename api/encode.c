/*
 * encode.c -- records to JSON, NDJSON, CSV and terminal tables.
 *
 * Written by hand rather than through cJSON trees: a query may stream
 * millions of rows, and building then printing a tree per row would double
 * the work for text whose shape is fixed.  Only host names are free text;
 * they go through nw_buf_add_json_str (or CSV quoting).
 */
#include "netwho/encode.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "netwho/addr.h"
#include "netwho/nwtime.h"
#include "netwho/process.h"
#include "netwho/procstore.h"

int nw_format_from_name(const char *s)
{
    static const char *const names[] = {"json", "ndjson", "csv", "table"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *nw_format_name(nw_format f)
{
    static const char *const names[] = {"json", "ndjson", "csv", "table"};
    return (unsigned)f < 4 ? names[f] : "json";
}

static int add_time(nw_buf *b, nw_time t, int quoted)
{
    char ts[NW_TIME_STRLEN];
    if (nw_time_format(t, ts, sizeof ts) == 0)
        return quoted ? nw_buf_adds(b, "null") : 0;
    return quoted ? nw_buf_addf(b, "\"%s\"", ts) : nw_buf_adds(b, ts);
}

/* ---------------------------------------------------------------- JSON */

int nw_json_conn(nw_buf *b, const nw_conn *c)
{
    char lip[NW_ADDR_STRLEN], rip[NW_ADDR_STRLEN];
    nw_addr_format(&c->local_ip, c->ip_version, lip, sizeof lip);
    nw_addr_format(&c->remote_ip, c->ip_version, rip, sizeof rip);
    int rc = nw_buf_addf(b, "{\"id\":%" PRId64 ",\"host\":", c->id);
    rc |= nw_buf_add_json_str(b, c->host ? c->host : "", c->host ? strlen(c->host) : 0);
    rc |= nw_buf_addf(b,
                      ",\"pid\":%" PRIu32 ",\"proto\":\"%s\",\"ip_version\":%d,"
                      "\"direction\":\"%s\",\"local_ip\":\"%s\",\"local_port\":%u,"
                      "\"remote_ip\":\"%s\",\"remote_port\":%u,\"first_seen\":",
                      c->pid, nw_proto_name(c->proto), c->ip_version,
                      nw_direction_name(c->direction), lip, c->local_port, rip,
                      c->remote_port);
    rc |= add_time(b, c->first_seen, 1);
    rc |= nw_buf_adds(b, ",\"last_seen\":");
    rc |= add_time(b, c->last_seen, 1);
    rc |= nw_buf_addf(b,
                      ",\"state\":\"%s\",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64
                      ",\"bytes_retransmitted\":%" PRIu64 ",\"bytes_copied\":%" PRIu64
                      ",\"send_events\":%" PRIu64 ",\"receive_events\":%" PRIu64
                      ",\"retransmit_events\":%" PRIu64 ",\"copy_events\":%" PRIu64
                      ",\"reconnects\":%" PRIu32 ",\"tcp_options\":",
                      nw_state_name(c->state), c->bytes_sent, c->bytes_received,
                      c->bytes_retransmitted, c->bytes_copied, c->send_events,
                      c->receive_events, c->retransmit_events, c->copy_events,
                      c->reconnects);
    if (c->has_tcp_opts)
        rc |= nw_buf_addf(b,
                          "{\"mss\":%u,\"sackopt\":%u,\"tsopt\":%u,\"wsopt\":%u,"
                          "\"rcvwin\":%" PRIu32 ",\"rcvwinscale\":%u,\"sndwinscale\":%u}",
                          c->mss, c->sackopt, c->tsopt, c->wsopt, c->rcvwin, c->rcvwinscale,
                          c->sndwinscale);
    else
        rc |= nw_buf_adds(b, "null");
    rc |= nw_buf_adds(b, ",\"process\":");
    rc |= nw_json_process(b, c->process);
    rc |= nw_buf_adds(b, "}");
    return rc ? -1 : 0;
}

static int json_who(nw_buf *b, const nw_who_row *w)
{
    int rc = nw_buf_adds(b, "{\"host\":");
    rc |= nw_buf_add_json_str(b, w->host, strlen(w->host));
    rc |= nw_buf_addf(b,
                      ",\"pid\":%" PRIu32 ",\"connections\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
                      ",\"bytes_received\":%" PRIu64 ",\"first_seen\":",
                      w->pid, w->connections, w->bytes_sent, w->bytes_received);
    rc |= add_time(b, w->first_seen, 1);
    rc |= nw_buf_adds(b, ",\"last_seen\":");
    rc |= add_time(b, w->last_seen, 1);
    rc |= nw_buf_adds(b, "}");
    return rc ? -1 : 0;
}

static int json_transfer(nw_buf *b, const nw_transfer *t)
{
    int rc = nw_buf_adds(b, "{\"time\":");
    rc |= add_time(b, t->time, 1);
    rc |= nw_buf_addf(b,
                      ",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64
                      ",\"bytes_retransmitted\":%" PRIu64 ",\"send_events\":%" PRIu32
                      ",\"receive_events\":%" PRIu32 ",\"retransmit_events\":%" PRIu32 "}",
                      t->bytes_sent, t->bytes_received, t->bytes_retransmitted,
                      t->send_events, t->receive_events, t->retransmit_events);
    return rc ? -1 : 0;
}

static int json_failure(nw_buf *b, const nw_failure *f)
{
    int rc = nw_buf_adds(b, "{\"time\":");
    rc |= add_time(b, f->time, 1);
    rc |= nw_buf_adds(b, ",\"host\":");
    rc |= nw_buf_add_json_str(b, f->host, strlen(f->host));
    rc |= nw_buf_addf(b, ",\"event_id\":%u,\"proto\":\"%s\",\"fail_proto\":%u,\"fail_code\":%u}",
                      f->event_id, nw_proto_name(f->proto), f->fail_proto, f->fail_code);
    return rc ? -1 : 0;
}

/* ----------------------------------------------------------------- CSV */

static const char *const csv_headers[] = {
    "id,host,pid,proto,ip_version,direction,local_ip,local_port,remote_ip,remote_port,"
    "first_seen,last_seen,state,bytes_sent,bytes_received,bytes_retransmitted,bytes_copied,"
    "send_events,receive_events,retransmit_events,copy_events,reconnects,tcp_mss,"
    "tcp_sackopt,tcp_tsopt,tcp_wsopt,tcp_rcvwin,tcp_rcvwinscale,tcp_sndwinscale,"
    NW_CSV_PROCESS_HEADER "\r\n",
    "host,pid,connections,bytes_sent,bytes_received,first_seen,last_seen\r\n",
    "time,bytes_sent,bytes_received,bytes_retransmitted,send_events,receive_events,"
    "retransmit_events\r\n",
    "time,host,event_id,proto,fail_proto,fail_code\r\n",
};

/* A CSV field: quoted (with "" for ") when it holds a comma, quote or
 * line break, as RFC 4180 says. */
static int csv_str(nw_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n"))
        return nw_buf_adds(b, s);
    int rc = nw_buf_add(b, "\"", 1);
    for (; *s && !rc; s++)
        rc = *s == '"' ? nw_buf_add(b, "\"\"", 2) : nw_buf_add(b, s, 1);
    return rc | nw_buf_add(b, "\"", 1);
}

static int csv_conn(nw_buf *b, const nw_conn *c)
{
    char lip[NW_ADDR_STRLEN], rip[NW_ADDR_STRLEN];
    nw_addr_format(&c->local_ip, c->ip_version, lip, sizeof lip);
    nw_addr_format(&c->remote_ip, c->ip_version, rip, sizeof rip);
    int rc = nw_buf_addf(b, "%" PRId64 ",", c->id);
    rc |= csv_str(b, c->host ? c->host : "");
    rc |= nw_buf_addf(b, ",%" PRIu32 ",%s,%d,%s,%s,%u,%s,%u,", c->pid, nw_proto_name(c->proto),
                      c->ip_version, nw_direction_name(c->direction), lip, c->local_port, rip,
                      c->remote_port);
    rc |= add_time(b, c->first_seen, 0);
    rc |= nw_buf_add(b, ",", 1);
    rc |= add_time(b, c->last_seen, 0);
    rc |= nw_buf_addf(b,
                      ",%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                      ",%" PRIu64 ",%" PRIu64 ",%" PRIu32,
                      nw_state_name(c->state), c->bytes_sent, c->bytes_received,
                      c->bytes_retransmitted, c->bytes_copied, c->send_events,
                      c->receive_events, c->retransmit_events, c->copy_events, c->reconnects);
    if (c->has_tcp_opts)
        rc |= nw_buf_addf(b, ",%u,%u,%u,%u,%" PRIu32 ",%u,%u", c->mss, c->sackopt, c->tsopt,
                          c->wsopt, c->rcvwin, c->rcvwinscale, c->sndwinscale);
    else
        rc |= nw_buf_adds(b, ",,,,,,,");
    rc |= nw_csv_process(b, c->process);
    rc |= nw_buf_adds(b, "\r\n");
    return rc ? -1 : 0;
}

static int csv_who(nw_buf *b, const nw_who_row *w)
{
    int rc = csv_str(b, w->host);
    rc |= nw_buf_addf(b, ",%" PRIu32 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", w->pid,
                      w->connections, w->bytes_sent, w->bytes_received);
    rc |= add_time(b, w->first_seen, 0);
    rc |= nw_buf_add(b, ",", 1);
    rc |= add_time(b, w->last_seen, 0);
    return rc | nw_buf_adds(b, "\r\n") ? -1 : 0;
}

static int csv_transfer(nw_buf *b, const nw_transfer *t)
{
    int rc = add_time(b, t->time, 0);
    rc |= nw_buf_addf(b, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 "\r\n",
                      t->bytes_sent, t->bytes_received, t->bytes_retransmitted, t->send_events,
                      t->receive_events, t->retransmit_events);
    return rc ? -1 : 0;
}

static int csv_failure(nw_buf *b, const nw_failure *f)
{
    int rc = add_time(b, f->time, 0);
    rc |= nw_buf_add(b, ",", 1);
    rc |= csv_str(b, f->host);
    rc |= nw_buf_addf(b, ",%u,%s,%u,%u\r\n", f->event_id, nw_proto_name(f->proto),
                      f->fail_proto, f->fail_code);
    return rc ? -1 : 0;
}

/* --------------------------------------------------------------- table */

static const char *const table_headers[] = {
    "ID        HOST             PID    PROTO DIR       LOCAL                                          "
    "REMOTE                                         FIRST SEEN                   STATE       "
    "SENT       RECEIVED     PROCESS\n",
    "HOST                     PID    CONNS    SENT         RECEIVED     FIRST SEEN                   "
    "LAST SEEN\n",
    "TIME                         SENT         RECEIVED     RETRANSMITTED SENDS  RECVS  RETX\n",
    "TIME                         HOST                     EVENT PROTO FAIL_PROTO FAIL_CODE\n",
};

static void endpoint(char *out, size_t cap, const nw_addr *a, int v, unsigned port)
{
    char ip[NW_ADDR_STRLEN];
    nw_addr_format(a, v, ip, sizeof ip);
    snprintf(out, cap, v == 6 ? "[%s]:%u" : "%s:%u", ip, port);
}

static int table_conn(nw_buf *b, const nw_conn *c)
{
    char l[NW_ADDR_STRLEN + 10], r[NW_ADDR_STRLEN + 10], ts[NW_TIME_STRLEN] = "";
    endpoint(l, sizeof l, &c->local_ip, c->ip_version, c->local_port);
    endpoint(r, sizeof r, &c->remote_ip, c->ip_version, c->remote_port);
    nw_time_format(c->first_seen, ts, sizeof ts);
    return nw_buf_addf(b,
                       "%-9" PRId64 " %-16.16s %-6" PRIu32 " %-5s %-9s %-46s %-46s %-28s %-11s %-10"
                       PRIu64 " %-12" PRIu64 " %s\n",
                       c->id, c->host ? c->host : "", c->pid, nw_proto_name(c->proto),
                       nw_direction_name(c->direction), l, r, ts, nw_state_name(c->state),
                       c->bytes_sent, c->bytes_received,
                       c->process && c->process->image ? nw_process_name(c->process->image)
                                                       : "-");
}

static int table_who(nw_buf *b, const nw_who_row *w)
{
    char f[NW_TIME_STRLEN] = "", l[NW_TIME_STRLEN] = "";
    nw_time_format(w->first_seen, f, sizeof f);
    nw_time_format(w->last_seen, l, sizeof l);
    return nw_buf_addf(b, "%-24.24s %-6" PRIu32 " %-8" PRIu64 " %-12" PRIu64 " %-12" PRIu64 " %-28s %s\n",
                       w->host, w->pid, w->connections, w->bytes_sent, w->bytes_received, f, l);
}

static int table_transfer(nw_buf *b, const nw_transfer *t)
{
    char ts[NW_TIME_STRLEN] = "";
    nw_time_format(t->time, ts, sizeof ts);
    return nw_buf_addf(b, "%-28s %-12" PRIu64 " %-12" PRIu64 " %-13" PRIu64 " %-6" PRIu32 " %-6" PRIu32
                       " %" PRIu32 "\n",
                       ts, t->bytes_sent, t->bytes_received, t->bytes_retransmitted,
                       t->send_events, t->receive_events, t->retransmit_events);
}

static int table_failure(nw_buf *b, const nw_failure *f)
{
    char ts[NW_TIME_STRLEN] = "";
    nw_time_format(f->time, ts, sizeof ts);
    return nw_buf_addf(b, "%-28s %-24.24s %-5u %-5s %-10u %u\n", ts, f->host, f->event_id,
                       nw_proto_name(f->proto), f->fail_proto, f->fail_code);
}

/* ------------------------------------------------------------ framing */

int nw_enc_begin(nw_enc *e, nw_format f, nw_record r, nw_buf *out)
{
    e->format = f;
    e->record = r;
    e->out = out;
    e->rows = 0;
    switch (f) {
    case NW_FMT_JSON:
        return nw_buf_adds(out, "[");
    case NW_FMT_CSV:
        return nw_buf_adds(out, csv_headers[r]);
    case NW_FMT_TABLE:
        return nw_buf_adds(out, table_headers[r]);
    case NW_FMT_NDJSON:
        break;
    }
    return 0;
}

/* Separator before a JSON array element. */
static int json_sep(nw_enc *e)
{
    if (e->format == NW_FMT_JSON && e->rows > 0)
        return nw_buf_adds(e->out, ",\n");
    return 0;
}

static int json_end_row(nw_enc *e)
{
    e->rows++;
    return e->format == NW_FMT_NDJSON ? nw_buf_adds(e->out, "\n") : 0;
}

#define ENC_ROW(e, rec, json_fn, csv_fn, table_fn)                                 \
    do {                                                                           \
        switch ((e)->format) {                                                     \
        case NW_FMT_JSON:                                                          \
        case NW_FMT_NDJSON:                                                        \
            if (json_sep(e) || json_fn((e)->out, rec))                             \
                return -1;                                                         \
            return json_end_row(e);                                                \
        case NW_FMT_CSV:                                                           \
            (e)->rows++;                                                           \
            return csv_fn((e)->out, rec);                                          \
        case NW_FMT_TABLE:                                                         \
            (e)->rows++;                                                           \
            return table_fn((e)->out, rec);                                        \
        }                                                                          \
        return -1;                                                                 \
    } while (0)

int nw_enc_conn(nw_enc *e, const nw_conn *c) { ENC_ROW(e, c, nw_json_conn, csv_conn, table_conn); }
int nw_enc_who(nw_enc *e, const nw_who_row *w) { ENC_ROW(e, w, json_who, csv_who, table_who); }
int nw_enc_transfer(nw_enc *e, const nw_transfer *t)
{
    ENC_ROW(e, t, json_transfer, csv_transfer, table_transfer);
}
int nw_enc_failure(nw_enc *e, const nw_failure *f)
{
    ENC_ROW(e, f, json_failure, csv_failure, table_failure);
}

int nw_enc_end(nw_enc *e)
{
    if (e->format == NW_FMT_JSON)
        return nw_buf_adds(e->out, "]\n");
    return 0;
}
