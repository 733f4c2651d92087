/* check_main.h -- how every Check test program runs: its one suite, all
 * tests, normal output, exit status 1 if any test failed. */
#ifndef NETWHO_TEST_CHECK_MAIN_H
#define NETWHO_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Runs s (the runner frees it) and returns main's exit status. */
static inline int nw_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
