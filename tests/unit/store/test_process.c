/* test_process.c -- procstore.h: the process table's merge and lookup
 * rules, and attribution of queried connections. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/procstore.h"
#include "netwho/query.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"
#include "store_fixture.h"

#define SEC NW_TICKS_PER_SEC
#define T0 (1773619200LL * SEC)   /* 2026-03-16T00:00:00Z */

static char g_dir[256];
static nw_store *g_s;
static nw_writer *g_w;

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/nw-proc-%d", (int)getpid());
    rm_rf(g_dir);
    nw_store_opts o = {NW_PART_DAY, 1};
    nw_err err = {{0}};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
    ck_assert_msg(nw_writer_open(g_s, &g_w, &err) == NW_OK, "%s", err.msg);
}

static void teardown(void)
{
    nw_err err = {{0}};
    if (g_w)
        nw_writer_close(g_w, &err);
    nw_store_close(g_s);
    rm_rf(g_dir);
}

/* A process event; strings "" mean unknown. */
static void proc(int source, uint32_t pid, nw_time create, nw_time prec, nw_time exit_time,
                 const char *image, const char *guid, const char *cmd, int64_t ppid)
{
    nw_proc_event *pe = calloc(1, sizeof *pe);
    pe->source = source;
    pe->time = create;
    pe->create_prec = prec;
    snprintf(pe->host, sizeof pe->host, "WS01");
    pe->p.pid = pid;
    pe->p.create_time = create;
    pe->p.exit_time = exit_time ? exit_time : NW_TIME_MAX;
    pe->has_exit = exit_time != 0;
    if (ppid >= 0) {
        pe->p.has_parent = 1;
        pe->p.parent_pid = (uint32_t)ppid;
    }
    snprintf(pe->image, sizeof pe->image, "%s", image);
    snprintf(pe->guid, sizeof pe->guid, "%s", guid);
    snprintf(pe->command_line, sizeof pe->command_line, "%s", cmd);
    pe->p.host = pe->host;
    pe->p.image = pe->image[0] ? pe->image : NULL;
    pe->p.guid = pe->guid[0] ? pe->guid : NULL;
    pe->p.command_line = pe->command_line[0] ? pe->command_line : NULL;
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_process(g_w, pe, &err) == NW_OK, "%s", err.msg);
    free(pe);
}

static void commit(void)
{
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_commit(g_w, &err) == NW_OK, "%s", err.msg);
}

/* The image of pid's holder at t, or NULL. */
static const char *at(uint32_t pid, nw_time t)
{
    static nw_process p;
    int found = -1;
    nw_err err = {{0}};
    ck_assert_msg(nw_process_at(g_s, "ws01", pid, t, &p, &found, &err) == NW_OK, "%s",
                  err.msg);
    return found ? (p.image ? p.image : "(no image)") : NULL;
}

START_TEST(no_table_is_unknown)
{
    ck_assert_ptr_null(at(1, T0));
}
END_TEST

START_TEST(pid_reuse_never_crosses_holders)
{
    /* pid 100: a.exe [10 s, 20 s], then b.exe from 30 s (running). */
    proc(NW_PSRC_KP_START, 100, T0 + 10 * SEC, NW_PREC_EXACT, 0, "\\Device\\X\\a.exe", "", "",
         -1);
    proc(NW_PSRC_KP_STOP, 100, T0 + 10 * SEC, NW_PREC_EXACT, T0 + 20 * SEC, "a.exe", "", "",
         -1);
    proc(NW_PSRC_KP_START, 100, T0 + 30 * SEC, NW_PREC_EXACT, 0, "\\Device\\X\\b.exe", "", "",
         -1);
    commit();
    ck_assert_ptr_null(at(100, T0 + 5 * SEC));                   /* before any */
    ck_assert_str_eq(at(100, T0 + 15 * SEC), "\\Device\\X\\a.exe");
    ck_assert_str_eq(at(100, T0 + 20 * SEC), "\\Device\\X\\a.exe");/* exit instant */
    ck_assert_ptr_null(at(100, T0 + 25 * SEC));                  /* a exited */
    ck_assert_str_eq(at(100, T0 + 35 * SEC), "\\Device\\X\\b.exe");
    ck_assert_str_eq(at(100, T0 + 29 * SEC + SEC / 2), "\\Device\\X\\b.exe"); /* skew */
    ck_assert_ptr_null(at(101, T0 + 15 * SEC));                  /* other pid */
    /* the stop's short name did not replace the start's path */
}
END_TEST

