// The smallest C++ program that allocates: nothing but operator new, so that a static link
// pulls in no more of the C++ runtime than it asks for. When no memory is to be had, new
// still throws std::bad_alloc and the std::nothrow form returns null. Built linked with
// libvmalloc.so and, fully static, with libvmalloc.a.
#include <cstdint>
#include <cstdio>
#include <new>

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
    int *number = new int(7);
    if (*number != 7)
        failures++;
    delete number;
    if (failures == 0)
        std::printf("test_new_minimal: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
