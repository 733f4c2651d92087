/* test_checkpoint.c -- checkpoints committed with the data (checkpoint.h):
 * loaded back; a commit that missed one or more partitions, or rollups.db,
 * repaired from the catalog exactly once; a step over more partitions than
 * open handles committed once; dead letters of uncommitted steps cut back. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwho/checkpoint.h"
#include "netwho/hourly.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"
#include "store_fixture.h"

#define SEC NW_TICKS_PER_SEC
#define DAY1 (1773619200LL * SEC) /* 2026-03-16T00:00:00Z */

static char dir[64];
static nw_store *S;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/nw-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    nw_store_opts o = {.partition = NW_PART_DAY, .create = 1};
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_open(dir, &o, &S, &err), NW_OK);
}

static void teardown(void)
{
    nw_store_close(S);
    rm_rf(dir);
}

/* Writes one failure at time t (into t's partition) and commits it with a
 * checkpoint of seq, one file at offset, a tracker blob "blob-<seq>", and
 * key (NULL: none) with complete as the newest complete checkpoint. */
static void commit_keyed(uint64_t seq, nw_time t1, nw_time t2, uint64_t offset,
                         const nw_ckpt_key *key, uint64_t complete)
{
    nw_err err = {{0}};
    nw_sink sink;
    nw_writer *w = fx_writer_open(S, 0, &sink);
    nw_writer_hold(w, 1);
    nw_failure f = {.time = t1, .host = "H", .event_id = 17, .proto = 6, .fail_proto = 2};
    ck_assert_int_eq(sink.failure(sink.ctx, &f), NW_OK);
    if (t2) {
        f.time = t2;
        ck_assert_int_eq(sink.failure(sink.ctx, &f), NW_OK);
    }
    nw_ckpt ck = {.seq = seq, .nfiles = 1, .key = key, .complete_seq = complete};
    snprintf(ck.files[0].path, sizeof ck.files[0].path, "/var/log/x.ndjson");
    ck.files[0].dev = 7;
    ck.files[0].ino = 1234567;
    ck.files[0].offset = offset;
    ck.files[0].head_len = 10;
    ck.files[0].head_hash = nw_ckpt_hash("0123456789", 10);
    char blob[32];
    snprintf(blob, sizeof blob, "blob-%llu", (unsigned long long)seq);
    ck.tracker = (unsigned char *)blob;
    ck.tracker_len = strlen(blob);
    ck_assert_int_eq(nw_writer_commit_checkpoint(w, &ck, &err), NW_OK);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
}

static void commit_with(uint64_t seq, nw_time t1, nw_time t2, uint64_t offset)
{
    commit_keyed(seq, t1, t2, offset, NULL, seq - 1);
}

static void load(nw_ckpt *ck, char *warn)
{
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_checkpoint_load(S, ck, warn, 512, &err), NW_OK);
}

/* Runs sql on the store's file name. */
static void sql_on(const char *name, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Sets a partition's mark back, as if its commit had not happened. */
static void set_mark(const char *name, uint64_t seq)
{
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE checkpoint_mark SET seq = %llu", (unsigned long long)seq);
    sql_on(name, sql);
}

START_TEST(none_until_one_is_committed_then_the_newest)
{
    nw_ckpt ck;
    char warn[512];
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 0);
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, 0, 250);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    ck_assert_str_eq(warn, "");
    ck_assert_int_eq(ck.nfiles, 1);
    ck_assert_str_eq(ck.files[0].path, "/var/log/x.ndjson");
    ck_assert_int_eq(ck.files[0].offset, 250);
    ck_assert_int_eq(ck.files[0].ino, 1234567);
    ck_assert_uint_eq(ck.files[0].head_hash, nw_ckpt_hash("0123456789", 10));
    ck_assert_int_eq(ck.tracker_len, 6);
    ck_assert_int_eq(memcmp(ck.tracker, "blob-2", 6), 0);
    nw_ckpt_clear(&ck);
}
END_TEST

/* Rows of a partition (failures). */
static int fail_rows(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM failures", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Undoes a partition's COMMIT of the failure at time t (as if the crash
 * had come before it) and sets its mark back to seq. */
static void uncommit(const char *name, nw_time t, uint64_t seq)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM failures WHERE time = %lld", (long long)t);
    sql_on(name, sql);
    set_mark(name, seq);
}

START_TEST(a_commit_that_missed_its_only_partition_is_repaired)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, 0, 250);
    /* Crash after the catalog committed checkpoint 2, before the partition:
     * the catalog's commit is the step's, its rows come from the redo. */
    uncommit("p-2026-03-16.db", DAY1 + 2 * SEC, 1);
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 1);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    ck_assert_int_eq(ck.files[0].offset, 250);
    ck_assert_int_eq(memcmp(ck.tracker, "blob-2", 6), 0);
    ck_assert_ptr_nonnull(strstr(warn, "redo"));
    nw_ckpt_clear(&ck);
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 2);
    load(&ck, warn);                 /* once: whole now */
    ck_assert_str_eq(warn, "");
    nw_ckpt_clear(&ck);
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 2);
}
END_TEST

