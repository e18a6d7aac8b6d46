/* test.h - tiny assertion helpers (after libuv's test/task.h): print both values and file:line.
 * A test binary takes the case name as argv[1] and lists its cases with --list (MP_TEST_MAIN). */
#ifndef MP_TEST_H
#define MP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MP_FAILF(...)                                                   \
    do {                                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
        abort();                                                        \
    } while (0)

#define MP_ASSERT(c)                                                    \
    do { if (!(c)) MP_FAILF("assertion failed: %s", #c); } while (0)
#define MP_ASSERT_EQ(a, b)                                              \
    do { long long a_ = (long long)(a), b_ = (long long)(b);            \
         if (a_ != b_) MP_FAILF("%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define MP_ASSERT_OK(st)                                                \
    do { mp_status s_ = (st);                                           \
         if (s_ != MP_OK) MP_FAILF("%s: %s (%s)", #st, mp_strerror(s_), mp_last_error()); } while (0)
#define MP_ASSERT_STATUS(st, want)                                      \
    do { mp_status s_ = (st), w_ = (want);                              \
         if (s_ != w_) MP_FAILF("%s: got %s, want %s (%s)", #st, mp_strerror(s_), mp_strerror(w_), \
                                mp_last_error()); } while (0)
#define MP_ASSERT_STR_EQ(a, b)                                          \
    do { const char *a_ = (a), *b_ = (b);                               \
         if (strcmp(a_, b_) != 0) MP_FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b, a_, b_); } while (0)
#define MP_ASSERT_NEAR(a, b, tol)                                       \
    do { double a_ = (a), b_ = (b);                                     \
         if (!(fabs(a_ - b_) <= (tol))) MP_FAILF("%s ~ %s: %g vs %g (tol %g)", #a, #b, a_, b_, (double)(tol)); } while (0)

typedef struct mp_test_case { const char *name; void (*fn)(void); } mp_test_case;

/* A test binary's main: `--list` prints the case names, one a line (tests/CMakeLists.txt registers
 * a ctest case for each, so a case cannot exist without running); a name runs that case; no
 * argument runs them all. Exit 77 = skipped, 2 = no such case. */
static inline int mp_test_run(const mp_test_case *cases, size_t n, int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
        cases[i].fn();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "no such case: %s (--list names them)\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    return 0;
}

#define MP_TEST_MAIN(cases) \
    int main(int argc, char **argv) { return mp_test_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv); }

/* Skip the current binary (ctest SKIP_RETURN_CODE 77). */
#define MP_SKIP(...) do { fprintf(stderr, "skipped: " __VA_ARGS__); fputc('\n', stderr); exit(77); } while (0)

#endif
