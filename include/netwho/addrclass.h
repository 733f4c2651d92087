/*
 * addrclass.h -- what kind of address an end of a connection is.
 *
 * Answers "was this an Internet peer?" for the scope filters and the
 * exports.  Works on netwho's 16-byte form: an IPv4-mapped address
 * (::ffff:a.b.c.d, which is how IPv4 is stored, and how a dual-stack socket
 * shows an IPv4 peer) is classified by its IPv4 address.
 *
 * Classes, checked in this order (first match wins):
 *   unspecified  0.0.0.0, ::
 *   loopback     127.0.0.0/8, ::1
 *   link-local   169.254.0.0/16, fe80::/10
 *   multicast    224.0.0.0/4, ff00::/8
 *   broadcast    255.255.255.255 only: a subnet's directed broadcast
 *                (10.1.2.255/24) cannot be told from a host address without
 *                the subnet mask, which the events do not carry, so it is
 *                classed by its range (usually private)
 *   private      10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918),
 *                100.64.0.0/10 (RFC 6598 carrier-grade NAT: not reachable
 *                from the Internet, so for "who talked to the Internet" it
 *                is not public), fc00::/7 (unique local), fec0::/10
 *                (deprecated site-local, the old IPv6 private range)
 *   public       everything else -- including documentation, benchmark
 *                and reserved ranges, which real traffic does not carry.
 * Leaf module: depends on the C library only.
 */
#ifndef NETWHO_ADDRCLASS_H
#define NETWHO_ADDRCLASS_H

#include "netwho/addr.h"

typedef enum nw_addr_class {
    NW_ACLASS_PUBLIC = 0,
    NW_ACLASS_PRIVATE,
    NW_ACLASS_LOOPBACK,
    NW_ACLASS_LINK_LOCAL,
    NW_ACLASS_MULTICAST,
    NW_ACLASS_BROADCAST,
    NW_ACLASS_UNSPECIFIED,
    NW_ACLASS__COUNT
} nw_addr_class;

/* The class of a (see the table above).  Never fails. */
nw_addr_class nw_addr_classify(const nw_addr *a);

/* "public", "private", "loopback", "link-local", "multicast", "broadcast",
 * "unspecified"; "public" for an out-of-range value. */
const char *nw_addr_class_name(nw_addr_class c);

/* Inverse of nw_addr_class_name; -1 for an unknown name. */
int nw_addr_class_from_name(const char *s);

#endif