/* Whether key is committed by checkpoint complete or earlier. */
static int key_known(const char *key, uint64_t complete, uint64_t *accepted)
{
    nw_ckpt_key k;
    int found = -1;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_key_get(S, key, complete, &k, &found, &err), NW_OK);
    if (found && accepted)
        *accepted = k.accepted;
    return found;
}

/* A POST's key is written in its commit's catalog transaction: if a crash
 * cuts that commit before its partition, the key must not answer a resend
 * as a duplicate until the rows are there -- the load repairs them from
 * the redo record, and from then on the key counts, exactly once.  A
 * commit cut that could not be repaired is forgotten with its key: the
 * next commit deletes keys newer than the newest complete checkpoint. */
START_TEST(a_keyed_commit_counts_only_once_its_rows_are_there)
{
    nw_ckpt ck;
    char warn[512];
    nw_ckpt_key k = {.key = "post-2", .body_hash = 42, .accepted = 1,
                     .at = (int64_t)time(NULL)};
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_keyed(2, DAY1 + 2 * SEC, 0, 250, &k, 1);
    uncommit("p-2026-03-16.db", DAY1 + 2 * SEC, 1);
    ck_assert_int_eq(key_known("post-2", 1, NULL), 0);     /* not before the load */
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    nw_ckpt_clear(&ck);
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 2);
    uint64_t acc = 0;
    ck_assert_int_eq(key_known("post-2", 2, &acc), 1);
    ck_assert_uint_eq(acc, 1);

    /* A commit whose number never became complete (its key written, the
     * store then went back to checkpoint 2): the next commit drops it. */
    nw_ckpt_key k3 = k;
    snprintf(k3.key, sizeof k3.key, "post-3");
    commit_keyed(3, DAY1 + 3 * SEC, 0, 300, &k3, 2);
    ck_assert_int_eq(key_known("post-3", 3, NULL), 1);
    commit_keyed(4, DAY1 + 4 * SEC, 0, 350, NULL, 2);      /* 3 was cut */
    ck_assert_int_eq(key_known("post-3", 4, NULL), 0);
    ck_assert_int_eq(key_known("post-2", 4, NULL), 1);
}
END_TEST

START_TEST(a_commit_cut_between_partitions_is_repaired)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, DAY1 + 86400LL * SEC, 250);   /* two days */
    ck_assert_int_eq(fail_rows("p-2026-03-17.db"), 1);
    /* As if the crash came after the 16th's COMMIT, before the 17th's. */
    sql_on("p-2026-03-17.db", "DELETE FROM failures");
    set_mark("p-2026-03-17.db", 1);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    ck_assert_int_eq(ck.files[0].offset, 250);
    ck_assert_ptr_nonnull(strstr(warn, "p-2026-03-17.db"));
    ck_assert_ptr_nonnull(strstr(warn, "redo"));
    nw_ckpt_clear(&ck);
    /* Written again there only: once in each partition. */
    ck_assert_int_eq(fail_rows("p-2026-03-17.db"), 1);
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 2);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    ck_assert_str_eq(warn, "");
    nw_ckpt_clear(&ck);
}
END_TEST

START_TEST(a_cut_commit_without_redo_falls_back_and_says_so)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, DAY1 + 86400LL * SEC, 250);
    /* As a catalog of a build that kept no redo record for it. */
    sql_on("catalog.db", "DELETE FROM checkpoint_blob");
    set_mark("p-2026-03-17.db", 1);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 1);
    ck_assert_ptr_nonnull(strstr(warn, "p-2026-03-17.db"));
    ck_assert_ptr_nonnull(strstr(warn, "written again"));
    nw_ckpt_clear(&ck);
}
END_TEST

START_TEST(a_step_without_rows_still_commits_its_checkpoint)
{
    nw_writer *w = NULL;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_writer_open(S, &w, &err), NW_OK);
    nw_ckpt ck = {.seq = 5};
    ck_assert_int_eq(nw_writer_commit_checkpoint(w, &ck, &err), NW_OK);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
    char warn[512];
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 5);
    ck_assert_int_eq(ck.nfiles, 0);
    ck_assert_ptr_null(ck.tracker);
    nw_ckpt_clear(&ck);
}
END_TEST

START_TEST(a_dropped_partition_does_not_void_the_checkpoint)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, DAY1 + 86400LL * SEC, 250);
    /* Retention unlinked the older day after commit 2. */
    char path[128];
    snprintf(path, sizeof path, "%s/p-2026-03-16.db", dir);
    ck_assert_int_eq(unlink(path), 0);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 2);
    ck_assert_str_eq(warn, "");
    nw_ckpt_clear(&ck);
}
END_TEST

