/*
 * procevent.h -- process events: what the decoders of Kernel-Process and
 * Sysmon hand to the store's process table, and the decoder of any record.
 *
 * Shapes recognised (nw_decode_record tries them in this order):
 *   1. Microsoft-Windows-Kernel-Network in the ETW envelope (decode.h):
 *      an nw_event only.  This is the hot path and is untouched: the other
 *      shapes are only looked at when decode.h rejects a text as
 *      missing_system or unknown_provider.
 *   2. Microsoft-Windows-Kernel-Process in the same envelope:
 *        1  ProcessStart   ProcessID, ProcessSequenceNumber, CreateTime,
 *                          ParentProcessID, SessionID, ImageName
 *                          (\Device\HarddiskVolumeN\...)
 *        2  ProcessStop    ProcessID, ProcessSequenceNumber, CreateTime,
 *                          ExitTime, ExitCode, ImageName (an AnsiString:
 *                          the short image file name only)
 *        15 ProcessRundown as ProcessStart, for processes already running
 *                          when the trace started
 *      system.execution.process_id of a start is the PARENT (the thread
 *      that created it), never the process.  Any other event id of the
 *      provider is unknown_event_id.
 *   3. Sysmon events 1 (process create), 3 (network connection) and 5
 *      (process terminated), either flat as nxlog and Winlogbeat-style
 *      exports write them (EventID, Hostname, UtcTime, ProcessGuid,
 *      ProcessId, Image, ... at the top level, or under winlog.event_data)
 *      or in the ETW envelope with provider Microsoft-Windows-Sysmon.
 *      Field names are matched case-SENSITIVELY: nxlog's "ProcessID" is
 *      the Sysmon service's own pid, "ProcessId" the event's.  A field that
 *      is absent, "" or "-" is looked up in the Message text ("Key: value"
 *      lines), and unknown if not there either.
 *      A Sysmon 3 gives an nw_event (Initiated true: a connect (TCP) or a
 *      send (UDP) with Source as the local end; false: an accept or a
 *      receive with Destination as the local end) AND a process event.
 *
 * Thread safety: reentrant, like nw_decode_event.
 */
#ifndef NETWHO_PROCEVENT_H
#define NETWHO_PROCEVENT_H

#include <stddef.h>

#include "netwho/decode.h"
#include "netwho/event.h"
#include "netwho/process.h"

/* Where a process event came from (values are stored nowhere). */
typedef enum nw_proc_source {
    NW_PSRC_KP_START = 1,        /* Kernel-Process 1  */
    NW_PSRC_KP_STOP = 2,         /* Kernel-Process 2  */
    NW_PSRC_KP_RUNDOWN = 15,     /* Kernel-Process 15 */
    NW_PSRC_SYSMON_CREATE = 101, /* Sysmon 1          */
    NW_PSRC_SYSMON_NETWORK = 103,/* Sysmon 3          */
    NW_PSRC_SYSMON_EXIT = 105    /* Sysmon 5          */
} nw_proc_source;

/* How precise a create_time is, in ticks: the true creation lies in
 * [create_time, create_time + precision).  The store merges two events of
 * one process by these intervals (store/process.c). */
#define NW_PREC_EXACT 1                        /* Kernel-Process FILETIME   */
#define NW_PREC_MS 10000                       /* Sysmon UtcTime            */
#define NW_PREC_SECOND 10000000                /* from the ProcessGuid      */

/*
 * One decoded process event.  p's strings point into the arrays of this
 * same struct (NULL where unknown), so the struct must not be copied by
 * value; it is malloc'd by nw_decode_record and freed with free().
 */
typedef struct nw_proc_event {
    int source;              /* nw_proc_source                              */
    nw_time time;            /* when it was logged                          */
    nw_time create_prec;     /* NW_PREC_*; 0: create time unknown (a stop
                                whose ProcessGuid carries no time)         */
    int has_exit;            /* p.exit_time is the exit (stop events)       */
    nw_process p;            /* exit_time NW_TIME_MAX unless has_exit       */
    char host[NW_HOST_MAX];
    char image[NW_IMAGE_MAX];
    char parent_image[NW_IMAGE_MAX];
    char user[NW_USER_MAX];
    char guid[NW_GUID_MAX];
    char command_line[NW_CMDLINE_MAX];
} nw_proc_event;

/*
 * Decodes one JSON text of any shape above.  On NW_ACCEPTED: *has_ev is 1
 * if *ev was written (a network event), and *proc is a new process event
 * the caller frees, or NULL.  At least one of the two is set.  On a
 * rejection nothing is allocated, *proc is NULL, and the reason and detail
 * are those of the shape the text looked like (a Kernel-Network event
 * keeps decode.h's reasons exactly).
 */
nw_reject nw_decode_record(const char *json, size_t len, const char *default_host,
                           nw_event *ev, int *has_ev, nw_proc_event **proc,
                           char *detail, size_t detail_cap);

/* A malloc'd copy of pe (its strings re-pointed into the copy), or NULL
 * on ENOMEM.  Free with free(). */
nw_proc_event *nw_proc_event_copy(const nw_proc_event *pe);

/* Seconds since the Unix epoch that a Sysmon ProcessGuid carries
 * ("{machine-LLLL-HHHH-...}": the creation time's low and high 16 bits)
 * as nw_time in *out.  0, or -1 if guid is not of that shape. */
int nw_sysmon_guid_time(const char *guid, nw_time *out);

#endif
