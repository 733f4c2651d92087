/*
 * addrclass.c -- address classes by range tables (see addrclass.h).
 */
#include "netwho/addrclass.h"

#include <string.h>

typedef struct range {
    uint8_t prefix[4];           /* leading bytes; bits past len are zero */
    uint8_t len;                 /* prefix length in bits                 */
    uint8_t cls;
} range;

/* First match wins: order as in addrclass.h. */
static const range v4_ranges[] = {
    {{0, 0, 0, 0}, 32, NW_ACLASS_UNSPECIFIED},
    {{127, 0, 0, 0}, 8, NW_ACLASS_LOOPBACK},
    {{169, 254, 0, 0}, 16, NW_ACLASS_LINK_LOCAL},
    {{224, 0, 0, 0}, 4, NW_ACLASS_MULTICAST},
    {{255, 255, 255, 255}, 32, NW_ACLASS_BROADCAST},
    {{10, 0, 0, 0}, 8, NW_ACLASS_PRIVATE},
    {{172, 16, 0, 0}, 12, NW_ACLASS_PRIVATE},
    {{192, 168, 0, 0}, 16, NW_ACLASS_PRIVATE},
    {{100, 64, 0, 0}, 10, NW_ACLASS_PRIVATE},
};

/* IPv6 prefixes here are at most 16 bits; :: and ::1 are checked whole. */
static const range v6_ranges[] = {
    {{0xfe, 0x80}, 10, NW_ACLASS_LINK_LOCAL},
    {{0xff, 0x00}, 8, NW_ACLASS_MULTICAST},
    {{0xfc, 0x00}, 7, NW_ACLASS_PRIVATE},
    {{0xfe, 0xc0}, 10, NW_ACLASS_PRIVATE},
};

static int prefix_match(const uint8_t *b, const range *r)
{
    int bits = r->len;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((b[i] & mask) != r->prefix[i])
            return 0;
    }
    return 1;
}

/* The class of the first of ranges[0..n) that b starts with; public if
 * none. */
static nw_addr_class first_match(const uint8_t *b, const range *ranges, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (prefix_match(b, &ranges[i]))
            return (nw_addr_class)ranges[i].cls;
    return NW_ACLASS_PUBLIC;
}

#define COUNT(a) (sizeof a / sizeof a[0])

nw_addr_class nw_addr_classify(const nw_addr *a)
{
    if (nw_addr_is_v4(a))
        return first_match(a->b + 12, v4_ranges, COUNT(v4_ranges));
    static const uint8_t zero[15] = {0};
    if (memcmp(a->b, zero, 15) == 0) {
        if (a->b[15] == 0)
            return NW_ACLASS_UNSPECIFIED;
        if (a->b[15] == 1)
            return NW_ACLASS_LOOPBACK;
    }
    return first_match(a->b, v6_ranges, COUNT(v6_ranges));
}

static const char *const class_names[NW_ACLASS__COUNT] = {
    "public", "private", "loopback", "link-local", "multicast", "broadcast", "unspecified"};

const char *nw_addr_class_name(nw_addr_class c)
{
    return (unsigned)c < NW_ACLASS__COUNT ? class_names[c] : "public";
}

int nw_addr_class_from_name(const char *s)
{
    for (int i = 0; s && i < NW_ACLASS__COUNT; i++)
        if (strcmp(s, class_names[i]) == 0)
            return i;
    return -1;
}
