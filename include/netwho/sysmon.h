/*
 * sysmon.h -- connections as Sysmon Event ID 3 (network connection) and as
 * Elastic Common Schema documents, for the tools a SOC already runs.
 *
 * Like encode.h, an encoder appends one event per call to an nw_buf that
 * the caller drains, so an export of any size runs in constant memory.
 *
 * Formats:
 *   xml     the Event XML Sysmon writes (namespace, System block, EventData
 *           with the 18 Data elements in Sysmon's order), one <Event> per
 *           line inside <Events>...</Events> -- the root Event Viewer's
 *           "Save as XML" writes -- so the file is one well-formed document;
 *   json    a JSON array of flat objects keyed by Sysmon's names, the values
 *           strings exactly as in the XML (as Winlogbeat-style exports ship
 *           them), plus EventID, Computer, EventRecordID, TimeCreated and
 *           community_id; with opts.ossem also the OSSEM standard names
 *           (src_ip, dst_port, process_name, ...) with typed values
 *           (numbers, booleans, null for unknown);
 *   ndjson  the json objects, one per line;
 *   ecs     NDJSON of Elastic Common Schema documents (source.*,
 *           destination.*, network.*, process.*, user.*, event.*, host.name);
 *           with opts.ecs_bulk each is preceded by a bulk action line
 *           {"create":{}} so the output is an Elasticsearch _bulk body.
 *
 * How values are rendered (from the real events in ../shared/data/ and
 * docs/design.md):
 *   Source / Destination  the initiator is Source: outbound (connect, or a
 *           UDP flow that began with a send) has the local end as Source and
 *           Initiated "true"; inbound (accept, or UDP that began with a
 *           receive) has the remote end as Source and Initiated "false".  A
 *           connection of unknown direction (its opening was not seen) is
 *           oriented by its ports: the end whose port has a service name
 *           (and the other not) is the Destination, else the end with the
 *           lower port; Initiated follows.  The ECS export keeps
 *           network.direction "unknown" for these;
 *   addresses  IPv4 dotted quad; IPv6 uncompressed, lower case, no leading
 *           zeros ("0:0:0:0:0:0:0:1", "fe80:0:0:0:b14f:e9ef:a6b2:f79f");
 *   host names  the local end's is the connection's host (Sysmon resolves
 *           it to the computer's name); the remote end's is "-": netwho does
 *           no reverse DNS.  opts.no_hostnames makes both "-";
 *   port names  services.h; "-" when the port has none, and for every port
 *           with opts.no_port_names (Sysmon 13+ with lookups off writes "-");
 *   UtcTime and TimeCreated  the connection's first_seen;
 *   EventRecordID  the connection's id (unique in the store, and the same
 *           in every export of the connection);
 *   Execution  opts.exporter_pid / exporter_tid: the process writing the
 *           export, never the connection's (that is ProcessId);
 *   Security UserID  "S-1-5-18" (Sysmon runs as SYSTEM); RuleName "-";
 *   process  ProcessGuid is p->guid, else derived by nw_process_guid; Image
 *           and User from p; any unknown value (and all of them when p is
 *           NULL) is "-".
 * Everything is escaped for its format; bytes that are not UTF-8 (or not
 * allowed in XML 1.0) become U+FFFD.
 */
#ifndef NETWHO_SYSMON_H
#define NETWHO_SYSMON_H

#include <stdint.h>

#include "netwho/buf.h"
#include "netwho/conn.h"
#include "netwho/flowid.h"
#include "netwho/process.h"
#include "netwho/store.h"

typedef enum nw_sysmon_format {
    NW_SYSMON_XML = 0,
    NW_SYSMON_JSON,
    NW_SYSMON_NDJSON,
    NW_SYSMON_ECS
} nw_sysmon_format;

/* "xml", "json", "ndjson", "ecs" -> the format; -1 if unknown. */
int nw_sysmon_format_from_name(const char *s);
const char *nw_sysmon_format_name(nw_sysmon_format f);

