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
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "netwho/addr.h"
#include "netwho/addrclass.h"
#include "netwho/flowid.h"
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

/* ------------------------------------------------------- number text */

/*
 * JSON rows are built with these instead of printf: a page of 100 rows was
 * ~35% of a request's CPU in vfprintf (netwhod under wrk, perf).  Each
 * writes at p and returns the end; the caller's array is sized for the
 * longest row (ROW_MAX).
 */

/* Room for a JSON row's text besides its host: ~30 fields of at most 20
 * digits, two addresses, two times, the keys. */
#define ROW_MAX 1024

/* Room for the flow fields of a connection: the Community ID and the two
 * address classes (at most "unspecified"), with their keys and quotes. */
#define FLOW_MAX (NW_COMMUNITY_ID_STRLEN + 96)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, 0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* A string literal (its length known at compile time). */
#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

static int64_t floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 1970-01-01 to 0000-01-01 and to 10000-01-01: nw_time_format's
 * range. */
#define DAY_MIN (-719528LL)
#define DAY_END 2932897LL

/* The date of the last day formatted on this thread: rows of one answer
 * mostly share a day, so its text comes from nw_time_format once. */
static _Thread_local struct {
    int64_t day;
    int ok;
    char date[10];
} day_cache = {INT64_MIN, 0, {0}};

/* t as nw_time_format writes it ("2026-03-16T00:01:06.7284469Z"), quoted if
 * asked; "null" (quoted) or nothing (unquoted) outside its range. */
static char *put_time(char *p, nw_time t, int quoted)
{
    int64_t secs = t / NW_TICKS_PER_SEC, frac = t % NW_TICKS_PER_SEC;
    if (frac < 0) {             /* floor, without overflow near INT64_MIN */
        frac += NW_TICKS_PER_SEC;
        secs--;
    }
    int64_t day = floor_div64(secs, 86400);
    int64_t sod = secs - day * 86400;
    if (day != day_cache.day) {
        char ts[NW_TIME_STRLEN];
        day_cache.day = day;
        day_cache.ok = day >= DAY_MIN && day < DAY_END &&
                       nw_time_format(day * 86400 * NW_TICKS_PER_SEC, ts, sizeof ts) >= 10;
        if (day_cache.ok)
            memcpy(day_cache.date, ts, 10);
    }
    if (!day_cache.ok)
        return quoted ? PUT_LIT(p, "null") : p;
    if (quoted)
        *p++ = '"';
    memcpy(p, day_cache.date, 10);
    p += 10;
    *p++ = 'T';
    p = put_2(p, (unsigned)(sod / 3600));
    *p++ = ':';
    p = put_2(p, (unsigned)(sod / 60 % 60));
    *p++ = ':';
    p = put_2(p, (unsigned)(sod % 60));
    *p++ = '.';
    for (int i = 6; i >= 0; i--, frac /= 10)
        p[i] = (char)('0' + frac % 10);
    p += 7;
    *p++ = 'Z';
    if (quoted)
        *p++ = '"';
    return p;
}

/* ---------------------------------------------------------------- JSON */

