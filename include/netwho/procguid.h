/*
 * procguid.h -- a Sysmon-style ProcessGuid for a process that has none.
 *
 * Sysmon names a process {MMMMMMMM-TTTT-TTTT-KKKK-KKKKKKKKKKKK} (a GUID in
 * Windows' text form, upper-case hex), read from real events
 * (../shared/data/sysmon_*.jsonl):
 *   Data1  machine part: the same for every process of a machine;
 *   Data2, Data3  the process creation time in seconds since 1970 as a
 *          32-bit number stored little-endian across the two: Data2 is the
 *          low 16 bits, Data3 the high ({6004D249-AFAB-604D-...} was created
 *          at 0x604DAFAB = 2021-03-14 06:39:39 UTC, its event 1 says
 *          06:39:39.829);
 *   Data4  the process start key as 8 little-endian bytes: consecutive
 *          processes end 2327-000000000900, 2427-..., 2527-... (sequence
 *          0x2723, 0x2724, 0x2725; boot id 9 in the top 16 bits).
 * netwho derives the same shape:
 *   machine part  the first 4 bytes of SHA-1 of the host name in ASCII
 *                 lower case (Windows names are case-insensitive), as
 *                 Sysmon's machine GUID is not in Kernel-Network events;
 *   time          create_time, seconds (1970..2106);
 *   start key     nw_process.sequence (Kernel-Process's
 *                 ProcessSequenceNumber; a full start key fits too) when
 *                 not 0; else 0xFF << 56 | (sub-second 100 ns ticks of
 *                 create_time) << 32 | pid -- exact, so two holders of one
 *                 PID differ unless created in the same 100 ns, and the
 *                 0xFF top byte (a boot id no machine reaches) keeps it
 *                 apart from a sequence-number key.
 * One process always gets one GUID (every connection of it agrees); a
 * reused PID gets another.  Leaf module (C library and Nettle).
 */
#ifndef NETWHO_PROCGUID_H
#define NETWHO_PROCGUID_H

#include <stddef.h>

#include "netwho/process.h"

/* "{" 8 "-" 4 "-" 4 "-" 4 "-" 12 "}" */
#define NW_PROCESS_GUID_LEN 38

/*
 * Writes p's derived GUID, NUL-terminated, into out (cap >= NW_GUID_MAX);
 * p->guid is not looked at (the caller prefers a logged one).
 * Returns NW_PROCESS_GUID_LEN, or -1 (out is "" if cap > 0) if p->host is
 * NULL, create_time is outside 1970-01-01 .. 2106-02-07 (32-bit seconds),
 * or cap is too small.
 */
int nw_process_guid(const nw_process *p, char *out, size_t cap);

#endif