/* ------------------------------------------------ dead letters, exactly once */

/* Lines of every file in DIR/rejected, and how many files there are. */
static int dl_lines(int *files)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat %s/rejected/*.ndjson 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = -1;
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    if (files) {
        snprintf(cmd, sizeof cmd, "ls %s/rejected | wc -l", dir);
        p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(fscanf(p, "%d", files), 1);
        pclose(p);
    }
    return n;
}

/* Rejects n events through a fresh writer; commit 1: with a checkpoint
 * (then closed), 0: discarded, as a crash or a failed step leaves it. */
static void reject_n(int n, int commit, uint64_t seq)
{
    nw_writer *w = NULL;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_writer_open(S, &w, &err), NW_OK);
    nw_writer_hold(w, 1);
    for (int i = 0; i < n; i++) {
        nw_rejection r = {.reason = NW_REJ_BAD_JSON, .source = "t", .offset = (uint64_t)i,
                          .raw = "{oops", .raw_len = 5, .full_len = 5, .detail = "x"};
        ck_assert_int_eq(nw_writer_reject(w, &r, &err), NW_OK);
    }
    if (!commit) {
        nw_writer_discard(w);
        return;
    }
    nw_ckpt ck = {.seq = seq};
    ck_assert_int_eq(nw_writer_commit_checkpoint(w, &ck, &err), NW_OK);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
}

START_TEST(dead_letters_of_a_step_that_did_not_commit_are_cut_back)
{
    int files = 0;
    /* A file from before (no row in the catalog) is committed data. */
    char path[160];
    snprintf(path, sizeof path, "%s/rejected", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rejected/rejected-2001-01-01.ndjson", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"old\":1}\n", f);
    fclose(f);
    /* A first step that never commits: a new file, cut back to nothing. */
    reject_n(3, 0, 0);
    ck_assert_int_eq(dl_lines(NULL), 4);
    reject_n(2, 1, 1);
    ck_assert_int_eq(dl_lines(&files), 3);
    reject_n(4, 0, 0);               /* discarded: its 4 lines go */
    reject_n(1, 1, 2);
    ck_assert_int_eq(dl_lines(&files), 4);
    ck_assert_int_eq(files, 2);
    /* The next writer, whoever it is, starts from the committed length. */
    reject_n(5, 0, 0);
    nw_writer *w = NULL;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_writer_open(S, &w, &err), NW_OK);
    ck_assert_int_eq(dl_lines(NULL), 4);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
}
END_TEST

/* ------------------------------- a step over many partitions, roll-ups */

static nw_conn mkconn(int64_t id, nw_time first, uint64_t sent)
{
    nw_conn c = fx_conn(id, first, first + 2 * SEC);
    char rip[32];
    snprintf(rip, sizeof rip, "10.2.20.%d", (int)(100 + id % 7));
    c.remote_ip = fx_addr(rip);
    c.local_port = (uint16_t)(50000 + id);
    c.remote_port = 443;
    c.bytes_sent = sent;
    c.bytes_received = 2 * sent;
    return c;
}

typedef struct totals { uint64_t conns, sent, recv; } totals;

static int add_total(void *ctx, const nw_hourly_row *r)
{
    totals *t = ctx;
    t->conns += r->connections;
    t->sent += r->bytes_sent;
    t->recv += r->bytes_received;
    return 0;
}

static totals hourly_totals(void)
{
    totals t = {0, 0, 0};
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    q.by_hour = 0;
    nw_err err = {{0}};
    nw_store *r = NULL;              /* a fresh read: files were changed */
    nw_store_opts o = {.partition = NW_PART_DAY};
    ck_assert_int_eq(nw_store_open(dir, &o, &r, &err), NW_OK);
    ck_assert_int_eq(nw_query_hourly(r, &q, add_total, &t, NULL, &err), NW_OK);
    nw_store_close(r);
    return t;
}

static uint64_t catalog_conns(void)
{
    nw_partition_info *v;
    size_t n;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_partitions(S, &v, &n, &err), NW_OK);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i].connections;
    free(v);
    return sum;
}

#define MANY_DAYS (NW_WRITER_MAX_OPEN_PARTITIONS + 4)

