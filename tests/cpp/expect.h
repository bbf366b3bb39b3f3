// The checks of the C++ test programs: EXPECT counts a failed condition and goes on, and
// expect_summary ends main with the count.
#ifndef VMALLOC_TESTS_CPP_EXPECT_H
#define VMALLOC_TESTS_CPP_EXPECT_H

#include <cstdio>

inline int expect_failures = 0;

#define EXPECT(condition)                                                                 \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            std::fprintf(stderr, "FAIL: %s:%d: %s\n", __FILE__, __LINE__, #condition);    \
            expect_failures++;                                                            \
        }                                                                                 \
    } while (0)

// main's exit status: 0 when every check passed.
inline int expect_summary(const char *program)
{
    if (expect_failures != 0) {
        std::fprintf(stderr, "FAIL: %d check(s) failed\n", expect_failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", program);
    return 0;
}

#endif
