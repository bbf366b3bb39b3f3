// The smallest C++ program that allocates: nothing but operator new, so that a static link
// pulls in no more of the C++ runtime than it asks for. When no memory is to be had, new
// still throws std::bad_alloc and the std::nothrow form returns null: for a request no heap
// could ever satisfy, and for one that the address space left (RLIMIT_AS) cannot. Built
// linked with libvmalloc.so and, fully static, with libvmalloc.a.
#include <cstdint>
#include <cstdio>
#include <new>
#include <sys/resource.h>

namespace {

void *volatile sink;

// A request no heap can satisfy, hidden from the optimiser.
std::size_t impossible_size()
{
    volatile std::size_t impossible = SIZE_MAX / 2 - 4096;
    return impossible;
}

} // namespace

int main()
{
    int failures = 0;
    bool threw = false;
    try {
        sink = ::operator new(impossible_size());
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    if (!threw) {
        std::fprintf(stderr, "FAIL: operator new did not throw std::bad_alloc\n");
        failures++;
    }
    sink = ::operator new(impossible_size(), std::nothrow);
    if (sink != nullptr) {
        std::fprintf(stderr, "FAIL: nothrow operator new did not return null\n");
        failures++;
    }
    // A request the heap tries to map, and the kernel refuses: the real way memory runs out.
    struct rlimit limit = {std::size_t(1) << 30, std::size_t(1) << 30};
    struct rlimit before;
    getrlimit(RLIMIT_AS, &before);
    if (before.rlim_cur == RLIM_INFINITY && setrlimit(RLIMIT_AS, &limit) == 0) {
        volatile std::size_t beyond_limit = std::size_t(2) << 30;
        threw = false;
        try {
            sink = ::operator new(beyond_limit);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        if (!threw) {
            std::fprintf(stderr, "FAIL: operator new beyond RLIMIT_AS did not throw\n");
            failures++;
        }
        threw = false;
        try {
            sink = ::operator new(beyond_limit, std::align_val_t(4096));
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        if (!threw) {
            std::fprintf(stderr, "FAIL: aligned operator new beyond RLIMIT_AS did not throw\n");
            failures++;
        }
        setrlimit(RLIMIT_AS, &before);
    }
    int *number = new int(7);
    if (*number != 7)
        failures++;
    delete number;
    if (failures == 0)
        std::printf("test_new_minimal: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
