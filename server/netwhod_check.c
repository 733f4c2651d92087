/*
 * netwhod_check.c -- the store check at start.
 *
 * The newest partition is the one a crash or a full disk most likely left
 * damaged, and the one ingest writes next; older ones were checked when
 * they were newest.  So at start netwhod runs PRAGMA quick_check on it
 * (O(file size), without the index cross-checks of integrity_check: a
 * day's partition checks in well under a second) and compares every
 * file's schema version with this build's.  A problem is logged and shown
 * in /health (status "degraded", "store_check"); netwhod still starts:
 * queries on the other partitions keep working, and the damaged one
 * answers errors, not a crash.
 *
 * Before the check, every partition of an older schema is upgraded in
 * place (nw_store_migrate), so the whole store has this build's indexes
 * and tables, not only the days ingest writes again.  A store netwhod
 * cannot write (a read-only copy) is served as it is: readers understand
 * every older version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "netwhod.h"
#include "netwho/store.h"

/* Lines of quick_check output kept in the message. */
#define NWD_CHECK_LINES 3

/* The partition's user_version and quick_check verdict into msg ("" = ok). */
static void check_file(const char *path, const char *name, char *msg, size_t cap)
{
    sqlite3 *db = NULL;
    msg[0] = 0;
    nw_err err = {{0}};
    if (nw_store_open_file_ro(path, &db, &err) != NW_OK) {
        snprintf(msg, cap, "%s: cannot open: %s", name, err.msg);
        return;
    }
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version < 0) {
        snprintf(msg, cap, "%s: not readable as SQLite: %s", name, sqlite3_errmsg(db));
    } else if (version == 0) {
        snprintf(msg, cap, "%s: empty or not a netwho partition (schema version 0)", name);
    } else if (version > NW_SCHEMA_VERSION) {
        snprintf(msg, cap, "%s: schema version %d is newer than this netwhod's (%d)", name,
                 version, NW_SCHEMA_VERSION);
    } else if (sqlite3_prepare_v2(db, "PRAGMA quick_check(" "3" ")", -1, &st, NULL) !=
               SQLITE_OK) {
        snprintf(msg, cap, "%s: quick_check: %s", name, sqlite3_errmsg(db));
    } else {
        int rc, lines = 0;
        size_t len = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && lines < NWD_CHECK_LINES) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            if (t && strcmp(t, "ok") == 0)
                break;
            len += (size_t)snprintf(msg + len, len < cap ? cap - len : 0, "%s%s%s",
                                    lines ? "; " : "", lines ? "" : name,
                                    lines ? (t ? t : "") : "");
            if (!lines && len < cap)
                len += (size_t)snprintf(msg + len, cap - len, ": quick_check: %s",
                                        t ? t : "");
            lines++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            snprintf(msg, cap, "%s: quick_check: %s", name, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Upgrades older partitions in place and says so; a failure is logged and
 * left to the writer, which upgrades a file when it next writes it. */
static void migrate(nw_store *s)
{
    size_t migrated = 0, failed = 0;
    int oldest = NW_SCHEMA_VERSION;
    nw_err err = {{0}};
    nw_status st = nw_store_migrate(s, &migrated, &failed, &oldest, &err);
    if (st != NW_OK)
        nwd_log("store: schema upgrade not done: %s", err.msg);
    if (migrated)
        nwd_log("store: upgraded %zu partition%s from schema version %d to %d in place",
                migrated, migrated == 1 ? "" : "s", oldest, NW_SCHEMA_VERSION);
    if (failed)
        nwd_log("store: ERROR: %zu partition%s could not be upgraded (%s); each is read "
                "as it is and upgraded when ingest next writes it",
                failed, failed == 1 ? "" : "s", err.msg);
}

char *nwd_store_check(const char *dir)
{
    nw_store *s = NULL;
    nw_err err = {{0}};
    nw_store_opts so = {.partition = NW_PART_DEFAULT, .create = 0};
    char msg[NW_ERR_MAX * 2] = "";
    if (nw_store_open(dir, &so, &s, &err) != NW_OK) {
        snprintf(msg, sizeof msg, "catalog: %s", err.msg);
    } else {
        if (access(dir, W_OK) == 0)
            migrate(s);
        nw_partition_info *parts = NULL;
        size_t n = 0;
        if (nw_store_partitions(s, &parts, &n, &err) != NW_OK) {
            snprintf(msg, sizeof msg, "catalog: %s", err.msg);
        } else if (n > 0) {
            const char *name = parts[n - 1].name;   /* ordered by start */
            size_t len = strlen(dir) + strlen(name) + 2;
            char *path = malloc(len);
            if (path) {
                snprintf(path, len, "%s/%s", dir, name);
                check_file(path, name, msg, sizeof msg);
                free(path);
            }
        }
        free(parts);
        nw_store_close(s);
    }
    if (!msg[0]) {
        nwd_log("store check: ok");
        return NULL;
    }
    nwd_log("store check: ERROR: %s (queries on the other partitions keep working)", msg);
    return strdup(msg);
}
