/* test_checkpoint.c -- checkpoints committed with the data (checkpoint.h):
 * loaded back, the previous one used when a commit did not reach its
 * partitions, a cut between partition files detected. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwho/checkpoint.h"
#include "netwho/store.h"
#include "netwho/writer.h"
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
 * checkpoint of seq, one file at offset, a tracker blob "blob-<seq>". */
static void commit_with(uint64_t seq, nw_time t1, nw_time t2, uint64_t offset)
{
    nw_writer *w = NULL;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_writer_open(S, &w, &err), NW_OK);
    nw_writer_hold(w, 1);
    nw_sink sink;
    nw_writer_sink(w, &sink);
    nw_failure f = {.time = t1, .host = "H", .event_id = 17, .proto = 6, .fail_proto = 2};
    ck_assert_int_eq(sink.failure(sink.ctx, &f), NW_OK);
    if (t2) {
        f.time = t2;
        ck_assert_int_eq(sink.failure(sink.ctx, &f), NW_OK);
    }
    nw_ckpt ck = {.seq = seq, .nfiles = 1};
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

static void load(nw_ckpt *ck, char *warn)
{
    nw_err err = {{0}};
    ck_assert_int_eq(nw_store_checkpoint_load(S, ck, warn, 512, &err), NW_OK);
}

/* Sets a partition's mark back, as if its commit had not happened. */
static void set_mark(const char *name, uint64_t seq)
{
    char path[128], sql[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE checkpoint_mark SET seq = %llu", (unsigned long long)seq);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
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

START_TEST(a_commit_that_missed_its_partition_falls_back)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, 0, 250);
    /* Crash after the catalog committed checkpoint 2, before the partition. */
    set_mark("p-2026-03-16.db", 1);
    load(&ck, warn);
    ck_assert_int_eq(ck.seq, 1);
    ck_assert_int_eq(ck.files[0].offset, 100);
    ck_assert_int_eq(memcmp(ck.tracker, "blob-1", 6), 0);
    ck_assert_str_eq(warn, "");     /* nothing of commit 2 happened */
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

START_TEST(a_commit_cut_between_partitions_is_repaired)
{
    nw_ckpt ck;
    char warn[512];
    commit_with(1, DAY1 + SEC, 0, 100);
    commit_with(2, DAY1 + 2 * SEC, DAY1 + 86400LL * SEC, 250);   /* two days */
    ck_assert_int_eq(fail_rows("p-2026-03-17.db"), 1);
    /* As if the crash came after the 16th's COMMIT, before the 17th's. */
    char path[128];
    snprintf(path, sizeof path, "%s/p-2026-03-17.db", dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM failures", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
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
    char path[128];
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE checkpoint SET redo = NULL", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
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

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, none_until_one_is_committed_then_the_newest);
    tcase_add_test(tc, a_commit_that_missed_its_partition_falls_back);
    tcase_add_test(tc, a_commit_cut_between_partitions_is_repaired);
    tcase_add_test(tc, a_cut_commit_without_redo_falls_back_and_says_so);
    tcase_add_test(tc, a_step_without_rows_still_commits_its_checkpoint);
    tcase_add_test(tc, a_dropped_partition_does_not_void_the_checkpoint);
    tcase_add_test(tc, dead_letters_of_a_step_that_did_not_commit_are_cut_back);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
