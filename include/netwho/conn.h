/*
 * conn.h -- the records netwho keeps: connections, transfers, failures.
 *
 * These are the shapes shared by the tracker (which makes them), the store
 * (which keeps them) and the api (which prints them).  Field names mirror the
 * JSON names of the output contract.
 */
#ifndef NETWHO_CONN_H
#define NETWHO_CONN_H

#include <stdint.h>

#include "netwho/addr.h"
#include "netwho/event.h"
#include "netwho/nwtime.h"

typedef enum nw_direction {
    NW_DIR_UNKNOWN = 0,
    NW_DIR_OUTBOUND = 1,   /* we saw a connect or reconnect (TCP), or the
                              flow began with a send (UDP)               */
    NW_DIR_INBOUND = 2     /* we saw an accept (TCP), or the flow began
                              with a receive (UDP)                       */
} nw_direction;

typedef enum nw_conn_state {
    NW_STATE_ATTEMPTED = 0,   /* connect seen; no accept, no byte yet     */
    NW_STATE_ESTABLISHED = 1, /* accepted, or bytes moved; still open     */
    NW_STATE_CLOSED = 2,      /* close seen (TCP) or idle timeout (UDP)   */
    NW_STATE_FAILED = 3       /* closed without a byte after >= 1 reconnect
                                 attempt: the peer never answered         */
} nw_conn_state;

typedef struct nw_conn {
    int64_t id;                /* unique in the store, > 0                  */
    const char *host;          /* NUL-terminated; owned by whoever made it  */
    uint32_t pid;
    uint8_t proto;             /* NW_PROTO_TCP / NW_PROTO_UDP               */
    uint8_t ip_version;        /* 4 / 6                                     */
    uint8_t direction;         /* nw_direction                              */
    uint8_t state;             /* nw_conn_state                             */
    nw_addr local_ip, remote_ip;
    uint16_t local_port, remote_port;
    nw_time first_seen, last_seen;
    /* Time that picks the connection's partition: its first_seen when it
     * was first written.  Never changes after, so rewrites of a long-lived
     * connection always land on the same row. */
    nw_time anchor;
    uint64_t bytes_sent, bytes_received, bytes_retransmitted, bytes_copied;
    uint64_t send_events, receive_events, retransmit_events, copy_events;
    uint32_t reconnects;
    uint8_t has_tcp_opts;      /* options of the connect/accept below      */
    uint16_t mss, sackopt, tsopt, wsopt, rcvwinscale, sndwinscale;
    uint32_t rcvwin;
    /* The process that held pid on host at first_seen (procstore.h), set
     * by nw_query_connections / nw_query_connection; NULL if unknown, and
     * in every connection the tracker makes.  Valid as long as c. */
    const struct nw_process *process;
} nw_conn;

/* A connection's traffic in one time bucket (or one event, at raw
 * resolution).  Buckets of one connection never overlap. */
typedef struct nw_transfer {
    int64_t conn_id;
    nw_time time;              /* bucket start (raw: the event's time)     */
    uint64_t bytes_sent, bytes_received, bytes_retransmitted;
    uint32_t send_events, receive_events, retransmit_events;
} nw_transfer;

/* A failed connection attempt (17/49): no address and no PID exist. */
typedef struct nw_failure {
    nw_time time;
    const char *host;
    uint16_t event_id;         /* 17 (TCPv4) or 49 (UDPv4)                  */
    uint8_t proto;             /* NW_PROTO_TCP / NW_PROTO_UDP (from the id) */
    uint16_t fail_proto;       /* Proto as given: 2 = IPv4, 23 = IPv6       */
    uint16_t fail_code;        /* FailureCode as given                      */
} nw_failure;

const char *nw_direction_name(int d);     /* "outbound", ...            */
const char *nw_state_name(int s);         /* "attempted", ...           */
const char *nw_proto_name(int p);         /* "tcp", "udp"               */
/* Inverse of the three above; -1 for an unknown name. */
int nw_direction_from_name(const char *s);
int nw_state_from_name(const char *s);
int nw_proto_from_name(const char *s);

#endif