int nw_json_conn(nw_buf *b, const nw_conn *c)
{
    char lip[NW_ADDR_STRLEN], rip[NW_ADDR_STRLEN];
    nw_addr_format(&c->local_ip, c->ip_version, lip, sizeof lip);
    nw_addr_format(&c->remote_ip, c->ip_version, rip, sizeof rip);
    char row[ROW_MAX + 2 * NW_ADDR_STRLEN + FLOW_MAX], *p = row;
    p = PUT_LIT(p, "{\"id\":");
    p = put_i64(p, c->id);
    p = PUT_LIT(p, ",\"host\":");
    int rc = nw_buf_add(b, row, (size_t)(p - row));
    rc |= nw_buf_add_json_str(b, c->host ? c->host : "", c->host ? strlen(c->host) : 0);
    p = row;
    p = PUT_LIT(p, ",\"pid\":");
    p = put_u64(p, c->pid);
    p = PUT_LIT(p, ",\"proto\":\"");
    p = put_str(p, nw_proto_name(c->proto));
    p = PUT_LIT(p, "\",\"ip_version\":");
    p = put_i64(p, c->ip_version);
    p = PUT_LIT(p, ",\"direction\":\"");
    p = put_str(p, nw_direction_name(c->direction));
    p = PUT_LIT(p, "\",\"local_ip\":\"");
    p = put_str(p, lip);
    p = PUT_LIT(p, "\",\"local_port\":");
    p = put_u64(p, c->local_port);
    p = PUT_LIT(p, ",\"remote_ip\":\"");
    p = put_str(p, rip);
    p = PUT_LIT(p, "\",\"remote_port\":");
    p = put_u64(p, c->remote_port);
    p = PUT_LIT(p, ",\"first_seen\":");
    p = put_time(p, c->first_seen, 1);
    p = PUT_LIT(p, ",\"last_seen\":");
    p = put_time(p, c->last_seen, 1);
    p = PUT_LIT(p, ",\"state\":\"");
    p = put_str(p, nw_state_name(c->state));
    p = PUT_LIT(p, "\",\"bytes_sent\":");
    p = put_u64(p, c->bytes_sent);
    p = PUT_LIT(p, ",\"bytes_received\":");
    p = put_u64(p, c->bytes_received);
    p = PUT_LIT(p, ",\"bytes_retransmitted\":");
    p = put_u64(p, c->bytes_retransmitted);
    p = PUT_LIT(p, ",\"bytes_copied\":");
    p = put_u64(p, c->bytes_copied);
    p = PUT_LIT(p, ",\"send_events\":");
    p = put_u64(p, c->send_events);
    p = PUT_LIT(p, ",\"receive_events\":");
    p = put_u64(p, c->receive_events);
    p = PUT_LIT(p, ",\"retransmit_events\":");
    p = put_u64(p, c->retransmit_events);
    p = PUT_LIT(p, ",\"copy_events\":");
    p = put_u64(p, c->copy_events);
    p = PUT_LIT(p, ",\"reconnects\":");
    p = put_u64(p, c->reconnects);
    p = PUT_LIT(p, ",\"tcp_options\":");
    if (c->has_tcp_opts) {
        p = PUT_LIT(p, "{\"mss\":");
        p = put_u64(p, c->mss);
        p = PUT_LIT(p, ",\"sackopt\":");
        p = put_u64(p, c->sackopt);
        p = PUT_LIT(p, ",\"tsopt\":");
        p = put_u64(p, c->tsopt);
        p = PUT_LIT(p, ",\"wsopt\":");
        p = put_u64(p, c->wsopt);
        p = PUT_LIT(p, ",\"rcvwin\":");
        p = put_u64(p, c->rcvwin);
        p = PUT_LIT(p, ",\"rcvwinscale\":");
        p = put_u64(p, c->rcvwinscale);
        p = PUT_LIT(p, ",\"sndwinscale\":");
        p = put_u64(p, c->sndwinscale);
        p = PUT_LIT(p, "}");
    } else {
        p = PUT_LIT(p, "null");
    }
    char cid[NW_COMMUNITY_ID_STRLEN];
    if (nw_conn_community_id(c, 0, cid, sizeof cid) < 0) {
        p = PUT_LIT(p, ",\"community_id\":null");
    } else {
        p = PUT_LIT(p, ",\"community_id\":\"");
        p = put_str(p, cid);     /* base64: nothing to escape */
        *p++ = '"';
    }
    p = PUT_LIT(p, ",\"local_ip_class\":\"");
    p = put_str(p, nw_addr_class_name(nw_addr_classify(&c->local_ip)));
    p = PUT_LIT(p, "\",\"remote_ip_class\":\"");
    p = put_str(p, nw_addr_class_name(nw_addr_classify(&c->remote_ip)));
    p = PUT_LIT(p, "\",\"process\":");
    rc |= nw_buf_add(b, row, (size_t)(p - row));
    rc |= nw_json_process(b, c->process);
    rc |= nw_buf_adds(b, "}");
    return rc ? -1 : 0;
}

static int json_who(nw_buf *b, const nw_who_row *w)
{
    int rc = nw_buf_add(b, "{\"host\":", 8);
    rc |= nw_buf_add_json_str(b, w->host, strlen(w->host));
    char row[ROW_MAX], *p = row;
    p = PUT_LIT(p, ",\"pid\":");
    p = put_u64(p, w->pid);
    p = PUT_LIT(p, ",\"connections\":");
    p = put_u64(p, w->connections);
    p = PUT_LIT(p, ",\"bytes_sent\":");
    p = put_u64(p, w->bytes_sent);
    p = PUT_LIT(p, ",\"bytes_received\":");
    p = put_u64(p, w->bytes_received);
    p = PUT_LIT(p, ",\"first_seen\":");
    p = put_time(p, w->first_seen, 1);
    p = PUT_LIT(p, ",\"last_seen\":");
    p = put_time(p, w->last_seen, 1);
    *p++ = '}';
    rc |= nw_buf_add(b, row, (size_t)(p - row));
    return rc ? -1 : 0;
}

