// C++ on top of the C heap: standard containers growing and being torn down, objects made
// in one thread and destroyed in another, over-aligned types through aligned operator new,
// make_shared, std::bad_alloc when operator new cannot be satisfied, and the new-handler;
// operator new and delete are vmalloc's own.
#include <cstdint>
#include <cstdlib>
#include <dlfcn.h>
#include <cstdio>
#include <cstring>
#include <deque>
#include <malloc.h>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "expect.h"

namespace {

bool is_aligned(const void *pointer, std::size_t alignment)
{
    return reinterpret_cast<std::uintptr_t>(pointer) % alignment == 0;
}

// Keeps the optimiser from deleting allocations whose results it can prove unused.
void *volatile allocation_sink;

void test_vector_growth()
{
    std::vector<std::uint64_t> numbers;
    for (std::uint64_t i = 0; i < 3000000; i++)
        numbers.push_back(i * 2654435761u);
    for (std::uint64_t i = 0; i < numbers.size(); i += 997)
        EXPECT(numbers[i] == i * 2654435761u);
    numbers.resize(10);
    numbers.shrink_to_fit();
    EXPECT(numbers.size() == 10 && numbers[9] == std::uint64_t(9) * 2654435761u);

    std::vector<std::vector<int>> nested(2000);
    for (std::size_t i = 0; i < nested.size(); i++)
        nested[i].assign(i % 300, static_cast<int>(i));
    for (std::size_t i = 0; i < nested.size(); i++)
        EXPECT(nested[i].size() == i % 300 && (nested[i].empty() || nested[i].back() == int(i)));
}

void test_strings()
{
    std::string text;
    for (int i = 0; i < 200000; i++)
        text += static_cast<char>('a' + i % 26);
    EXPECT(text.size() == 200000 && text[199999] == 'a' + 199999 % 26);
    std::vector<std::string> words;
    for (int i = 0; i < 50000; i++)
        words.push_back(std::to_string(i) + std::string(static_cast<std::size_t>(i % 100), 'x'));
    for (int i = 0; i < 50000; i += 101)
        EXPECT(words[i] == std::to_string(i) + std::string(static_cast<std::size_t>(i % 100), 'x'));
}

void test_maps()
{
    std::map<int, std::string> ordered;
    std::unordered_map<std::string, int> hashed;
    for (int i = 0; i < 100000; i++) {
        ordered[i * 7 % 100003] = std::to_string(i);
        hashed[std::to_string(i)] = i;
    }
    EXPECT(ordered.size() == 100000 && hashed.size() == 100000);
    for (int i = 0; i < 100000; i += 333) {
        EXPECT(ordered[i * 7 % 100003] == std::to_string(i));
        EXPECT(hashed[std::to_string(i)] == i);
    }
    for (int i = 0; i < 100000; i += 2)
        hashed.erase(std::to_string(i));
    EXPECT(hashed.size() == 50000);
    ordered.clear();
    hashed.clear();
    hashed.rehash(0);
}

// A payload with a checkable fingerprint, so an object freed or overwritten while still in
// use is noticed by the thread that destroys it.
struct Payload {
    explicit Payload(std::uint64_t seed) : seed(seed), bytes(seed % 5000 + 1)
    {
        for (std::size_t i = 0; i < bytes.size(); i++)
            bytes[i] = static_cast<unsigned char>(seed + i);
    }
    bool intact() const
    {
        for (std::size_t i = 0; i < bytes.size(); i++)
            if (bytes[i] != static_cast<unsigned char>(seed + i))
                return false;
        return bytes.size() == seed % 5000 + 1;
    }
    std::uint64_t seed;
    std::vector<unsigned char> bytes;
};

// Producers make payloads, consumers destroy them: every object (and its vector buffer)
// is freed by a thread other than the one that allocated it.
void test_cross_thread_ownership()
{
    constexpr int producer_count = 3, consumer_count = 3, per_producer = 40000;
    std::mutex lock;
    std::deque<std::unique_ptr<Payload>> queue;
    int produced_done = 0;
    int corrupt = 0;
    long consumed = 0;

    std::vector<std::thread> threads;
    for (int p = 0; p < producer_count; p++)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; i++) {
                auto payload = std::make_unique<Payload>(
                    static_cast<std::uint64_t>(p) * 1000003u + static_cast<std::uint64_t>(i));
                std::lock_guard<std::mutex> guard(lock);
                queue.push_back(std::move(payload));
            }
            std::lock_guard<std::mutex> guard(lock);
            produced_done++;
        });
    for (int c = 0; c < consumer_count; c++)
        threads.emplace_back([&] {
            for (;;) {
                std::unique_ptr<Payload> payload;
                {
                    std::lock_guard<std::mutex> guard(lock);
                    if (!queue.empty()) {
                        payload = std::move(queue.front());
                        queue.pop_front();
                    } else if (produced_done == producer_count) {
                        return;
                    }
                }
                if (!payload) {
                    std::this_thread::yield();
                    continue;
                }
                bool ok = payload->intact();
                payload.reset();
                std::lock_guard<std::mutex> guard(lock);
                consumed++;
                if (!ok)
                    corrupt++;
            }
        });
    for (auto &thread : threads)
        thread.join();
    EXPECT(corrupt == 0);
    EXPECT(consumed == long(producer_count) * per_producer);
}

