/*
 * test_store.c -- the store directory: creation and reopening,
 * partitioning, schema versions, the catalog's view of partitions, sizes,
 * and retention by age and by size.
 */
#include <check.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"

#include "store_fixture.h"

#define DAY (86400LL * NW_TICKS_PER_SEC)
#define HOUR (3600LL * NW_TICKS_PER_SEC)
#define SEC NW_TICKS_PER_SEC

static char g_dir[64];
static nw_time g_day0;     /* 2026-03-16T00:00:00Z */


static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/nw-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    ck_assert_int_eq(nw_time_parse_rfc3339("2026-03-16T00:00:00Z", 20, &g_day0), 0);
}

static void teardown(void)
{
    rm_rf(g_dir);
}

/* Writes n connections and 4n transfers starting at t (all in t's
 * partition when they fit in it). */
static void fill(nw_sink *sink, int64_t first_id, int n, nw_time t)
{
    for (int i = 0; i < n; i++) {
        nw_conn c;
        memset(&c, 0, sizeof c);
        c.id = first_id + i;
        c.host = "WS01";
        c.pid = 1000 + (uint32_t)i % 7;
        c.proto = NW_PROTO_TCP;
        c.ip_version = 4;
        c.state = NW_STATE_CLOSED;
        nw_addr_parse("10.0.0.1", 8, 4, &c.local_ip, NULL);
        nw_addr_parse("10.0.0.2", 8, 4, &c.remote_ip, NULL);
        c.remote_ip.b[15] = (uint8_t)i;
        c.local_port = (uint16_t)(40000 + i);
        c.remote_port = 443;
        c.first_seen = c.anchor = t + i * SEC;
        c.last_seen = t + i * SEC + 3 * SEC;
        ck_assert(sink->conn(sink->ctx, &c) == NW_OK);
        for (int k = 0; k < 4; k++) {
            nw_transfer x = {c.id, c.first_seen + k * SEC, 100, 200, 0, 1, 1, 0};
            ck_assert(sink->transfer(sink->ctx, &x) == NW_OK);
        }
    }
}

static int file_exists(const char *name)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return stat(path, &sb) == 0;
}

static void set_user_version(const char *name, int v)
{
    char path[256], sql[64];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_create_and_reopen)
{
    nw_err err = {{0}};
    nw_store *s = NULL;
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    /* An empty directory is not a store unless asked to create one. */
    ck_assert_int_eq(nw_store_open(g_dir, &o, &s, &err), NW_ERR_IO);
    char want[256];
    snprintf(want, sizeof want, "no netwho store at %s", g_dir);
    ck_assert_str_eq(err.msg, want);

    char sub[128];
    snprintf(sub, sizeof sub, "%s/a/b", g_dir);
    ck_assert_int_eq(nw_store_open(sub, &o, &s, &err), NW_ERR_IO);
    o.create = 1;
    ck_assert_msg(nw_store_open(sub, &o, &s, &err) == NW_OK, "%s", err.msg);
    ck_assert_str_eq(nw_store_dir(s), sub);
    ck_assert_int_eq(nw_store_partitioning(s), NW_PART_DAY);   /* default */
    nw_store_close(s);

    ck_assert_int_eq(nw_store_open(sub, &(nw_store_opts){NW_PART_DAY, 0}, &s, &err), NW_OK);
    ck_assert_int_eq(nw_store_partitioning(s), NW_PART_DAY);
    nw_store_close(s);

    ck_assert_int_eq(nw_store_open(sub, &(nw_store_opts){NW_PART_HOUR, 1}, &s, &err),
                     NW_ERR_INVALID);
    snprintf(want, sizeof want,
             "store %s is partitioned by day; --partition hour does not match", sub);
    ck_assert_str_eq(err.msg, want);

    ck_assert_str_eq(nw_partitioning_name(NW_PART_DAY), "day");
    ck_assert_str_eq(nw_partitioning_name(NW_PART_HOUR), "hour");
}
END_TEST

/* A new partition has every table, including processes (for process
 * attribution), keyed so that "who held pid P on host H at time T" is one
 * primary-key search. */
