/*
 * decode.h -- one JSON event text to an nw_event, or a reason it is rejected.
 *
 * Input is the envelope of the provider's JSON rendering:
 *   {"system": {"provider", "event_id", "time_created", "computer",
 *               "execution": {"process_id"}, ...},
 *    "event_data": {"PID", "size", "saddr", "daddr", "sport", "dport", ...},
 *    "message": ""}
 * Numbers may be JSON numbers or strings padded with spaces ("    4168").
 * "keywords" exceeds 2^63 and is never read; IPv4 vs IPv6 comes from the
 * event id.  The owning process is event_data.PID: system.execution.
 * process_id is the thread context that logged the event (often 0 or 4).
 *
 * Which end is local -- worked out from the real events of the seed:
 *   TCP, every event id (10-16, 18, 26-32, 34): saddr:sport is the LOCAL end
 *     and daddr:dport the remote one, whatever the direction of the bytes.
 *     A send (10) and a receive (11) of one flow carry the same tuple
 *     (10.2.10.21:50993 -> 10.2.20.41:5044 both); an accept (15) has the
 *     listener (:5985, WinRM) in saddr and the client in daddr; a connect
 *     (12) has the ephemeral client port in saddr.
 *   UDP send (42, 58): saddr:sport is local (DNS query 10.2.10.21:53893 ->
 *     10.2.10.11:53).
 *   UDP receive (43, 59): daddr:dport is LOCAL and saddr:sport remote:
 *     the answer to that query arrives as saddr 10.2.10.11:53 daddr
 *     10.2.10.21:53893, and event 59 is PID 2680 (the DNS server) receiving
 *     on ::1:53 from ::1:52668 with saddr ::1:52668.
 *   So UDP names the packet's sender in saddr and TCP names the socket.
 *
 * How: a scanner reads the fields of a plain event straight from the text
 * without allocating (collector/scan.h); anything it does not handle, and
 * every rejection, is decoded with cJSON, so reasons and detail sentences
 * are the same whichever path an event takes.
 *
 * Thread safety: nw_decode_event is reentrant; call it from many threads.
 */
#ifndef NETWHO_DECODE_H
#define NETWHO_DECODE_H

#include <stddef.h>

#include "netwho/event.h"

/* Why an event was not accepted.  Names (nw_reject_name) are part of the
 * output contract: scripts read them from rejected_by_reason. */
typedef enum nw_reject {
    NW_ACCEPTED = 0,
    NW_REJ_BAD_JSON,          /* "bad_json": not parseable JSON            */
    NW_REJ_TRUNCATED,         /* "truncated": input ended inside an object */
    NW_REJ_TOO_LARGE,         /* "too_large": over NW_EVENT_MAX_BYTES      */
    NW_REJ_NOT_OBJECT,        /* "not_object": JSON, but not an object     */
    NW_REJ_NO_SYSTEM,         /* "missing_system"                          */
    NW_REJ_NO_EVENT_DATA,     /* "missing_event_data"                      */
    NW_REJ_UNKNOWN_PROVIDER,  /* "unknown_provider"                        */
    NW_REJ_UNKNOWN_EVENT_ID,  /* "unknown_event_id"                        */
    NW_REJ_BAD_TIME,          /* "bad_time": time_created missing/invalid  */
    NW_REJ_BAD_PID,           /* "bad_pid"                                 */
    NW_REJ_BAD_SIZE,          /* "bad_size"                                */
    NW_REJ_BAD_ADDRESS,       /* "bad_address"                             */
    NW_REJ_BAD_PORT,          /* "bad_port"                                */
    NW_REJ_BAD_FIELD,         /* "bad_field": another field not a number   */
    NW_REJ__COUNT
} nw_reject;

/* One event's JSON text may be at most this long: a real event is under
 * 2 KiB; a megabyte line is an attack or a framing accident. */
#define NW_EVENT_MAX_BYTES (1024 * 1024)

/* Room for nw_decode_event's detail sentence. */
#define NW_DETAIL_MAX 160

const char *nw_reject_name(nw_reject r);

/*
 * Decodes json[0..len) (one object, not NUL-terminated) into *out.
 * default_host is used where system.computer is empty or absent (NULL or ""
 * means "unknown").  On rejection returns the reason and, if detail is not
 * NULL, writes a short sentence naming the field ("event_data.size is not a
 * number: \"abc\"").  *out is fully written on NW_ACCEPTED only.
 */
nw_reject nw_decode_event(const char *json, size_t len, const char *default_host,
                          nw_event *out, char *detail, size_t detail_cap);

#endif
