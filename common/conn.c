/* conn.c -- names of the enums in conn.h (part of the output contract). */
#include "netwho/conn.h"

#include <string.h>

static const char *const direction_names[] = {"unknown", "outbound", "inbound"};
static const char *const state_names[] = {"attempted", "established", "closed", "failed"};

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *nw_direction_name(int d)
{
    return d >= 0 && d < COUNT(direction_names) ? direction_names[d] : "unknown";
}

const char *nw_state_name(int s)
{
    return s >= 0 && s < COUNT(state_names) ? state_names[s] : "unknown";
}

const char *nw_proto_name(int p)
{
    return p == NW_PROTO_TCP ? "tcp" : p == NW_PROTO_UDP ? "udp" : "unknown";
}

int nw_direction_from_name(const char *s)
{
    return index_of(direction_names, COUNT(direction_names), s);
}

int nw_state_from_name(const char *s)
{
    return index_of(state_names, COUNT(state_names), s);
}

int nw_proto_from_name(const char *s)
{
    if (s && strcmp(s, "tcp") == 0)
        return NW_PROTO_TCP;
    if (s && strcmp(s, "udp") == 0)
        return NW_PROTO_UDP;
    return -1;
}
