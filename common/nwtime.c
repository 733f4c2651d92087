/*
 * nwtime.c -- RFC 3339 <-> 100 ns ticks, without the C library's time zone
 * machinery: timegm() is not C11 and mktime() depends on TZ, while event
 * times are always UTC with an explicit offset.  Civil-date arithmetic is
 * the proleptic Gregorian algorithm (days_from_civil / civil_from_days).
 */
#include "netwho/nwtime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECS_PER_DAY 86400LL

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at *p; advances it.  -1 if any is not a digit. */
static int take_digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

/* Reads the digits of a fraction of a second at *p into 100 ns ticks,
 * flooring digits past the seventh.  -1 if there is no digit. */
static int take_fraction(const char **p, const char *end, int64_t *ticks)
{
    int64_t frac = 0;
    int ndig = 0;
    while (*p < end && isdigit((unsigned char)**p)) {
        if (ndig < 7)
            frac = frac * 10 + (**p - '0');
        ndig++;
        (*p)++;
    }
    if (ndig == 0)
        return -1;
    for (int i = ndig; i < 7; i++)
        frac *= 10;
    *ticks = frac;
    return 0;
}

static int take_char(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

int nw_time_parse_rfc3339(const char *s, size_t len, nw_time *out)
{
    const char *p = s, *end = s + len;
    int Y, M, D, h, mi, sec;

    /* ETW values are sometimes padded; tolerate surrounding spaces. */
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    if (take_digits(&p, end, 4, &Y) || take_char(&p, end, '-') ||
        take_digits(&p, end, 2, &M) || take_char(&p, end, '-') ||
        take_digits(&p, end, 2, &D))
        return -1;
    if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (take_digits(&p, end, 2, &h) || take_char(&p, end, ':') ||
        take_digits(&p, end, 2, &mi) || take_char(&p, end, ':') ||
        take_digits(&p, end, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || (unsigned)D > days_in_month(Y, (unsigned)M) ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    if (sec == 60)      /* a leap second folds into the next one */
        sec = 59;

    int64_t frac = 0;   /* in 100 ns ticks */
    if (p < end && (*p == '.' || *p == ',')) {
        p++;
        if (take_fraction(&p, end, &frac))
            return -1;
    }

    int64_t offset = 0; /* seconds east of UTC */
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-' || *p == ' ')) {
        /* ' ' is a '+' that went through URL query decoding. */
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (take_digits(&p, end, 2, &oh))
            return -1;
        if (p < end && *p == ':')
            p++;
        if (take_digits(&p, end, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = sign * (oh * 3600LL + om * 60LL);
    } else {
        return -1;
    }
    if (p != end)
        return -1;

    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * SECS_PER_DAY + h * 3600LL + mi * 60LL + sec - offset;
    *out = secs * NW_TICKS_PER_SEC + frac;
    return 0;
}

int nw_time_parse_user(const char *s, nw_time *out)
{
    if (!s || !*s)
        return -1;
    size_t len = strlen(s);
    if (nw_time_parse_rfc3339(s, len, out) == 0)
        return 0;

    /* Epoch seconds, optionally signed, optionally with a fraction. */
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return -1;
    int64_t secs = 0;
    while (isdigit((unsigned char)*p)) {
        if (secs > (INT64_MAX / NW_TICKS_PER_SEC - 9) / 10)
            return -1;     /* would overflow the tick range */
        secs = secs * 10 + (*p++ - '0');
    }
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        if (take_fraction(&p, s + len, &frac))
            return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t t = secs * NW_TICKS_PER_SEC + frac;
    *out = neg ? -t : t;
    return 0;
}

/* Floor division that also rounds negative values down. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

size_t nw_time_format(nw_time t, char *buf, size_t cap)
{
    /* RFC 3339 has years 0000..9999 only.  Checking the range first also
     * keeps the arithmetic below in int64 (NW_TIME_MIN overflowed it). */
    static const nw_time first = -719528LL * SECS_PER_DAY * NW_TICKS_PER_SEC; /* 0000-01-01 */
    static const nw_time end = 2932897LL * SECS_PER_DAY * NW_TICKS_PER_SEC;   /* 10000-01-01 */
    if (cap < NW_TIME_STRLEN || t < first || t >= end)
        return 0;
    int64_t secs = floor_div(t, NW_TICKS_PER_SEC);
    int64_t frac = t - secs * NW_TICKS_PER_SEC;
    int64_t days = floor_div(secs, SECS_PER_DAY);
    int64_t sod = secs - days * SECS_PER_DAY;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%07dZ", (int)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                     (int)frac);
    return n > 0 ? (size_t)n : 0;
}

nw_time nw_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (nw_time)ts.tv_sec * NW_TICKS_PER_SEC + ts.tv_nsec / 100;
}

nw_time nw_time_floor_day(nw_time t)
{
    int64_t day = SECS_PER_DAY * NW_TICKS_PER_SEC;
    return floor_div(t, day) * day;
}

nw_time nw_time_floor_hour(nw_time t)
{
    int64_t hour = 3600LL * NW_TICKS_PER_SEC;
    return floor_div(t, hour) * hour;
}
