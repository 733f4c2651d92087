/*
 * scan.h -- the Kernel-Network envelope's fields straight from the bytes
 * (internal to the collector: decode.c's fast path).
 *
 * cJSON builds a tree of every value (~40 nodes, their strings) only for
 * decode.c to read a dozen of them.  The scanner walks the text once,
 * validates it as JSON and notes where the fields decode.c reads are, with
 * no allocation.  It only answers for text it fully understands: strict
 * JSON whose fields are plain strings (no escapes) or small integers.
 * Anything else -- an escape in a field that is read, a fraction, a control
 * byte, a duplicate or odd root, deep nesting, invalid JSON -- is "not
 * mine" (-1), and decode.c lets cJSON decide, so rejection reasons and
 * their sentences come from one place.  Whatever the scanner accepts,
 * cJSON accepts too and finds the same values (tests/unit/collector/
 * test_scan.c runs both over every test input).
 *
 * scan.c uses the C library only; the two decode entries at the end are
 * decode.c's.  Everything here is reentrant.
 */
#ifndef NETWHO_COLLECTOR_SCAN_H
#define NETWHO_COLLECTOR_SCAN_H

#include <stddef.h>

#include "netwho/decode.h"

/* A field's value, from the scanner or from a cJSON node. */
typedef enum nw_jtype {
    NW_J_ABSENT = 0,   /* not there, or JSON null (null counts as absent) */
    NW_J_STRING,       /* s[0..len): the value, unescaped, no NUL inside  */
    NW_J_NUMBER,       /* num                                             */
    NW_J_TRUE,
    NW_J_FALSE,
    NW_J_OBJECT,
    NW_J_ARRAY
} nw_jtype;

typedef struct nw_jval {
    nw_jtype type;
    const char *s;
    size_t len;
    double num;
} nw_jval;

/* The system fields decode.c reads. */
enum nw_sys_field {
    NW_SYS_PROVIDER, NW_SYS_EVENT_ID, NW_SYS_TIME_CREATED, NW_SYS_COMPUTER,
    NW_SYS__COUNT
};

/* The event_data fields decode.c reads, in slot order. */
enum nw_ed_field {
    F_PID, F_SIZE, F_SADDR, F_DADDR, F_SPORT, F_DPORT,
    F_MSS, F_SACKOPT, F_TSOPT, F_WSOPT, F_RCVWIN, F_RCVWINSCALE, F_SNDWINSCALE,
    F_STARTIME, F_ENDTIME, F_SEQNUM, F_CONNID, F_PROTO, F_FAILURECODE,
    F__COUNT
};

/* Each event_data field's name as the provider spells it. */
extern const char *const NW_ED_NAME[F__COUNT];

/* Slot of a system key k[0..len) (matched case-insensitively), or -1. */
int nw_sys_slot(const char *k, size_t len);

/* Slot of an event_data key k[0..len) (case-insensitively), or -1. */
int nw_ed_slot(const char *k, size_t len);

typedef struct nw_envelope {
    /* As decode.c picks them from cJSON: the first "system" and
     * "event_data" of the root; in system the last non-null value of each
     * field, in event_data the first non-null one. */
    nw_jval sys[NW_SYS__COUNT];
    nw_jval ed[F__COUNT];
} nw_envelope;

/*
 * Scans json[0..len), one JSON object and nothing but whitespace after it.
 * Returns 0 with *env filled if the scanner understood all of it and the
 * root has "system" and "event_data" objects; -1 if not (decode with
 * cJSON).  String values in *env point into json.
 */
int nw_scan_envelope(const char *json, size_t len, nw_envelope *env);

/*
 * The framer's work and the scan in one pass, for text cut at points where
 * a framer would be between frames (pipeline.c): text[0] is a '{' and the
 * object it opens lies on one line.  Returns 0, *env as nw_scan_envelope
 * gives it for that object and *used its length up to its '}' -- the frame
 * a framer (framer.h) emits there, since no '\n' is inside -- or -1: frame
 * it with the framer.
 */
int nw_scan_line_object(const char *text, size_t avail, nw_envelope *env, size_t *used);

/* Decodes the fields of a scanned envelope: NW_ACCEPTED with *out written
 * exactly as nw_decode_event writes it for that text, or anything else if
 * the event is not accepted (then nw_decode_event says why). */
nw_reject nw_decode_scanned(const nw_envelope *env, const char *default_host,
                            nw_event *out);

/* nw_decode_event (decode.h) without the scanner: cJSON only.  The
 * reference the scanner is tested against; not for the hot path. */
nw_reject nw_decode_event_cjson(const char *json, size_t len, const char *default_host,
                                nw_event *out, char *detail, size_t detail_cap);

#endif