struct alignas(64) CacheLine {
    unsigned char bytes[64];
};
struct alignas(256) Aligned256 {
    unsigned char bytes[300];
};
struct alignas(4096) PageAligned {
    unsigned char bytes[4096];
};

template <typename T> void check_aligned_new()
{
    constexpr std::size_t alignment = alignof(T);
    std::vector<std::unique_ptr<T>> singles;
    for (int i = 0; i < 200; i++) {
        singles.emplace_back(new T);
        EXPECT(is_aligned(singles.back().get(), alignment));
        std::memset(singles.back()->bytes, i, sizeof singles.back()->bytes);
    }
    for (std::size_t count : {1u, 3u, 17u, 100u, 1000u}) {
        std::unique_ptr<T[]> array(new T[count]);
        EXPECT(is_aligned(array.get(), alignment));
        for (std::size_t i = 0; i < count; i++) {
            EXPECT(is_aligned(&array[i], alignment));
            std::memset(array[i].bytes, 0x5A, sizeof array[i].bytes);
        }
    }
    // Containers of over-aligned types go through the aligned allocation functions too.
    std::vector<T> many(500);
    EXPECT(is_aligned(many.data(), alignment));
    auto shared = std::make_shared<T>();
    EXPECT(is_aligned(shared.get(), alignment));
}

void test_aligned_new()
{
    check_aligned_new<CacheLine>();
    check_aligned_new<Aligned256>();
    check_aligned_new<PageAligned>();
    // The explicit aligned operator new, including sizes that are not a multiple of it.
    for (std::size_t alignment = 16; alignment <= (std::size_t(1) << 20); alignment *= 4) {
        void *block = ::operator new(alignment * 3 + 5, std::align_val_t(alignment));
        EXPECT(is_aligned(block, alignment));
        std::memset(block, 1, alignment * 3 + 5);
        ::operator delete(block, std::align_val_t(alignment));
    }
}

// A request no heap can satisfy must throw std::bad_alloc rather than return null or crash.
void test_huge_new_throws()
{
    volatile std::size_t impossible = SIZE_MAX / 2 - 4096;
    bool threw = false;
    try {
        allocation_sink = ::operator new(impossible);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw);

    threw = false;
    try {
        allocation_sink = new char[impossible];
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw);

    threw = false;
    try {
        allocation_sink = ::operator new(impossible, std::align_val_t(4096));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw);

    // nothrow new reports the same failure as null.
    allocation_sink = ::operator new(impossible, std::nothrow);
    EXPECT(allocation_sink == nullptr);

    // And the heap works normally afterwards.
    std::vector<int> after(100000, 7);
    EXPECT(after[99999] == 7);
}

