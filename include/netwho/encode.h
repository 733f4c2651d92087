/*
 * encode.h -- connections, processes, transfers and failures as text.
 *
 * One encoder serves the command line and the server: it appends rows to an
 * nw_buf, which the caller drains after each row (to stdout, or to an HTTP
 * response stream), so output of any size is produced in constant memory.
 *
 * Formats:
 *   json     a JSON array of objects (the caller may wrap it: the server puts
 *            it under "data");
 *   ndjson   one JSON object per line;
 *   csv      RFC 4180, a header row of the JSON field names (nested
 *            tcp_options flattened to tcp_mss, tcp_sackopt, ...);
 *   table    aligned columns for a terminal, a subset of the fields.
 * Connection objects carry these keys, in this order (scripts depend on
 * them): id, host, pid, proto, ip_version, direction, local_ip, local_port,
 * remote_ip, remote_port, first_seen, last_seen, state, bytes_sent,
 * bytes_received, bytes_retransmitted, bytes_copied, send_events,
 * receive_events, retransmit_events, copy_events, reconnects, tcp_options,
 * community_id, local_ip_class, remote_ip_class, process.  community_id is
 * the connection's Community ID v1 with seed 0 (flowid.h; null, and empty
 * in CSV, only if its addresses cannot be hashed); the classes are
 * nw_addr_class_name of each end (addrclass.h).  process is null or {image,
 * name, create_time, parent_pid, parent_image, user, command_line, guid}
 * (each null where unknown); CSV flattens it to the NW_CSV_PROCESS_HEADER
 * columns (empty where unknown).
 */
#ifndef NETWHO_ENCODE_H
#define NETWHO_ENCODE_H

#include "netwho/buf.h"
#include "netwho/conn.h"
#include "netwho/hourly.h"
#include "netwho/query.h"

typedef enum nw_format {
    NW_FMT_JSON = 0,
    NW_FMT_NDJSON,
    NW_FMT_CSV,
    NW_FMT_TABLE
} nw_format;

/* "json", "ndjson", "csv", "table" -> the format; -1 if unknown. */
int nw_format_from_name(const char *s);
const char *nw_format_name(nw_format f);

typedef enum nw_record {
    NW_REC_CONN = 0,
    NW_REC_WHO,
    NW_REC_TRANSFER,
    NW_REC_FAILURE,
    NW_REC_HOURLY      /* hourly.h rows: hour, host, pid, remote_ip,
                          remote_port, connections, bytes_sent,
                          bytes_received (hour null / empty in a total) */
} nw_record;

typedef struct nw_enc {
    nw_format format;
    nw_record record;
    nw_buf *out;
    unsigned long rows;
} nw_enc;

/* Starts a list of records (writes "[" or the CSV/table header). */
int nw_enc_begin(nw_enc *e, nw_format f, nw_record r, nw_buf *out);
/* One record of the kind given to begin.  0, or -1 if out is full. */
int nw_enc_conn(nw_enc *e, const nw_conn *c);
int nw_enc_who(nw_enc *e, const nw_who_row *w);
int nw_enc_transfer(nw_enc *e, const nw_transfer *t);
int nw_enc_failure(nw_enc *e, const nw_failure *f);
int nw_enc_hourly(nw_enc *e, const nw_hourly_row *h);
/* Ends the list ("]" for json; nothing for the others). */
int nw_enc_end(nw_enc *e);

/* One connection as a JSON object (no framing), for single-object answers. */
int nw_json_conn(nw_buf *b, const nw_conn *c);

struct nw_process;

/* CSV columns of a connection's process, after remote_ip_class. */
#define NW_CSV_PROCESS_HEADER                                                 \
    "process_image,process_name,process_create_time,process_parent_pid,"      \
    "process_parent_image,process_user,process_command_line,process_guid"

/* p as the connection's "process" value: an object, or null (p NULL). */
int nw_json_process(nw_buf *b, const struct nw_process *p);
/* p as the NW_CSV_PROCESS_HEADER columns, each preceded by a comma. */
int nw_csv_process(nw_buf *b, const struct nw_process *p);

#endif