/* An hourly row's remote address as text (IPv4 unmapped). */
static void hourly_ip(const nw_hourly_row *h, char out[NW_ADDR_STRLEN])
{
    nw_addr_format(&h->remote_ip, nw_addr_is_v4(&h->remote_ip) ? 4 : 6, out, NW_ADDR_STRLEN);
}

static int json_hourly(nw_buf *b, const nw_hourly_row *h)
{
    char ip[NW_ADDR_STRLEN];
    hourly_ip(h, ip);
    int rc = nw_buf_adds(b, "{\"hour\":");
    rc |= h->hour == NW_TIME_MIN ? nw_buf_adds(b, "null") : add_time(b, h->hour, 1);
    rc |= nw_buf_adds(b, ",\"host\":");
    rc |= nw_buf_add_json_str(b, h->host, strlen(h->host));
    rc |= nw_buf_addf(b,
                      ",\"pid\":%" PRIu32 ",\"remote_ip\":\"%s\",\"remote_port\":%u"
                      ",\"connections\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
                      ",\"bytes_received\":%" PRIu64 "}",
                      h->pid, ip, (unsigned)h->remote_port, h->connections, h->bytes_sent,
                      h->bytes_received);
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
    "community_id,local_ip_class,remote_ip_class," NW_CSV_PROCESS_HEADER "\r\n",
    "host,pid,connections,bytes_sent,bytes_received,first_seen,last_seen\r\n",
    "time,bytes_sent,bytes_received,bytes_retransmitted,send_events,receive_events,"
    "retransmit_events\r\n",
    "time,host,event_id,proto,fail_proto,fail_code\r\n",
    "hour,host,pid,remote_ip,remote_port,connections,bytes_sent,bytes_received\r\n",
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
    char cid[NW_COMMUNITY_ID_STRLEN];
    rc |= nw_buf_add(b, ",", 1);
    if (nw_conn_community_id(c, 0, cid, sizeof cid) >= 0)
        rc |= nw_buf_add(b, cid, NW_COMMUNITY_ID_LEN);   /* no CSV specials */
    rc |= nw_buf_add(b, ",", 1);
    rc |= nw_buf_adds(b, nw_addr_class_name(nw_addr_classify(&c->local_ip)));
    rc |= nw_buf_add(b, ",", 1);
    rc |= nw_buf_adds(b, nw_addr_class_name(nw_addr_classify(&c->remote_ip)));
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

static int csv_hourly(nw_buf *b, const nw_hourly_row *h)
{
    char ip[NW_ADDR_STRLEN];
    hourly_ip(h, ip);
    int rc = h->hour == NW_TIME_MIN ? 0 : add_time(b, h->hour, 0);
    rc |= nw_buf_add(b, ",", 1);
    rc |= csv_str(b, h->host);
    rc |= nw_buf_addf(b, ",%" PRIu32 ",%s,%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\r\n", h->pid,
                      ip, (unsigned)h->remote_port, h->connections, h->bytes_sent,
                      h->bytes_received);
    return rc ? -1 : 0;
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
    "HOUR                         HOST                     PID    REMOTE                          "
    "           CONNS    SENT         RECEIVED\n",
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

static int table_hourly(nw_buf *b, const nw_hourly_row *h)
{
    char ip[NW_ADDR_STRLEN], ts[NW_TIME_STRLEN] = "total";
    char r[NW_ADDR_STRLEN + 10];
    hourly_ip(h, ip);
    snprintf(r, sizeof r, nw_addr_is_v4(&h->remote_ip) ? "%s:%u" : "[%s]:%u", ip,
             (unsigned)h->remote_port);
    if (h->hour != NW_TIME_MIN)
        nw_time_format(h->hour, ts, sizeof ts);
    return nw_buf_addf(b, "%-28s %-24.24s %-6" PRIu32 " %-46s %-8" PRIu64 " %-12" PRIu64
                       " %" PRIu64 "\n",
                       ts, h->host, h->pid, r, h->connections, h->bytes_sent,
                       h->bytes_received);
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
int nw_enc_hourly(nw_enc *e, const nw_hourly_row *h)
{
    ENC_ROW(e, h, json_hourly, csv_hourly, table_hourly);
}

int nw_enc_end(nw_enc *e)
{
    if (e->format == NW_FMT_JSON)
        return nw_buf_adds(e->out, "]\n");
    return 0;
}
