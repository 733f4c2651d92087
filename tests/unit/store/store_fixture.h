/* store_fixture.h -- helpers the store tests share.  Each test file is its
 * own program, so these are static; `static inline` keeps a file that does
 * not use one of them free of unused-function warnings.  Every helper
 * fails the running Check test (ck_assert) instead of returning an error. */
#ifndef NETWHO_TEST_STORE_FIXTURE_H
#define NETWHO_TEST_STORE_FIXTURE_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netwho/addr.h"
#include "netwho/conn.h"
#include "netwho/store.h"
#include "netwho/writer.h"

/* Removes path and, if it is a directory, everything below it. */
static inline void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        char sub[512];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) < sizeof sub)
                rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* An address from its text; the test fails if it does not parse. */
static inline nw_addr fx_addr(const char *text)
{
    nw_addr a;
    ck_assert_msg(nw_addr_parse(text, strlen(text), 0, &a, NULL) == 0, "%s", text);
    return a;
}

/* A plausible closed outbound TCP connection of WS01 pid 4168,
 * 10.2.10.21:50993 -> 10.2.20.41:5044 over [first, last], anchored at
 * first; tests change what they look at. */
static inline nw_conn fx_conn(int64_t id, nw_time first, nw_time last)
{
    nw_conn c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.host = "WS01";
    c.pid = 4168;
    c.proto = NW_PROTO_TCP;
    c.ip_version = 4;
    c.direction = NW_DIR_OUTBOUND;
    c.state = NW_STATE_CLOSED;
    c.local_ip = fx_addr("10.2.10.21");
    c.remote_ip = fx_addr("10.2.20.41");
    c.local_port = 50993;
    c.remote_port = 5044;
    c.first_seen = first;
    c.last_seen = last;
    c.anchor = first;
    return c;
}

/* Opens (create: or creates) the store in dir.  Caller closes. */
static inline nw_store *fx_store_open(const char *dir, nw_partitioning p, int create)
{
    nw_store *s = NULL;
    nw_err err = {{0}};
    nw_store_opts o = {p, create};
    ck_assert_msg(nw_store_open(dir, &o, &s, &err) == NW_OK, "%s", err.msg);
    return s;
}

/* Opens s's writer, with the writer thread if threaded, and fills *sink
 * with its sink.  Caller closes (fx_writer_close). */
static inline nw_writer *fx_writer_open(nw_store *s, int threaded, nw_sink *sink)
{
    nw_writer *w = NULL;
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_open(s, &w, &err) == NW_OK, "%s", err.msg);
    if (threaded)
        ck_assert_msg(nw_writer_start_thread(w, &err) == NW_OK, "%s", err.msg);
    nw_writer_sink(w, sink);
    return w;
}

/* Commits and closes w; the test fails if the commit does. */
static inline void fx_writer_close(nw_writer *w)
{
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_close(w, &err) == NW_OK, "%s", err.msg);
}

#endif
