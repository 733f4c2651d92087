/* writer_fixture.h -- the fixture of the store suites that write through
 * one writer and run twice: once writing synchronously, once through the
 * writer thread (setup_threaded), and must give the same answers both
 * ways.  Include after store_fixture.h, with FX_DIR_TEMPLATE (a mkdtemp
 * template) and FX_PARTITIONING defined. */
#ifndef NETWHO_TEST_WRITER_FIXTURE_H
#define NETWHO_TEST_WRITER_FIXTURE_H

#include "netwho/nwtime.h"
#include "store_fixture.h"

static char g_dir[64];
static nw_store *g_s;
static nw_writer *g_w;
static nw_sink g_sink;
static nw_time g_day0;     /* 2026-03-16T00:00:00Z */
static int g_threaded;

static inline void open_writer(void)
{
    g_w = fx_writer_open(g_s, g_threaded, &g_sink);
}

static inline void close_writer(void)
{
    fx_writer_close(g_w);
    g_w = NULL;
}

/* Hands c to the writer's sink; the test fails if the writer does. */
static inline void put(const nw_conn *c)
{
    ck_assert_msg(g_sink.conn(g_sink.ctx, c) == NW_OK, "%s", nw_writer_last_error(g_w));
}

static inline void commit(void)
{
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_commit(g_w, &err) == NW_OK, "%s", err.msg);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "%s", FX_DIR_TEMPLATE);
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    ck_assert_int_eq(nw_time_parse_rfc3339("2026-03-16T00:00:00Z", 20, &g_day0), 0);
    g_s = fx_store_open(g_dir, FX_PARTITIONING, 1);
    open_writer();
}

static void setup_threaded(void)
{
    g_threaded = 1;
    setup();
}

/* Closes without asserting: a failed test may leave the writer broken. */
static void teardown(void)
{
    if (g_w)
        nw_writer_close(g_w, NULL);
    g_w = NULL;
    nw_store_close(g_s);
    g_s = NULL;
    rm_rf(g_dir);
}

#endif
