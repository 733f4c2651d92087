/*
 * flowid.h -- Community ID v1, the flow hash SOC tools share.
 *
 * Zeek, Suricata, Elastic and others tag a flow with the same string, so a
 * connection netwho saw on a Windows host can be joined to the network
 * sensor's record of it.  Specification: github.com/corelight/community-id-spec
 * (README): "1:" + base64(SHA-1(seed . saddr . daddr . proto . 0 . sport .
 * dport)), every part in network byte order, the two endpoints ordered so
 * that the smaller (address, port) comes first -- both directions of a flow
 * hash alike.  IPv4 is hashed in its 4-byte form, IPv6 in 16 bytes.
 * SHA-1 and base64 come from Nettle.  Leaf module (C library and Nettle).
 */
#ifndef NETWHO_FLOWID_H
#define NETWHO_FLOWID_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/addr.h"
#include "netwho/conn.h"

/* "1:" + 28 base64 characters of a 20-byte digest (30), and room for the NUL. */
#define NW_COMMUNITY_ID_LEN 30
#define NW_COMMUNITY_ID_STRLEN 32

/*
 * The Community ID of one flow.
 *   src, dst      endpoints in netwho's 16-byte form (IPv4 mapped);
 *   ip_version    4: both must be IPv4-mapped and are hashed as 4 bytes;
 *                 6: hashed as 16 bytes, whatever they hold;
 *   proto         IP protocol number (6 TCP, 17 UDP, 132 SCTP, ...);
 *   sport, dport  hashed for TCP, UDP, SCTP, ICMP (1) and ICMPv6 (58) --
 *                 for ICMP pass type and code equivalents as the spec's
 *                 ICMP table says; this function does not map them (and
 *                 treats every ICMP pair as bidirectional) -- and left out
 *                 for every other protocol, as the spec's port-less rule says;
 *   seed          0 unless the operators agreed on another.
 * Writes the NUL-terminated ID into out (cap >= NW_COMMUNITY_ID_STRLEN).
 * Returns its length (NW_COMMUNITY_ID_LEN), or -1 if ip_version is neither
 * 4 nor 6, an IPv4 flow has an address that is not IPv4-mapped, or cap is
 * too small (then out is "" if cap > 0).
 */
int nw_community_id(const nw_addr *src, uint16_t sport, const nw_addr *dst, uint16_t dport,
                    uint8_t proto, int ip_version, uint16_t seed, char *out, size_t cap);

/* The Community ID of a connection (local and remote end; order does not
 * matter).  Both ends IPv4-mapped -- an IPv4 connection, or an IPv4 peer of
 * a dual-stack IPv6 socket, whose packets are IPv4 on the wire -- hash as
 * IPv4 whatever ip_version says.  Same result and errors as nw_community_id. */
int nw_conn_community_id(const nw_conn *c, uint16_t seed, char *out, size_t cap);

#endif
