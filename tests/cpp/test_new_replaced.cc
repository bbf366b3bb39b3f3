// A program that replaces the four basic forms of operator new and delete (plain and
// aligned), as C++ allows: every other form must reach its replacements, as libstdc++'s
// do: new[] calls new, and the sized and array deletes call delete. Its blocks come from
// an arena of its own, so a delete that went to the heap instead would be reported as a
// pointer the heap never handed out. Built linked with libvmalloc.so and, statically, with
// libvmalloc.a, where vmalloc's own definitions must give way to these at link time.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "expect.h"

namespace {

alignas(4096) unsigned char arena[1 << 20];
std::size_t arena_used = 0;
int news = 0, deletes = 0, aligned_news = 0, aligned_deletes = 0;

void *arena_take(std::size_t size, std::size_t alignment)
{
    std::size_t start = (arena_used + alignment - 1) / alignment * alignment;
    if (start + size > sizeof arena)
        throw std::bad_alloc();
    arena_used = start + size;
    return arena + start;
}

bool in_arena(void *p)
{
    return p >= static_cast<void *>(arena) && p < static_cast<void *>(arena + sizeof arena);
}

struct Small {
    int value[3];
};
struct alignas(256) Aligned {
    int value;
};
struct Counted {
    ~Counted() { value = 0; } // a destructor: arrays of it carry a count, deleted sized
    long value = 1;
};

void *volatile sink;

} // namespace

void *operator new(std::size_t size)
{
    news++;
    return arena_take(size, 16);
}
void *operator new(std::size_t size, std::align_val_t alignment)
{
    aligned_news++;
    return arena_take(size, static_cast<std::size_t>(alignment));
}
void operator delete(void *p) noexcept
{
    if (p != nullptr && !in_arena(p))
        std::abort();
    deletes++;
}
void operator delete(void *p, std::align_val_t) noexcept
{
    if (p != nullptr && !in_arena(p))
        std::abort();
    aligned_deletes++;
}

int main()
{
    Small *small = new Small();
    EXPECT(in_arena(small));
    delete small; // sized delete
    int *numbers = new int[10];
    EXPECT(in_arena(numbers));
    delete[] numbers; // array delete
    Counted *counted = new Counted[5];
    EXPECT(in_arena(counted));
    delete[] counted; // sized array delete
    EXPECT(news == 3 && deletes == 3);

    Aligned *aligned = new Aligned();
    EXPECT(in_arena(aligned) && reinterpret_cast<std::uintptr_t>(aligned) % 256 == 0);
    delete aligned; // sized aligned delete
    Aligned *aligned_array = new Aligned[4];
    EXPECT(in_arena(aligned_array));
    delete[] aligned_array; // aligned array delete (sized or not)
    void *explicit_aligned = ::operator new[](100, std::align_val_t(64));
    ::operator delete[](explicit_aligned, 100, std::align_val_t(64));
    EXPECT(aligned_news == 3 && aligned_deletes == 3);

    // the nothrow forms are the runtime's: they call the replacements too
    sink = ::operator new(8, std::nothrow);
    ::operator delete(sink, std::nothrow);
    EXPECT(news == 4 && deletes == 4);

    // and malloc still works beside them
    void *block = std::malloc(1000);
    EXPECT(block != nullptr && !in_arena(block));
    std::free(block);

    return expect_summary("test_new_replaced");
}
