/*
 * services.c -- the built-in service-name table (see services.h).
 */
#include "netwho/services.h"

#include <stddef.h>

#include "netwho/event.h"

typedef struct service {
    uint16_t port;
    uint8_t proto;
    const char *name;
} service;

static const service services[] = {
#include "services_table.inc"
};

const char *nw_service_name(uint16_t port, uint8_t proto)
{
    size_t lo = 0, hi = sizeof services / sizeof services[0];
    while (lo < hi) {                     /* sorted by (port, proto) */
        size_t mid = lo + (hi - lo) / 2;
        const service *s = &services[mid];
        if (s->port < port || (s->port == port && s->proto < proto))
            lo = mid + 1;
        else if (s->port == port && s->proto == proto)
            return s->name;
        else
            hi = mid;
    }
    return NULL;
}
