/*
 * nwtime.h -- event time: 100 ns ticks since the Unix epoch, UTC.
 *
 * Windows stamps events with a FILETIME (100 ns resolution); the JSON shows
 * it as RFC 3339 with nine fractional digits whose last two are always 0.
 * netwho keeps exactly that resolution in a signed 64-bit integer, which
 * covers years 1677..2262 -- comparisons and arithmetic stay integer-only.
 * Leaf module: depends on the C library only.
 */
#ifndef NETWHO_NWTIME_H
#define NETWHO_NWTIME_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t nw_time;

#define NW_TICKS_PER_SEC 10000000LL
#define NW_TIME_MIN INT64_MIN
#define NW_TIME_MAX INT64_MAX

/* Longest text nw_time_format writes, with its NUL:
 * "2026-03-16T00:21:36.4231059Z" is 28 characters. */
#define NW_TIME_STRLEN 32

/*
 * Parses an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)".
 * 't' or ' ' may separate date and time; 'z' is accepted for 'Z'.  Digits
 * past the seventh fractional digit are truncated (floor to 100 ns).
 * An offset written with a space instead of '+' (" 00:00": a '+' that went
 * through URL query decoding) is accepted as '+'.
 * Returns 0 and sets *out, or -1 if s[0..len) is not such a time.
 */
int nw_time_parse_rfc3339(const char *s, size_t len, nw_time *out);

/*
 * Parses a time given by a user: RFC 3339 as above, or epoch seconds
 * ("1773620496", "1773620496.5", "-5").  NUL-terminated.
 * Returns 0 and sets *out, or -1.
 */
int nw_time_parse_user(const char *s, nw_time *out);

/*
 * Writes t as RFC 3339 UTC with exactly seven fractional digits and 'Z'
 * ("2026-03-16T00:21:36.4231059Z") into buf.  Returns the length written
 * (without NUL), or 0 if cap < NW_TIME_STRLEN or t is outside 0000..9999.
 */
size_t nw_time_format(nw_time t, char *buf, size_t cap);

/* Current wall-clock time. */
nw_time nw_time_now(void);

/* Start of the UTC day / hour that contains t (floor, also for t < 0). */
nw_time nw_time_floor_day(nw_time t);
nw_time nw_time_floor_hour(nw_time t);

#endif