START_TEST(test_partition_schema)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DAY, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    fill(&sink, 1, 1, g_day0);
    fx_writer_close(w);
    nw_store_close(s);

    char path[256];
    snprintf(path, sizeof path, "%s/p-2026-03-16.db", g_dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    const char *tables[] = {"connections", "transfers", "failures", "who_rollup",
                            "processes"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        sqlite3_stmt *st;
        sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_msg(sqlite3_column_int(st, 0) == 1, "table %s missing", tables[i]);
        sqlite3_finalize(st);
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('processes') WHERE pk > 0 ORDER BY pk",
                       -1, &st, NULL);
    const char *key[] = {"host", "pid", "create_time"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), key[i]);
    }
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_hour_partitioning)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_HOUR, 1);
    ck_assert_int_eq(nw_store_partitioning(s), NW_PART_HOUR);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    fill(&sink, 1, 2, g_day0 + 5 * HOUR + 30 * 60 * SEC);
    nw_failure f = {g_day0 + 23 * HOUR + 59 * 60 * SEC, "WS01", 17, NW_PROTO_TCP, 2, 5};
    ck_assert(sink.failure(sink.ctx, &f) == NW_OK);
    fx_writer_close(w);

    nw_partition_info *v;
    size_t n;
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(s, &v, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].name, "p-2026-03-16T05.db");
    ck_assert_int_eq(v[0].start, g_day0 + 5 * HOUR);
    ck_assert_int_eq(v[0].end, g_day0 + 6 * HOUR);
    ck_assert_uint_eq(v[0].connections, 2);
    ck_assert_uint_eq(v[0].transfers, 8);
    ck_assert_int_eq(v[0].min_first_seen, g_day0 + 5 * HOUR + 30 * 60 * SEC);
    ck_assert_int_eq(v[0].max_first_seen, g_day0 + 5 * HOUR + 30 * 60 * SEC + SEC);
    ck_assert_int_eq(v[0].max_last_seen, g_day0 + 5 * HOUR + 30 * 60 * SEC + 4 * SEC);
    ck_assert_str_eq(v[1].name, "p-2026-03-16T23.db");
    ck_assert_uint_eq(v[1].connections, 0);
    ck_assert_uint_eq(v[1].failures, 1);
    ck_assert_int_eq(v[1].min_first_seen, NW_TIME_MAX);   /* no connections */
    free(v);
    ck_assert(file_exists("p-2026-03-16T05.db"));
    ck_assert(file_exists(".lock"));
    nw_store_close(s);

    nw_store *s2 = NULL;
    ck_assert_int_eq(nw_store_open(g_dir, &(nw_store_opts){NW_PART_DAY, 0}, &s2, &err),
                     NW_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "partitioned by hour; --partition day"));
}
END_TEST

START_TEST(test_schema_versions_refused)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    fill(&sink, 1, 1, g_day0);
    fx_writer_close(w);
    nw_store_close(s);

    /* A partition written by a newer netwho: queries and the writer refuse. */
    set_user_version("p-2026-03-16.db", NW_SCHEMA_VERSION + 1);
    s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    nw_err err = {{0}};
    nw_conn c;
    ck_assert_int_eq(nw_query_connection(s, 1, &c, &err), NW_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "newer than this netwho"));
    w = fx_writer_open(s, 0, &sink);
    nw_conn k;
    memset(&k, 0, sizeof k);
    k.id = 2;
    k.host = "WS01";
    k.anchor = k.first_seen = k.last_seen = g_day0 + SEC;
    ck_assert_int_eq(sink.conn(sink.ctx, &k), NW_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(nw_writer_last_error(w), "newer than this netwho"));
    nw_writer_close(w, NULL);
    nw_store_close(s);

    /* The catalog itself. */
    set_user_version("catalog.db", 99);
    ck_assert_int_eq(nw_store_open(g_dir, &(nw_store_opts){NW_PART_DEFAULT, 1}, &s, &err),
                     NW_ERR_CORRUPT);
    char want[128];
    snprintf(want, sizeof want, "schema version 99, newer than this netwho's %d",
             NW_SCHEMA_VERSION);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s", err.msg);

    /* An SQLite file that netwho did not write. */
    set_user_version("catalog.db", 0);
    ck_assert_int_eq(nw_store_open(g_dir, &(nw_store_opts){NW_PART_DEFAULT, 0}, &s, &err),
                     NW_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "is not a netwho file"));

    /* Not an SQLite file at all. */
    char path[256];
    snprintf(path, sizeof path, "%s/catalog.db", g_dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 64; i++)
        fputs("garbage garbage garbage garbage garbage garbage\n", f);
    fclose(f);
    ck_assert_int_eq(nw_store_open(g_dir, &(nw_store_opts){NW_PART_DEFAULT, 0}, &s, &err),
                     NW_ERR_CORRUPT);
}
END_TEST

