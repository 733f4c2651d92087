/*
 * process.h -- the process that held a PID on a host, as netwho knows it.
 *
 * The shape shared by the decoders of process events (Kernel-Process 1, 2,
 * 15; Sysmon 1 and 3), the store's time-aware process table, the query
 * engine that attributes connections, and the encoders (JSON "process"
 * object, Sysmon Event ID 3, ECS).  Field names mirror the JSON names of the
 * output contract.
 *
 * PIDs are reused within minutes on a busy host, so a process is identified
 * by (host, pid, create_time), never by the PID alone: a connection at time t
 * belongs to the holder whose [create_time, exit_time) contains t.  Anything
 * unknown is NULL / 0 (has_* flags say which numbers are known): an encoder
 * prints null (JSON) or "-" (Sysmon), never a guess.
 */
#ifndef NETWHO_PROCESS_H
#define NETWHO_PROCESS_H

#include <stdint.h>

#include "netwho/nwtime.h"

/* Lengths that real Windows values fit in (MAX_PATH is 260 UTF-16 units,
 * i.e. up to 780 UTF-8 bytes; long paths and command lines are longer and
 * are cut at these bounds by the decoders, which say so in the value). */
#define NW_IMAGE_MAX 1024
#define NW_CMDLINE_MAX 8192
#define NW_USER_MAX 256
#define NW_GUID_MAX 40     /* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" + NUL */

typedef struct nw_process {
    const char *host;          /* NUL-terminated; owned by whoever made it  */
    uint32_t pid;
    nw_time create_time;       /* UTC, 100 ns; always known for a row        */
    nw_time exit_time;         /* NW_TIME_MAX while running / unknown        */
    int has_parent;            /* parent_pid is known                        */
    uint32_t parent_pid;
    int has_session;
    uint32_t session_id;
    uint64_t sequence;         /* ProcessSequenceNumber (start key); 0: none */
    const char *image;         /* as logged: \Device\HarddiskVolumeN\... or
                                  C:\...; NULL if unknown                    */
    const char *parent_image;  /* NULL if unknown                            */
    const char *command_line;  /* NULL if unknown                            */
    const char *user;          /* DOMAIN\user; NULL if unknown               */
    const char *guid;          /* Sysmon ProcessGuid "{...}"; NULL: derive it
                                  with nw_process_guid                       */
} nw_process;

#endif
