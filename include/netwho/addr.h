/*
 * addr.h -- IPv4 and IPv6 addresses in one 16-byte form.
 *
 * IPv4 is stored as the IPv4-mapped IPv6 address ::ffff:a.b.c.d, so that both
 * families sort in one order and a CIDR block of either family is one
 * contiguous byte range [lo, hi]: "who talked to 10.0.0.0/8" becomes an index
 * range scan over a BLOB column.  The family a connection was seen on is kept
 * beside the address (ip_version); text in and out is inet_pton/inet_ntop's.
 * Leaf module: depends on the C library only.
 */
#ifndef NETWHO_ADDR_H
#define NETWHO_ADDR_H

#include <stddef.h>
#include <stdint.h>

typedef struct nw_addr {
    uint8_t b[16];
} nw_addr;

/* INET6_ADDRSTRLEN (46) plus room: enough for any text nw_addr_format writes. */
#define NW_ADDR_STRLEN 48

/*
 * Parses s[0..len) as an address of the given family: version 4 wants dotted
 * quad (inet_pton AF_INET), version 6 wants IPv6 text (inet_pton AF_INET6),
 * version 0 takes either.  Leading and trailing spaces are ignored (ETW pads
 * values).  Sets *out and, if version_out is not NULL, the family found.
 * Returns 0, or -1 if the text is not an address of that family.
 */
int nw_addr_parse(const char *s, size_t len, int version, nw_addr *out,
                  int *version_out);

/*
 * Canonical text of a: dotted quad when version is 4, inet_ntop AF_INET6
 * otherwise (an IPv4-mapped address seen on an IPv6 socket prints as
 * "::ffff:10.0.0.1").  buf needs NW_ADDR_STRLEN bytes.  Returns length.
 */
size_t nw_addr_format(const nw_addr *a, int version, char *buf, size_t cap);

/* 1 if a is an IPv4-mapped address (::ffff:0:0/96), else 0. */
int nw_addr_is_v4(const nw_addr *a);

/*
 * Parses an address or CIDR block ("10.0.0.0/8", "2001:db8::/32", "::1",
 * "192.0.2.7") into the inclusive 16-byte range [lo, hi].  Host bits below
 * the prefix are ignored ("10.1.2.3/8" is 10.0.0.0/8).  Sets *version_out
 * (4 or 6) if not NULL.  NUL-terminated.  Returns 0, or -1 on bad text or a
 * prefix out of range (>32 for IPv4, >128 for IPv6).
 */
int nw_cidr_parse(const char *s, nw_addr *lo, nw_addr *hi, int *version_out);

/* memcmp order of the 16 bytes: <0, 0, >0. */
int nw_addr_cmp(const nw_addr *a, const nw_addr *b);

#endif