/* Sum of the sizes of the regular files directly in dir. */
static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    uint64_t total = 0;
    struct dirent *de;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

START_TEST(test_sizes)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    fill(&sink, 1, 50, g_day0);
    fill(&sink, 100, 50, g_day0 + DAY);
    static char raw[8192];
    memset(raw, 'x', sizeof raw);
    nw_rejection r = {NW_REJ_BAD_JSON, "-", 0, raw, sizeof raw, sizeof raw, ""};
    nw_err err = {{0}};
    ck_assert(nw_writer_reject(w, &r, &err) == NW_OK);
    ck_assert(nw_writer_commit(w, &err) == NW_OK);

    /* While writing (WAL files present) and after. */
    ck_assert_uint_eq(nw_store_bytes(s), dir_bytes(g_dir));
    fx_writer_close(w);
    uint64_t total = nw_store_bytes(s);
    ck_assert_uint_eq(total, dir_bytes(g_dir));
    char rej[128];
    snprintf(rej, sizeof rej, "%s/rejected", g_dir);
    ck_assert_uint_gt(dir_bytes(rej), sizeof raw);   /* not in the total */

    nw_partition_info *v;
    size_t n;
    ck_assert(nw_store_partitions(s, &v, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 2);
    uint64_t parts = 0;
    for (size_t i = 0; i < n; i++) {
        char path[256];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", g_dir, v[i].name);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_uint_ge(v[i].file_bytes, (uint64_t)sb.st_size);
        ck_assert_uint_eq(v[i].connections, 50);
        ck_assert_uint_eq(v[i].transfers, 200);
        parts += v[i].file_bytes;
    }
    ck_assert_uint_lt(parts, total);   /* the catalog is the rest */
    free(v);
    nw_store_close(s);
}
END_TEST

static size_t count_rows(nw_store *s)
{
    nw_partition_info *v;
    size_t n;
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(s, &v, &n, &err) == NW_OK);
    free(v);
    return n;
}

static int count_cb(void *ctx, const nw_conn *c)
{
    (void)c;
    (*(int *)ctx)++;
    return 0;
}

static int count_conns(nw_store *s)
{
    int n = 0;
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    ck_assert_msg(nw_query_connections(s, &q, count_cb, &n, NULL, &err) == NW_OK, "%s",
                  err.msg);
    return n;
}

START_TEST(test_retention_by_days)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    for (int d = 0; d < 5; d++)
        fill(&sink, 1 + d * 100, 10, g_day0 + d * DAY);
    ck_assert(nw_writer_commit(w, &(nw_err){{0}}) == NW_OK);
    /* A reader with the old partitions open. */
    nw_store *r = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    ck_assert_int_eq(count_conns(r), 50);

    /* now = day 4 12:00, keep 2 days: cutoff day 2 12:00; days 0 and 1
     * end before it, day 2 does not. */
    nw_retention ret = {2, 0, g_day0 + 4 * DAY + 12 * HOUR, 0};
    size_t dropped = 99;
    nw_err err = {{0}};
    ck_assert_msg(nw_store_apply_retention(s, &ret, &dropped, &err) == NW_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(dropped, 2);
    ck_assert(!file_exists("p-2026-03-16.db"));
    ck_assert(!file_exists("p-2026-03-16.db-wal"));
    ck_assert(!file_exists("p-2026-03-16.db-shm"));
    ck_assert(!file_exists("p-2026-03-17.db"));
    ck_assert(file_exists("p-2026-03-18.db"));
    ck_assert_uint_eq(count_rows(s), 3);
    ck_assert_int_eq(count_conns(s), 30);
    ck_assert_int_eq(count_conns(r), 30);

    /* The writer goes on, and late data recreates a dropped day. */
    fill(&sink, 1000, 3, g_day0 + 10 * SEC);
    ck_assert(nw_writer_commit(w, &err) == NW_OK);
    ck_assert_int_eq(count_conns(r), 33);
    ck_assert_uint_eq(count_rows(s), 4);

    /* Applying again drops it again; nothing else. */
    ck_assert(nw_store_apply_retention(s, &ret, &dropped, &err) == NW_OK);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_int_eq(count_conns(r), 30);
    nw_store_close(r);
    fx_writer_close(w);
    nw_store_close(s);
}
END_TEST