START_TEST(sources_of_one_process_merge)
{
    /* Sysmon 3 (guid time, seconds) first, then Kernel-Process start
     * (exact), then Sysmon 1 (ms) with the same guid, then Sysmon 5. */
    const char *g = "{6004D249-0957-604D-6019-000000000900}";
    nw_time exact = T0 + 100 * SEC + 1234567;
    proc(NW_PSRC_SYSMON_NETWORK, 200, T0 + 100 * SEC, NW_PREC_SECOND, 0, "C:\\w\\x.exe", g,
         "", -1);
    proc(NW_PSRC_KP_START, 200, exact, NW_PREC_EXACT, 0, "\\Device\\HarddiskVolume2\\w\\x.exe",
         "", "", 4);
    proc(NW_PSRC_SYSMON_CREATE, 200, T0 + 100 * SEC + 1230000, NW_PREC_MS, 0, "C:\\w\\x.exe",
         g, "x.exe -k", 4);
    proc(NW_PSRC_SYSMON_EXIT, 200, T0 + 100 * SEC, NW_PREC_SECOND, T0 + 200 * SEC,
         "C:\\w\\x.exe", g, "", -1);
    /* the parent, known by a rundown */
    proc(NW_PSRC_KP_RUNDOWN, 4, T0 - 3600 * SEC, NW_PREC_EXACT, 0, "System", "", "", -1);
    commit();
    nw_process p;
    int found = 0;
    nw_err err = {{0}};
    ck_assert(nw_process_at(g_s, "WS01", 200, T0 + 150 * SEC, &p, &found, &err) == NW_OK);
    ck_assert(found);
    ck_assert(p.create_time == exact);                 /* the exact one won */
    ck_assert(p.exit_time == T0 + 200 * SEC);
    ck_assert_str_eq(p.guid, g);
    ck_assert_str_eq(p.command_line, "x.exe -k");
    ck_assert_str_eq(p.image, "C:\\w\\x.exe");         /* first full path kept */
    ck_assert(p.has_parent && p.parent_pid == 4);
    ck_assert_str_eq(p.parent_image, "System");        /* from the parent's row */
    ck_assert_ptr_null(at(200, T0 + 201 * SEC));
}
END_TEST

/* The events of the two tests above: PID reuse, and one process told by
 * four sources in an order that makes every merge rule count. */
static void mixed_events(int reversed)
{
    const char *g = "{6004D249-0957-604D-6019-000000000900}";
    nw_time exact = T0 + 100 * SEC + 1234567;
    for (int k = 0; k < 8; k++) {
        switch (reversed ? 7 - k : k) {
        case 0: proc(NW_PSRC_KP_START, 100, T0 + 10 * SEC, NW_PREC_EXACT, 0,
                     "\\Device\\X\\a.exe", "", "", -1); break;
        case 1: proc(NW_PSRC_KP_STOP, 100, T0 + 10 * SEC, NW_PREC_EXACT, T0 + 20 * SEC,
                     "a.exe", "", "", -1); break;
        case 2: proc(NW_PSRC_KP_START, 100, T0 + 30 * SEC, NW_PREC_EXACT, 0,
                     "\\Device\\X\\b.exe", "", "", -1); break;
        case 3: proc(NW_PSRC_SYSMON_NETWORK, 200, T0 + 100 * SEC, NW_PREC_SECOND, 0,
                     "C:\\w\\x.exe", g, "", -1); break;
        case 4: proc(NW_PSRC_KP_START, 200, exact, NW_PREC_EXACT, 0,
                     "\\Device\\HarddiskVolume2\\w\\x.exe", "", "", 4); break;
        case 5: proc(NW_PSRC_SYSMON_CREATE, 200, T0 + 100 * SEC + 1230000, NW_PREC_MS, 0,
                     "C:\\w\\x.exe", g, "x.exe -k", 4); break;
        case 6: proc(NW_PSRC_SYSMON_EXIT, 200, T0 + 100 * SEC, NW_PREC_SECOND, T0 + 200 * SEC,
                     "C:\\w\\x.exe", g, "", -1); break;
        case 7: proc(NW_PSRC_KP_RUNDOWN, 4, T0 - 3600 * SEC, NW_PREC_EXACT, 0, "System", "",
                     "", -1); break;
        }
    }
}

