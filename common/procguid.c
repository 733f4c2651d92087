/*
 * procguid.c -- Sysmon-style ProcessGuid (see procguid.h for the layout).
 */
#include "netwho/procguid.h"

#include <stdio.h>
#include <string.h>

#include <nettle/sha1.h>

static uint32_t machine_part(const char *host)
{
    struct sha1_ctx ctx;
    uint8_t d[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    for (const char *h = host; *h; h++) {
        uint8_t c = (uint8_t)*h;
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        sha1_update(&ctx, 1, &c);
    }
    sha1_digest(&ctx, sizeof d, d);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

int nw_process_guid(const nw_process *p, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (cap < NW_GUID_MAX || !p->host || p->create_time < 0)
        return -1;
    int64_t secs = p->create_time / NW_TICKS_PER_SEC;
    if (secs > UINT32_MAX)
        return -1;
    uint32_t t = (uint32_t)secs;
    uint64_t key = p->sequence;
    if (key == 0)
        key = 0xFFULL << 56 | (uint64_t)(p->create_time % NW_TICKS_PER_SEC) << 32 | p->pid;
    uint8_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(key >> (8 * i));
    int n = snprintf(out, cap, "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
                     machine_part(p->host), t & 0xffff, t >> 16, k[0], k[1], k[2], k[3],
                     k[4], k[5], k[6], k[7]);
    return n == NW_PROCESS_GUID_LEN ? n : -1;
}
