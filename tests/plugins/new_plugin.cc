// A C++ plugin for a C program (tests/api/test_cxx_plugin.c), which loads it, and with it
// libstdc++, with dlopen: operator new must behave as C++ says inside it too.
#include <cstdint>
#include <new>

namespace {

void *volatile allocation_sink;
int handler_calls = 0;

void handler_that_gives_up_second_time()
{
    if (++handler_calls == 2)
        std::set_new_handler(nullptr);
}

// A request no heap can satisfy; fails the same way with every check level.
std::size_t impossible_size()
{
    volatile std::size_t impossible = SIZE_MAX / 2 - 4096;
    return impossible;
}

} // namespace

// The operator new this plugin calls, as an address the C program can compare.
extern "C" void *plugin_operator_new()
{
    void *(*plain_new)(std::size_t) = &::operator new;
    return reinterpret_cast<void *>(plain_new);
}

// 1 if operator new threw std::bad_alloc, 0 if it returned.
extern "C" int plugin_new_throws_bad_alloc()
{
    try {
        allocation_sink = ::operator new(impossible_size());
    } catch (const std::bad_alloc &) {
        return 1;
    }
    return 0;
}

// How many times operator new called a handler that gives up on its second call, before
// it threw std::bad_alloc; -1 if it did not throw.
extern "C" int plugin_new_handler_calls()
{
    handler_calls = 0;
    std::set_new_handler(handler_that_gives_up_second_time);
    try {
        allocation_sink = ::operator new(impossible_size(), std::align_val_t(64));
    } catch (const std::bad_alloc &) {
        return handler_calls;
    }
    return -1;
}

// A block from operator new in the plugin, for the C program to free.
extern "C" void *plugin_new_block(std::size_t size)
{
    return ::operator new(size);
}
