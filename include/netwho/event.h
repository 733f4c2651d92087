/*
 * event.h -- one decoded Microsoft-Windows-Kernel-Network event.
 *
 * The decoder (decode.h) fills it from the provider's JSON; the tracker
 * (tracker.h) folds it into connections.  Addresses are already resolved to
 * the local and the remote end (see decode.h for the rule), so nothing after
 * the decoder ever looks at saddr/daddr again.
 */
#ifndef NETWHO_EVENT_H
#define NETWHO_EVENT_H

#include <stdint.h>

#include "netwho/addr.h"
#include "netwho/nwtime.h"

/* Windows computer names are at most 255 bytes (DNS FQDN limit). */
#define NW_HOST_MAX 256

/* What an event does to a connection; one value per opcode of the provider. */
typedef enum nw_event_kind {
    NW_EV_SEND = 0,    /* 10, 26, 42, 58  size bytes transmitted            */
    NW_EV_RECV,        /* 11, 27, 43, 59  size bytes received               */
    NW_EV_CONNECT,     /* 12, 28          connection attempted (outbound)   */
    NW_EV_CLOSE,       /* 13, 29          connection closed                 */
    NW_EV_RETRANSMIT,  /* 14, 30          size bytes retransmitted          */
    NW_EV_ACCEPT,      /* 15, 31          connection established (inbound)  */
    NW_EV_RECONNECT,   /* 16, 32          reconnect attempt                 */
    NW_EV_FAIL,        /* 17, 49          connection attempt failed         */
    NW_EV_COPY,        /* 18, 34          bytes copied on behalf of user    */
    NW_EV__COUNT
} nw_event_kind;

/* IANA protocol numbers, as stored. */
#define NW_PROTO_TCP 6
#define NW_PROTO_UDP 17

typedef struct nw_event {
    nw_time time;            /* system.time_created, UTC, 100 ns          */
    uint16_t event_id;       /* 10..59                                    */
    uint8_t kind;            /* nw_event_kind                             */
    uint8_t proto;           /* NW_PROTO_TCP or NW_PROTO_UDP              */
    uint8_t ip_version;      /* 4 or 6, from the event id                 */
    uint8_t has_tcp_opts;    /* connect/accept: the option fields are set */
    uint8_t has_times;       /* send: startime/endtime are set            */
    uint32_t pid;            /* event_data.PID -- never the header's      */
    uint32_t size;           /* bytes (0 where the event has no size)     */
    nw_addr local_ip, remote_ip;
    uint16_t local_port, remote_port;
    /* TCP options of connect/accept (has_tcp_opts). */
    uint16_t mss, sackopt, tsopt, wsopt, rcvwinscale, sndwinscale;
    uint32_t rcvwin;
    /* Send events carry the kernel's start/end timestamps (has_times). */
    uint32_t startime, endtime;
    uint32_t seqnum, connid;
    /* Failure events (17/49) carry no address and no PID: only these. */
    uint16_t fail_proto;     /* Proto: 2 = AF_INET, 23 = AF_INET6          */
    uint16_t fail_code;      /* FailureCode, raw                          */
    char host[NW_HOST_MAX];  /* system.computer, else --host, else unknown */
} nw_event;

/* Stable lower-case name of a kind ("send", "accept", ...). */
const char *nw_event_kind_name(int kind);

#endif
