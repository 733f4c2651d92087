/*
 * flowid.c -- Community ID v1 (see flowid.h for the specification).
 */
#include "netwho/flowid.h"

#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

/* Protocols whose two 16-bit port (or ICMP type/code) fields are hashed. */
static int has_ports(uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 132 || proto == 1 || proto == 58;
}

int nw_community_id(const nw_addr *src, uint16_t sport, const nw_addr *dst, uint16_t dport,
                    uint8_t proto, int ip_version, uint16_t seed, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (cap < NW_COMMUNITY_ID_STRLEN)
        return -1;
    size_t off, alen;
    if (ip_version == 4) {
        if (!nw_addr_is_v4(src) || !nw_addr_is_v4(dst))
            return -1;
        off = 12;
        alen = 4;
    } else if (ip_version == 6) {
        off = 0;
        alen = 16;
    } else {
        return -1;
    }
    const uint8_t *a = src->b + off, *b = dst->b + off;
    uint16_t pa = sport, pb = dport;
    /* Smaller (address, port) first; equal addresses: the ports decide. */
    int c = memcmp(a, b, alen);
    if (c > 0 || (c == 0 && sport > dport)) {
        a = dst->b + off;
        b = src->b + off;
        pa = dport;
        pb = sport;
    }
    uint8_t msg[2 + 16 + 16 + 2 + 4];
    size_t n = 0;
    msg[n++] = (uint8_t)(seed >> 8);
    msg[n++] = (uint8_t)seed;
    memcpy(msg + n, a, alen);
    n += alen;
    memcpy(msg + n, b, alen);
    n += alen;
    msg[n++] = proto;
    msg[n++] = 0;                        /* padding */
    if (has_ports(proto)) {
        msg[n++] = (uint8_t)(pa >> 8);
        msg[n++] = (uint8_t)pa;
        msg[n++] = (uint8_t)(pb >> 8);
        msg[n++] = (uint8_t)pb;
    }
    struct sha1_ctx ctx;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, n, msg);
    sha1_digest(&ctx, sizeof digest, digest);

    out[0] = '1';
    out[1] = ':';
    base64_encode_raw(out + 2, sizeof digest, digest);   /* 28 chars, '=' padded */
    out[2 + BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return NW_COMMUNITY_ID_LEN;
}

int nw_conn_community_id(const nw_conn *c, uint16_t seed, char *out, size_t cap)
{
    /* A dual-stack socket talking to ::ffff:a.b.c.d sends IPv4 packets:
     * the sensor on the wire hashes 4 bytes, so netwho must too. */
    int version = c->ip_version;
    if (nw_addr_is_v4(&c->local_ip) && nw_addr_is_v4(&c->remote_ip))
        version = 4;
    return nw_community_id(&c->local_ip, c->local_port, &c->remote_ip, c->remote_port,
                           c->proto, version, seed, out, cap);
}