/* processes.db's rows as text, in key order; caller frees. */
static char *dump_processes(void)
{
    char path[sizeof g_dir + 16];
    snprintf(path, sizeof path, "%s/processes.db", g_dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT quote(host), pid, create_time, create_prec,"
                                        " quote(exit_time), quote(parent_pid),"
                                        " quote(session_id), quote(sequence), quote(image),"
                                        " quote(parent_image), quote(command_line),"
                                        " quote(user), quote(guid) FROM processes"
                                        " ORDER BY host, pid, create_time",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++)
            len += (size_t)snprintf(out + len, cap - len, "%s|",
                                    (const char *)sqlite3_column_text(st, i));
        len += (size_t)snprintf(out + len, cap - len, "\n");
        ck_assert_uint_lt(len, cap - 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* A step's process events are committed before its commit point (the
 * catalog): after a crash between the two, the step is read or sent again
 * and its events applied a second time.  That must change nothing, in
 * either order. */
START_TEST(applying_events_again_changes_nothing)
{
    mixed_events(0);
    commit();
    char *once = dump_processes();
    ck_assert_ptr_nonnull(strstr(once, "'x.exe -k'"));
    mixed_events(0);
    commit();
    char *twice = dump_processes();
    ck_assert_str_eq(twice, once);
    mixed_events(1);
    commit();
    char *thrice = dump_processes();
    ck_assert_str_eq(thrice, once);
    free(once);
    free(twice);
    free(thrice);
}
END_TEST

static int collect(void *ctx, const nw_conn *c)
{
    char *out = ctx;
    char one[64];
    snprintf(one, sizeof one, "%lld:%s;", (long long)c->id,
             c->process ? nw_process_name(c->process->image) : "null");
    strcat(out, one);
    return 0;
}

START_TEST(queries_attribute_and_filter)
{
    nw_sink sink;
    nw_writer_sink(g_w, &sink);
    /* Connections first: their process events arrive later. */
    for (int i = 0; i < 4; i++) {
        nw_conn c;
        memset(&c, 0, sizeof c);
        c.id = i + 1;
        c.host = "WS01";
        c.pid = i < 3 ? 300 : 301;
        c.proto = NW_PROTO_TCP;
        c.ip_version = 4;
        c.first_seen = c.last_seen = c.anchor = T0 + (10 + 20 * i) * SEC;
        ck_assert(sink.conn(sink.ctx, &c) == NW_OK);
    }
    commit();
    char got[512] = "";
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    ck_assert(nw_query_connections(g_s, &q, collect, got, NULL, &err) == NW_OK);
    ck_assert_str_eq(got, "1:null;2:null;3:null;4:null;");
    /* pid 300: old.exe [0, 40 s], new.exe from 45 s; pid 301 unknown. */
    proc(NW_PSRC_KP_START, 300, T0, NW_PREC_EXACT, T0 + 40 * SEC, "C:\\old.exe", "", "", -1);
    proc(NW_PSRC_KP_START, 300, T0 + 45 * SEC, NW_PREC_EXACT, 0, "C:\\new.exe", "", "", -1);
    commit();
    got[0] = '\0';
    ck_assert(nw_query_connections(g_s, &q, collect, got, NULL, &err) == NW_OK);
    ck_assert_str_eq(got, "1:old.exe;2:old.exe;3:new.exe;4:null;");
    got[0] = '\0';
    q.process = "OLD";
    q.limit = 1;
    int more = 0;
    ck_assert(nw_query_connections(g_s, &q, collect, got, &more, &err) == NW_OK);
    ck_assert_str_eq(got, "1:old.exe;");
    ck_assert_int_eq(more, 1);
    got[0] = '\0';
    q.process = "c:\\NEW.exe";
    q.limit = 0;
    ck_assert(nw_query_connections(g_s, &q, collect, got, &more, &err) == NW_OK);
    ck_assert_str_eq(got, "3:new.exe;");
    nw_conn one;
    ck_assert(nw_query_connection(g_s, 2, &one, &err) == NW_OK);
    ck_assert_ptr_nonnull(one.process);
    ck_assert_str_eq(one.process->image, "C:\\old.exe");
}
END_TEST

START_TEST(retention_prunes_exited_processes)
{
    nw_sink sink;
    nw_writer_sink(g_w, &sink);
    const nw_time day = 86400 * SEC;
    for (int d = 0; d < 3; d++) {       /* partitions of day 0, 1, 2 */
        nw_conn c;
        memset(&c, 0, sizeof c);
        c.id = d + 1;
        c.host = "WS01";
        c.pid = 400;
        c.proto = NW_PROTO_TCP;
        c.ip_version = 4;
        c.first_seen = c.last_seen = c.anchor = T0 + d * day + 60 * SEC;
        ck_assert(sink.conn(sink.ctx, &c) == NW_OK);
    }
    /* old.exe ran on day 0 only; svc.exe since day 0, still running;
     * mid.exe exited on day 1. */
    proc(NW_PSRC_KP_START, 400, T0, NW_PREC_EXACT, T0 + 120 * SEC, "C:\\old.exe", "", "", -1);
    proc(NW_PSRC_KP_START, 404, T0, NW_PREC_EXACT, 0, "C:\\svc.exe", "", "", -1);
    proc(NW_PSRC_KP_START, 408, T0 + day, NW_PREC_EXACT, T0 + day + 99 * SEC, "C:\\mid.exe",
         "", "", -1);
    commit();
    ck_assert_str_eq(at(400, T0 + 60 * SEC), "C:\\old.exe");
    nw_retention r = {.days = 2, .now = T0 + 3 * day};
    size_t dropped = 0;
    nw_err err = {{0}};
    ck_assert_msg(nw_store_apply_retention(g_s, &r, &dropped, &err) == NW_OK, "%s", err.msg);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_ptr_null(at(400, T0 + 60 * SEC));          /* pruned */
    ck_assert_str_eq(at(404, T0 + 2 * day), "C:\\svc.exe");  /* running: kept */
    ck_assert_str_eq(at(408, T0 + day + 60 * SEC), "C:\\mid.exe");
}
END_TEST

START_TEST(process_name_matching)
{
    ck_assert(nw_process_matches("C:\\Windows\\System32\\svchost.exe", "svchost.exe"));
    ck_assert(nw_process_matches("C:\\Windows\\System32\\svchost.exe", "SVCHOST"));
    ck_assert(nw_process_matches("\\Device\\HarddiskVolume4\\Windows\\System32\\svchost.exe",
                                 "C:\\windows\\system32\\SVCHOST.EXE"));
    ck_assert(!nw_process_matches("C:\\Windows\\System32\\svchost.exe", "svc"));
    ck_assert(!nw_process_matches("C:\\Windows\\svchost.exe", "C:\\Windows\\System32\\svchost.exe"));
    ck_assert(!nw_process_matches(NULL, "x"));
    ck_assert_str_eq(nw_process_name("System"), "System");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, no_table_is_unknown);
    tcase_add_test(tc, pid_reuse_never_crosses_holders);
    tcase_add_test(tc, sources_of_one_process_merge);
    tcase_add_test(tc, applying_events_again_changes_nothing);
    tcase_add_test(tc, queries_attribute_and_filter);
    tcase_add_test(tc, retention_prunes_exited_processes);
    tcase_add_test(tc, process_name_matching);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