START_TEST(test_retention_by_bytes)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    for (int d = 0; d < 4; d++)
        fill(&sink, 1 + d * 1000, 200 * (d + 1), g_day0 + d * DAY);
    fx_writer_close(w);

    nw_partition_info *v;
    size_t n;
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(s, &v, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 4);
    uint64_t total = nw_store_bytes(s);
    uint64_t b0 = v[0].file_bytes, b1 = v[1].file_bytes;
    free(v);

    w = fx_writer_open(s, 0, &sink);
    /* Exactly fits once the two oldest are gone. */
    nw_retention ret = {0, total - b0 - b1, 0, 0};
    size_t dropped = 0;
    ck_assert_msg(nw_store_apply_retention(s, &ret, &dropped, &err) == NW_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(dropped, 2);
    ck_assert(!file_exists("p-2026-03-16.db"));
    ck_assert(!file_exists("p-2026-03-17.db"));
    ck_assert(file_exists("p-2026-03-18.db"));
    ck_assert_int_eq(count_conns(s), 600 + 800);

    /* A limit nothing fits: everything but the newest goes. */
    ret.max_bytes = 1;
    ck_assert(nw_store_apply_retention(s, &ret, &dropped, &err) == NW_OK);
    ck_assert_uint_eq(dropped, 1);
    ck_assert(file_exists("p-2026-03-19.db"));
    ck_assert_uint_eq(count_rows(s), 1);
    ck_assert_int_eq(count_conns(s), 800);
    ck_assert(nw_store_apply_retention(s, &ret, &dropped, &err) == NW_OK);
    ck_assert_uint_eq(dropped, 0);

    /* No limits: nothing to do. */
    nw_retention none = {0, 0, 0, 0};
    ck_assert(nw_store_apply_retention(s, &none, &dropped, &err) == NW_OK);
    ck_assert_uint_eq(dropped, 0);
    nw_retention bad = {-1, 0, 0, 0};
    ck_assert_int_eq(nw_store_apply_retention(s, &bad, &dropped, &err), NW_ERR_INVALID);
    fx_writer_close(w);
    nw_store_close(s);
}
END_TEST

START_TEST(test_retention_needs_the_lock)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    fill(&sink, 1, 5, g_day0);
    fill(&sink, 100, 5, g_day0 + DAY);
    ck_assert(nw_writer_commit(w, &(nw_err){{0}}) == NW_OK);

    /* Another handle, while the writer holds the store: busy. */
    nw_store *other = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    nw_retention ret = {1, 0, g_day0 + 3 * DAY, 0};
    size_t dropped = 0;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_apply_retention(other, &ret, &dropped, &err), NW_ERR_BUSY);
    ck_assert(file_exists("p-2026-03-16.db"));

    /* Without a writer, it takes the lock itself. */
    fx_writer_close(w);
    ck_assert_msg(nw_store_apply_retention(other, &ret, &dropped, &err) == NW_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_uint_eq(count_rows(s), 0);
    nw_store_close(other);
    nw_store_close(s);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_create_and_reopen);
    tcase_add_test(tc, test_partition_schema);
    tcase_add_test(tc, test_hour_partitioning);
    tcase_add_test(tc, test_schema_versions_refused);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_retention_by_days);
    tcase_add_test(tc, test_retention_by_bytes);
    tcase_add_test(tc, test_retention_needs_the_lock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(store_suite());
}