// operator new and delete are vmalloc's own, not libstdc++'s calling malloc and free.
bool defined_in_vmalloc(const void *function)
{
    Dl_info info;
    return dladdr(function, &info) != 0 && info.dli_fname != nullptr &&
           std::strstr(info.dli_fname, "libvmalloc") != nullptr;
}

void test_operator_new_is_vmalloc()
{
    void *(*plain_new)(std::size_t) = &::operator new;
    void *(*array_new)(std::size_t) = &::operator new[];
    void *(*aligned_new)(std::size_t, std::align_val_t) = &::operator new;
    void (*plain_delete)(void *) noexcept = &::operator delete;
    void (*sized_delete)(void *, std::size_t) noexcept = &::operator delete;
    void (*sized_aligned_delete)(void *, std::size_t, std::align_val_t) noexcept =
        &::operator delete[];
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(plain_new)));
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(array_new)));
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(aligned_new)));
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(plain_delete)));
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(sized_delete)));
    EXPECT(defined_in_vmalloc(reinterpret_cast<void *>(sized_aligned_delete)));
    // what new hands out, malloc_usable_size knows, and free may take back
    int *number = new int(42);
    EXPECT(malloc_usable_size(number) >= sizeof *number);
    delete number;
    char *text = new char[100];
    std::free(text);
}

// When new finds no memory it calls the new-handler until the handler gives up, and the
// handler's own exception reaches the caller through vmalloc's frames.
int handler_calls = 0;
void handler_that_gives_up_second_time()
{
    if (++handler_calls == 2)
        std::set_new_handler(nullptr);
}
struct HandlerError {
};
void handler_that_throws() { throw HandlerError(); }

void test_new_handler()
{
    volatile std::size_t impossible = SIZE_MAX / 2 - 4096;
    for (std::size_t alignment : {std::size_t(0), std::size_t(64)}) {
        handler_calls = 0;
        std::set_new_handler(handler_that_gives_up_second_time);
        bool threw = false;
        try {
            allocation_sink = alignment == 0 ? ::operator new(impossible)
                                             : ::operator new(impossible, std::align_val_t(alignment));
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        EXPECT(threw && handler_calls == 2);
        EXPECT(std::get_new_handler() == nullptr);
    }
    std::set_new_handler(handler_that_throws);
    bool threw = false;
    try {
        allocation_sink = new char[impossible];
    } catch (const HandlerError &) {
        threw = true;
    }
    EXPECT(threw);
    // nothrow new stays libstdc++'s: it calls vmalloc's new, and catches
    allocation_sink = ::operator new(impossible, std::nothrow);
    EXPECT(allocation_sink == nullptr);
    std::set_new_handler(nullptr);
}

void test_make_shared()
{
    std::vector<std::shared_ptr<std::string>> owners;
    for (int i = 0; i < 20000; i++)
        owners.push_back(std::make_shared<std::string>(static_cast<std::size_t>(i % 64 + 1), 'q'));
    std::vector<std::weak_ptr<std::string>> watchers(owners.begin(), owners.end());
    // The last owners go away in another thread than the one that made them.
    std::thread releaser([&owners] { owners.clear(); });
    releaser.join();
    for (auto &watcher : watchers)
        EXPECT(watcher.expired());
    auto big = std::make_shared<std::vector<double>>(1 << 20, 1.5);
    EXPECT(big->size() == (1u << 20) && (*big)[12345] == 1.5);
}

} // namespace

int main()
{
    test_vector_growth();
    test_strings();
    test_maps();
    test_cross_thread_ownership();
    test_aligned_new();
    test_huge_new_throws();
    test_operator_new_is_vmalloc();
    test_new_handler();
    test_make_shared();
    return expect_summary("test_cpp");
}