typedef struct nw_sysmon_opts {
    uint32_t exporter_pid;      /* Execution ProcessID                      */
    uint32_t exporter_tid;      /* Execution ThreadID                       */
    int ossem;                  /* json/ndjson: add the OSSEM names         */
    int ecs_bulk;               /* ecs: a bulk action line before each doc  */
    const char *ecs_index;      /* with ecs_bulk: its _index, or NULL       */
    int no_port_names;          /* every port name "-"                      */
    int no_hostnames;           /* every host name "-"                      */
    uint16_t community_id_seed; /* 0 unless agreed otherwise                */
} nw_sysmon_opts;

/* Longest address text written: 8 groups of 4 hex digits and 7 colons. */
#define NW_SYSMON_IP_MAX 40

/* One connection's Event ID 3 values, as text (for the encoders and for
 * anyone who wants the fields).  Borrowed pointers live as long as the
 * connection and process given to nw_sysmon_fields. */
typedef struct nw_sysmon_event {
    char utc_time[24];          /* "2021-03-14 06:39:30.227", or "-"        */
    char system_time[32];       /* "2021-03-14T06:39:30.227123400Z", or ""  */
    char process_guid[NW_GUID_MAX];   /* or "-"                             */
    uint32_t process_id;
    const char *image;          /* p->image or "-"                          */
    const char *user;           /* p->user or "-"                           */
    const char *protocol;       /* "tcp" / "udp"                            */
    int initiated;              /* 1: "true"                                */
    int is_ipv6;                /* SourceIsIpv6 and DestinationIsIpv6       */
    int source_is_local;        /* which end was put in Source              */
    char source_ip[NW_SYSMON_IP_MAX], destination_ip[NW_SYSMON_IP_MAX];
    const char *source_hostname, *destination_hostname;   /* or "-"        */
    uint16_t source_port, destination_port;
    const char *source_port_name, *destination_port_name; /* or "-"        */
    char community_id[NW_COMMUNITY_ID_STRLEN];            /* or ""         */
} nw_sysmon_event;

/* Fills *ev from c and p (p may be NULL) as the rules above say. */
void nw_sysmon_fields(const nw_conn *c, const nw_process *p, const nw_sysmon_opts *o,
                      nw_sysmon_event *ev);

typedef struct nw_sysmon_enc {
    nw_sysmon_format format;
    nw_sysmon_opts opts;        /* a copy; ecs_index is borrowed            */
    nw_buf *out;                /* may be swapped between calls             */
    unsigned long rows;
} nw_sysmon_enc;

/* Starts a list (writes the XML declaration and <Events>, or "[").
 * o may be NULL (all options off, Execution 0/0).  0, or -1 if out is full. */
int nw_sysmon_begin(nw_sysmon_enc *e, nw_sysmon_format f, const nw_sysmon_opts *o,
                    nw_buf *out);
/* One connection with its process (NULL: not known).  0, or -1 if out is
 * full (the buffer then holds a partial event: treat it as fatal). */
int nw_sysmon_conn(nw_sysmon_enc *e, const nw_conn *c, const nw_process *p);
/* Ends the list ("</Events>", "]", nothing for ndjson/ecs). */
int nw_sysmon_end(nw_sysmon_enc *e);

/*
 * THE hook of process attribution for the exports: the process that held
 * c->pid on c->host at c->first_seen, or NULL.  May fill *scratch and return
 * it; the result is valid until the next call with the same scratch.
 * The query engine already attributes every connection it yields
 * (nw_query_connections, procstore.h), so this returns c->process; it stays
 * the one place the CLI export and /api/v1/export/sysmon ask, should
 * exports ever need another source.
 */
const nw_process *nw_sysmon_process_for(nw_store *store, const nw_conn *c,
                                        nw_process *scratch);

#endif
