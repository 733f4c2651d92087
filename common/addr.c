/*
 * addr.c -- one 16-byte form for IPv4 and IPv6 (see addr.h for why).
 */
#include "netwho/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Copies s[0..len) without surrounding spaces into buf (NUL-terminated).
 * -1 if nothing is left or it does not fit. */
static int trimmed_copy(const char *s, size_t len, char *buf, size_t cap)
{
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len == 0 || len >= cap || memchr(s, '\0', len))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 0;
}

int nw_addr_parse(const char *s, size_t len, int version, nw_addr *out,
                  int *version_out)
{
    char buf[NW_ADDR_STRLEN];
    if (trimmed_copy(s, len, buf, sizeof buf))
        return -1;
    if (version == 4 || version == 0) {
        struct in_addr a4;
        if (inet_pton(AF_INET, buf, &a4) == 1) {
            memcpy(out->b, v4_prefix, 12);
            memcpy(out->b + 12, &a4, 4);
            if (version_out)
                *version_out = 4;
            return 0;
        }
        if (version == 4)
            return -1;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return -1;
    memcpy(out->b, &a6, 16);
    if (version_out)
        *version_out = 6;
    return 0;
}

size_t nw_addr_format(const nw_addr *a, int version, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    const char *r;
    if (version == 4 && nw_addr_is_v4(a))
        r = inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)cap);
    else
        r = inet_ntop(AF_INET6, a->b, buf, (socklen_t)cap);
    if (!r) {
        buf[0] = '\0';
        return 0;
    }
    return strlen(buf);
}

int nw_addr_is_v4(const nw_addr *a)
{
    return memcmp(a->b, v4_prefix, 12) == 0;
}

int nw_addr_cmp(const nw_addr *a, const nw_addr *b)
{
    return memcmp(a->b, b->b, 16);
}

int nw_cidr_parse(const char *s, nw_addr *lo, nw_addr *hi, int *version_out)
{
    char buf[NW_ADDR_STRLEN + 8];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len + 1);

    long prefix = -1;
    char *slash = strchr(buf, '/');
    if (slash) {
        char *end;
        *slash = '\0';
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end - (slash + 1) > 3)
            return -1;
    }
    int version;
    nw_addr a;
    if (nw_addr_parse(buf, strlen(buf), 0, &a, &version))
        return -1;
    int maxbits = version == 4 ? 32 : 128;
    if (prefix < 0)
        prefix = maxbits;
    if (prefix > maxbits)
        return -1;
    /* An IPv4 prefix counts from bit 96 of the mapped form. */
    int bits = (int)prefix + (version == 4 ? 96 : 0);
    for (int i = 0; i < 16; i++) {
        int keep = bits - i * 8;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        lo->b[i] = a.b[i] & mask;
        hi->b[i] = (uint8_t)(a.b[i] | (uint8_t)~mask);
    }
    if (version_out)
        *version_out = version;
    return 0;
}