START_TEST(a_step_over_more_partitions_than_handles_commits_once_and_is_repaired)
{
    nw_err err = {{0}};
    nw_sink sink;
    nw_writer *w = fx_writer_open(S, 0, &sink);
    nw_writer_hold(w, 1);
    for (int d = 0; d < MANY_DAYS; d++) {
        nw_conn c = mkconn(1 + d, DAY1 + d * 86400LL * SEC + 3600LL * SEC, 1000 + d);
        ck_assert_int_eq(sink.conn(sink.ctx, &c), NW_OK);
        nw_failure f = {.time = c.first_seen, .host = "H", .event_id = 17, .proto = 6};
        ck_assert_int_eq(sink.failure(sink.ctx, &f), NW_OK);
    }
    /* Nothing committed early, although no more than 8 handles are kept
     * between steps: the first day's rows wait for the checkpoint. */
    ck_assert_int_eq(fail_rows("p-2026-03-16.db"), 0);
    nw_ckpt ck = {.seq = 1};
    ck_assert_int_eq(nw_writer_commit_checkpoint(w, &ck, &err), NW_OK);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
    totals want = hourly_totals();
    ck_assert_uint_eq(want.conns, MANY_DAYS);
    ck_assert_uint_eq(catalog_conns(), MANY_DAYS);

    /* The crash: the catalog committed, three partitions and the roll-up
     * did not. */
    const char *lost[] = {"p-2026-03-17.db", "p-2026-03-22.db", "p-2026-03-27.db"};
    for (int i = 0; i < 3; i++)
        sql_on(lost[i], "DELETE FROM failures; DELETE FROM connections; "
                        "DELETE FROM who_rollup; UPDATE checkpoint_mark SET seq = 0");
    sql_on("rollups.db", "DELETE FROM hourly; UPDATE rollup_mark SET seq = 0");
    ck_assert_uint_eq(hourly_totals().conns, 0);

    char warn[512];
    for (int round = 0; round < 2; round++) {   /* repaired once, then whole */
        load(&ck, warn);
        ck_assert_int_eq(ck.seq, 1);
        if (round == 0) {
            ck_assert_ptr_nonnull(strstr(warn, "p-2026-03-22.db"));
        } else {
            ck_assert_str_eq(warn, "");
        }
        nw_ckpt_clear(&ck);
        char name[64];
        for (int d = 0; d < MANY_DAYS; d++) {
            snprintf(name, sizeof name, "p-2026-03-%02d.db", 16 + d);
            ck_assert_int_eq(fail_rows(name), 1);
        }
        totals got = hourly_totals();
        ck_assert_uint_eq(got.conns, want.conns);
        ck_assert_uint_eq(got.sent, want.sent);
        ck_assert_uint_eq(got.recv, want.recv);
        ck_assert_uint_eq(catalog_conns(), MANY_DAYS);
    }
}
END_TEST

START_TEST(a_roll_up_that_missed_its_commit_is_repaired_once)
{
    nw_err err = {{0}};
    nw_sink sink;
    nw_writer *w = fx_writer_open(S, 0, &sink);
    nw_writer_hold(w, 1);
    for (int i = 1; i <= 5; i++) {
        nw_conn c = mkconn(i, DAY1 + i * 1800LL * SEC, 100 * (uint64_t)i);
        ck_assert_int_eq(sink.conn(sink.ctx, &c), NW_OK);
    }
    nw_ckpt ck = {.seq = 7};
    ck_assert_int_eq(nw_writer_commit_checkpoint(w, &ck, &err), NW_OK);
    ck_assert_int_eq(nw_writer_close(w, &err), NW_OK);
    totals want = hourly_totals();
    ck_assert_uint_eq(want.conns, 5);
    ck_assert_uint_eq(want.sent, 1500);
    /* The partition committed; the roll-up's commit did not happen. */
    sql_on("rollups.db", "DELETE FROM hourly; UPDATE rollup_mark SET seq = 6");
    char warn[512];
    for (int round = 0; round < 2; round++) {
        load(&ck, warn);
        ck_assert_int_eq(ck.seq, 7);
        nw_ckpt_clear(&ck);
        totals got = hourly_totals();
        ck_assert_uint_eq(got.conns, 5);
        ck_assert_uint_eq(got.sent, 1500);
        ck_assert_uint_eq(got.recv, 3000);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, none_until_one_is_committed_then_the_newest);
    tcase_add_test(tc, a_commit_that_missed_its_only_partition_is_repaired);
    tcase_add_test(tc, a_keyed_commit_counts_only_once_its_rows_are_there);
    tcase_add_test(tc, a_commit_cut_between_partitions_is_repaired);
    tcase_add_test(tc, a_cut_commit_without_redo_falls_back_and_says_so);
    tcase_add_test(tc, a_step_without_rows_still_commits_its_checkpoint);
    tcase_add_test(tc, a_dropped_partition_does_not_void_the_checkpoint);
    tcase_add_test(tc, dead_letters_of_a_step_that_did_not_commit_are_cut_back);
    tcase_add_test(tc, a_step_over_more_partitions_than_handles_commits_once_and_is_repaired);
    tcase_add_test(tc, a_roll_up_that_missed_its_commit_is_repaired_once);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
