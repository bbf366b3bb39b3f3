/*
 * The synthetic allocator workloads, one program:
 *
 *     workloads NAME THREADS SCALE      run one workload
 *     workloads list                    name and one-line description of each
 *     workloads gen-c SCALE             print the generated C file of the gcc workload
 *     workloads which-malloc            the file that defines the malloc in use
 *
 * SCALE 1 runs about 1-3 s on glibc with 2 threads. Every workload ends with the
 * line `checksum=<16 hex digits>`, computed from the data it wrote and read back,
 * never from addresses or timing, so it is the same under every correct allocator
 * for the same THREADS and SCALE. Blocks are filled when allocated and read back
 * when freed: an allocator that hands out overlapping blocks, loses a realloc'd
 * tail or returns non-zero calloc memory changes the checksum.
 *
 * Checksums of threads are added, never mixed in order, so the total does not
 * depend on which thread ran first or which thread freed a block.
 *
 * The program is linked normally; the allocator under test comes from LD_PRELOAD.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* A small fast generator (splitmix64): deterministic streams per thread. */
typedef struct {
    uint64_t state;
} rng_t;

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without division bias worth caring about here. */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static rng_t rng_seed(uint64_t a, uint64_t b)
{
    rng_t r = { a * 0x2545f4914f6cdd1dull + b * 0x9e3779b97f4a7c15ull + 1 };
    rng_next(&r);
    return r;
}

/* Order-dependent mixing, used inside one thread only. */
static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static void die(const char *what)
{
    fprintf(stderr, "workloads: %s failed: %s\n", what, strerror(errno));
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("malloc");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("realloc");
    return q;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n, m);
    if (!p)
        die("calloc");
    return p;
}

/* Fill a block so that its contents identify it: a byte pattern, the tag in
 * the first word and the tag's low byte at the end. */
static inline void fill(void *p, size_t size, uint64_t tag)
{
    memset(p, (int)(tag & 0xff), size);
    if (size >= 8)
        memcpy(p, &tag, 8);
    ((unsigned char *)p)[size - 1] = (unsigned char)(tag >> 8);
}

/* Read back what fill() wrote, cheaply: first word, a middle byte and the end. */
static inline uint64_t consume(const void *p, size_t size)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    if (size >= 8)
        memcpy(&v, b, 8);
    else
        v = b[0];
    return v ^ ((uint64_t)b[size / 2] << 48) ^ ((uint64_t)b[size - 1] << 56) ^ size;
}

/* Hash a whole buffer (for realloc'd data, where every byte matters). */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0x84222325cbf29ce4ull, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 32;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Small object sizes, skewed small like real programs: 8-512 bytes. */
static inline size_t small_size(rng_t *r)
{
    uint64_t x = rng_next(r);
    unsigned k = x & 15;
    x >>= 8;
    if (k < 9)
        return 8 + x % 57; /* 8-64 */
    if (k < 14)
        return 64 + x % 193; /* 64-256 */
    return 256 + x % 257; /* 256-512 */
}

/* Loops of the thrash workload at scale 1: about 2 s under glibc. */
enum { THRASH_LOOPS = 50 };

static long scaled(double base, double scale, long min)
{
    double v = base * scale;
    return v < (double)min ? min : (long)v;
}

/* Run fn(i) for i in [0, n) on n threads and add their checksums. */
typedef struct {
    int id;
    int nthreads;
    double scale;
    uint64_t sum;
    void *shared;
} task_t;

static uint64_t run_threads(int n, double scale, void *shared, void *(*fn)(void *))
{
    pthread_t tid[256];
    task_t task[256];
    uint64_t sum = 0;
    if (n > 256)
        n = 256;
    for (int i = 0; i < n; i++) {
        task[i] = (task_t){ i, n, scale, 0, shared };
        if (pthread_create(&tid[i], NULL, fn, &task[i]))
            die("pthread_create");
    }
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        sum += task[i].sum;
    }
    return sum;
}

/* --------------------------------------------------- 1. churn (one thread) */

/* An interpreter or parser: a large set of live small objects replaced at
 * random, temporaries made and dropped at once, LIFO bursts (a call stack of
 * temporaries) and strings grown by a few bytes. */
static uint64_t w_churn(int threads, double scale)
{
    (void)threads;
    enum { SLOTS = 1 << 14 };
    void **slot = xcalloc(SLOTS, sizeof *slot);
    uint32_t *len = xcalloc(SLOTS, sizeof *len);
    rng_t r = rng_seed(1, 0);
    uint64_t h = 0;
    long ops = scaled(14e6, scale, 1000);

    for (long i = 0; i < ops; i++) {
        uint64_t x = rng_next(&r);
        unsigned op = x & 15;
        size_t j = (x >> 8) & (SLOTS - 1);
        if (op < 10) { /* replace a live object */
            if (slot[j]) {
                h = mix(h, consume(slot[j], len[j]));
                free(slot[j]);
            }
            len[j] = (uint32_t)small_size(&r);
            slot[j] = xmalloc(len[j]);
            fill(slot[j], len[j], i);
        } else if (op < 13) { /* a temporary */
            size_t n = small_size(&r);
            void *p = xmalloc(n);
            fill(p, n, i);
            h = mix(h, consume(p, n));
            free(p);
        } else if (op < 15) { /* a burst of temporaries freed in reverse */
            void *tmp[8];
            size_t tl[8];
            int k = 1 + (int)((x >> 24) & 7);
            for (int t = 0; t < k; t++) {
                tl[t] = small_size(&r);
                tmp[t] = xmalloc(tl[t]);
                fill(tmp[t], tl[t], i + t);
            }
            while (k-- > 0) {
                h = mix(h, consume(tmp[k], tl[k]));
                free(tmp[k]);
            }
        } else if (slot[j] && len[j] < 480) { /* a string grows */
            size_t old = len[j], n = old + 1 + ((x >> 24) & 31);
            slot[j] = xrealloc(slot[j], n);
            memset((char *)slot[j] + old, (int)(i & 0xff), n - old);
            len[j] = (uint32_t)n;
        }
    }
    for (size_t j = 0; j < SLOTS; j++)
        if (slot[j]) {
            h = mix(h, hash_bytes(slot[j], len[j]));
            free(slot[j]);
        }
    free(slot);
    free(len);
    return h;
}

/* ------------------------------------------ 2. long-lived plus short-lived */

typedef struct tnode {
    struct tnode *left, *right;
    char *payload;
    uint32_t len;
    uint32_t key;
} tnode_t;

static tnode_t *tree_build(int depth, rng_t *r, uint32_t *key)
{
    if (depth == 0)
        return NULL;
    tnode_t *n = xmalloc(sizeof *n);
    n->key = (*key)++;
    n->len = 16 + (uint32_t)rng_below(r, 113);
    n->payload = xmalloc(n->len);
    fill(n->payload, n->len, n->key);
    n->left = tree_build(depth - 1, r, key);
    n->right = tree_build(depth - 1, r, key);
    return n;
}

static uint64_t tree_sum(const tnode_t *n)
{
    uint64_t s = 0;
    for (; n; n = n->right)
        s += tree_sum(n->left) + consume(n->payload, n->len) * (n->key | 1);
    return s;
}

static void tree_free(tnode_t *n)
{
    while (n) {
        tnode_t *right = n->right;
        tree_free(n->left);
        free(n->payload);
        free(n);
        n = right;
    }
}

typedef struct lnode {
    struct lnode *next;
    uint32_t len;
    char text[];
} lnode_t;

typedef struct entry {
    struct entry *next;
    uint64_t key;
    size_t len;
    char *value;
} entry_t;

static void *t_mix(void *arg)
{
    task_t *t = arg;
    rng_t r = rng_seed(2, (uint64_t)t->id);
    uint32_t key = 0;
    uint64_t h = 0;
    enum { BUCKETS = 1 << 15 };

    /* Long-lived: a tree that lives the whole run and a table that churns slowly. */
    tnode_t *keep = tree_build(16, &r, &key);
    entry_t **table = xcalloc(BUCKETS, sizeof *table);
    for (uint64_t i = 0; i < BUCKETS * 2; i++) {
        entry_t *e = xmalloc(sizeof *e);
        e->key = i;
        e->len = 8 + rng_below(&r, 200);
        e->value = xmalloc(e->len);
        fill(e->value, e->len, i);
        e->next = table[i & (BUCKETS - 1)];
        table[i & (BUCKETS - 1)] = e;
    }

    long rounds = scaled(400, t->scale, 2);
    uint64_t next_key = BUCKETS * 2;
    for (long round = 0; round < rounds; round++) {
        /* Short-lived tree: build, walk, tear down. */
        tnode_t *tmp = tree_build(11 + (int)(round % 4), &r, &key);
        h += tree_sum(tmp);
        tree_free(tmp);

        /* Short-lived list: build, drop every other node, extend, tear down. */
        lnode_t *head = NULL;
        for (int i = 0; i < 12000; i++) {
            uint32_t n = 8 + (uint32_t)rng_below(&r, 90);
            lnode_t *l = xmalloc(sizeof *l + n);
            l->len = n;
            fill(l->text, n, (uint64_t)round * 100000 + i);
            l->next = head;
            head = l;
        }
        for (lnode_t *l = head; l && l->next; l = l->next) {
            lnode_t *dead = l->next;
            l->next = dead->next;
            h += consume(dead->text, dead->len);
            free(dead);
        }
        while (head) {
            lnode_t *l = head;
            head = l->next;
            h += consume(l->text, l->len) * 3;
            free(l);
        }

        /* The long-lived table churns: 1% of its entries are replaced. */
        for (int i = 0; i < BUCKETS * 2 / 100; i++) {
            entry_t **b = &table[rng_below(&r, BUCKETS)];
            if (*b) {
                entry_t *e = *b;
                *b = e->next;
                h += consume(e->value, e->len) ^ e->key;
                free(e->value);
                free(e);
            }
            entry_t *e = xmalloc(sizeof *e);
            e->key = next_key++;
            e->len = 8 + rng_below(&r, 200);
            e->value = xmalloc(e->len);
            fill(e->value, e->len, e->key);
            e->next = table[e->key & (BUCKETS - 1)];
            table[e->key & (BUCKETS - 1)] = e;
        }
    }

    h += tree_sum(keep) * 7;
    tree_free(keep);
    for (size_t i = 0; i < BUCKETS; i++)
        while (table[i]) {
            entry_t *e = table[i];
            table[i] = e->next;
            h += consume(e->value, e->len) ^ e->key;
            free(e->value);
            free(e);
        }
    free(table);
    t->sum = h;
    return NULL;
}

static uint64_t w_mix(int threads, double scale)
{
    return run_threads(threads, scale, NULL, t_mix);
}

/* ------------------------------------------------------------ 3. server */

/* A batch of blocks retired by one worker and freed by the next. */
typedef struct batch {
    struct batch *next;
    int count;
    void *block[128];
    uint32_t len[128];
} batch_t;

typedef struct {
    pthread_mutex_t lock;
    batch_t *head;
    char pad[64];
} inbox_t;

typedef struct {
    inbox_t *inbox;
    _Atomic int finished; /* workers past their last request */
} server_t;

static uint64_t drain(inbox_t *in)
{
    pthread_mutex_lock(&in->lock);
    batch_t *b = in->head;
    in->head = NULL;
    pthread_mutex_unlock(&in->lock);
    uint64_t h = 0;
    while (b) {
        batch_t *next = b->next;
        for (int i = 0; i < b->count; i++) {
            h += consume(b->block[i], b->len[i]);
            free(b->block[i]);
        }
        free(b);
        b = next;
    }
    return h;
}

static void post(inbox_t *in, batch_t *b)
{
    pthread_mutex_lock(&in->lock);
    b->next = in->head;
    in->head = b;
    pthread_mutex_unlock(&in->lock);
}

/* Server object sizes: mostly small, some pages, a few tens of KiB. */
static size_t server_size(rng_t *r)
{
    uint64_t x = rng_next(r), k = x % 100;
    x >>= 8;
    if (k < 70)
        return 16 + x % 241;
    if (k < 95)
        return 256 + x % 3841;
    return 4096 + x % 28673;
}

static void *t_server(void *arg)
{
    task_t *t = arg;
    server_t *s = t->shared;
    inbox_t *mine = &s->inbox[t->id], *next = &s->inbox[(t->id + 1) % t->nthreads];
    rng_t r = rng_seed(3, (uint64_t)t->id);
    enum { WS = 20000 };
    void **ws = xmalloc(WS * sizeof *ws);
    uint32_t *wl = xmalloc(WS * sizeof *wl);
    uint64_t h = 0, tag = (uint64_t)t->id << 40;

    for (int i = 0; i < WS; i++) {
        wl[i] = (uint32_t)server_size(&r);
        ws[i] = xmalloc(wl[i]);
        fill(ws[i], wl[i], tag++);
    }
    batch_t *out = xmalloc(sizeof *out);
    out->count = 0;
    long requests = scaled(400000, t->scale, 100);
    for (long q = 0; q < requests; q++) {
        /* The response: a buffer built and sent within the request. */
        size_t n = 256 + rng_below(&r, 8192);
        char *resp = xmalloc(n);
        fill(resp, n, tag);
        h += consume(resp, n);
        free(resp);
        /* The working set changes: old entries retire to the next worker. */
        int k = 1 + (int)rng_below(&r, 4);
        while (k--) {
            size_t i = rng_below(&r, WS);
            out->block[out->count] = ws[i];
            out->len[out->count] = wl[i];
            if (++out->count == 128) {
                post(next, out);
                out = xmalloc(sizeof *out);
                out->count = 0;
            }
            wl[i] = (uint32_t)server_size(&r);
            ws[i] = xmalloc(wl[i]);
            fill(ws[i], wl[i], tag++);
        }
        if ((q & 15) == 0)
            h += drain(mine);
    }
    /* Keep freeing what the others retire until every worker is done, then
     * take the last batches. */
    post(next, out);
    atomic_fetch_add(&s->finished, 1);
    while (atomic_load(&s->finished) < t->nthreads) {
        uint64_t got = drain(mine);
        if (!got)
            sched_yield();
        h += got;
    }
    h += drain(mine);
    for (int i = 0; i < WS; i++) {
        h += consume(ws[i], wl[i]);
        free(ws[i]);
    }
    free(ws);
    free(wl);
    t->sum = h;
    return NULL;
}

static uint64_t w_server(int threads, double scale)
{
    server_t s;
    s.inbox = xcalloc((size_t)threads, sizeof *s.inbox);
    for (int i = 0; i < threads; i++)
        pthread_mutex_init(&s.inbox[i].lock, NULL);
    atomic_init(&s.finished, 0);
    uint64_t h = run_threads(threads, scale, &s, t_server);
    free(s.inbox);
    return h;
}

/* -------------------------------------------------- 4. producer/consumer */

/* A single-producer single-consumer ring of block pointers. */
enum { RING = 1024 };
typedef struct {
    _Alignas(64) _Atomic size_t head; /* written by the consumer */
    _Alignas(64) _Atomic size_t tail; /* written by the producer */
    _Alignas(64) void *slot[RING];
} ring_t;

static int ring_push(ring_t *q, void *p)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&q->head, memory_order_acquire) == RING)
        return 0;
    q->slot[t % RING] = p;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 1;
}

static void *ring_pop(ring_t *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL;
    void *p = q->slot[h % RING];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return p;
}

/* Blocks carry their length in bytes 8-11, so the consumer can read them back. */
static long pc_consume(ring_t *in, uint64_t *h, long max)
{
    long n = 0;
    void *p;
    while (n < max && (p = ring_pop(in))) {
        uint32_t len;
        memcpy(&len, (char *)p + 8, 4);
        *h += consume(p, len);
        free(p);
        n++;
    }
    return n;
}

static void *t_prodcons(void *arg)
{
    task_t *t = arg;
    ring_t *rings = t->shared;
    ring_t *out = &rings[t->id], *in = &rings[(t->id + t->nthreads - 1) % t->nthreads];
    rng_t r = rng_seed(4, (uint64_t)t->id);
    long total = scaled(4e6 / t->nthreads, t->scale, 100), made = 0, eaten = 0;
    uint64_t h = 0;

    while (made < total || eaten < total) {
        if (made < total) {
            uint32_t len = (uint32_t)(16 + small_size(&r) * 2);
            char *p = xmalloc(len);
            fill(p, len, ((uint64_t)t->id << 40) + (uint64_t)made);
            memcpy(p + 8, &len, 4);
            while (!ring_push(out, p)) {
                long got = pc_consume(in, &h, RING);
                eaten += got;
                if (!got)
                    sched_yield();
            }
            made++;
            if ((made & 31) == 0)
                eaten += pc_consume(in, &h, 64);
        } else {
            long got = pc_consume(in, &h, RING);
            eaten += got;
            if (!got)
                sched_yield();
        }
    }
    t->sum = h;
    return NULL;
}

/* Runs `body` on at least two threads, each with a ring to its neighbour. */
static uint64_t run_ring_threads(int threads, double scale, void *(*body)(void *))
{
    if (threads < 2)
        threads = 2;
    ring_t *rings = aligned_alloc(64, sizeof(ring_t) * (size_t)threads);
    if (!rings)
        die("aligned_alloc");
    memset(rings, 0, sizeof(ring_t) * (size_t)threads);
    uint64_t h = run_threads(threads, scale, rings, body);
    free(rings);
    return h;
}

static uint64_t w_prodcons(int threads, double scale)
{
    return run_ring_threads(threads, scale, t_prodcons);
}

/* ----------------------------------------------------- 5. false sharing */

/* Each thread makes small objects and hands each to the next thread, which
 * writes it hard and frees it; in between, each thread writes a short-lived
 * object of its own hard. When two threads write one cache line, every write
 * moves the line between cores, and the allocator decides whether they do:
 * actively, by serving two threads from one line, or passively, by giving a
 * thread a block that the other thread freed while that block's neighbours
 * are still written by their owner. An allocator that keeps each thread's
 * small blocks on lines of its own runs this at the speed of its writes. */
enum { WRITES = 500 };

/* A block for the cache workload: 9-32 bytes, its length in byte 8. */
static unsigned char *cache_block(rng_t *r, uint64_t tag)
{
    size_t n = 9 + rng_below(r, 24);
    unsigned char *p = xmalloc(n);
    fill(p, n, tag);
    p[8] = (unsigned char)n;
    return p;
}

/* Write the first 8 bytes of a block hard, read it back and free it. */
static uint64_t write_hard(unsigned char *p, int salt)
{
    volatile unsigned char *v = p;
    for (int k = 0; k < WRITES; k++)
        v[k & 7] += (unsigned char)(k + salt);
    uint64_t h = consume(p, p[8]);
    free(p);
    return h;
}

/* Take one block from the previous thread, if there is one, and use it. */
static int cache_take(ring_t *in, uint64_t *h)
{
    unsigned char *p = ring_pop(in);
    if (!p)
        return 0;
    *h += write_hard(p, 3);
    return 1;
}

static void *t_cache(void *arg)
{
    task_t *t = arg;
    ring_t *rings = t->shared;
    ring_t *out = &rings[t->id], *in = &rings[(t->id + t->nthreads - 1) % t->nthreads];
    rng_t r = rng_seed(5, (uint64_t)t->id);
    long rounds = scaled(1.2e6, t->scale, 10), made = 0, taken = 0;
    uint64_t h = 0, tag = (uint64_t)t->id << 40;

    while (made < rounds || taken < rounds) {
        if (made < rounds) {
            unsigned char *p = cache_block(&r, tag + (uint64_t)made);
            while (!ring_push(out, p)) {
                int got = cache_take(in, &h);
                taken += got;
                if (!got)
                    sched_yield();
            }
            made++;
            h += write_hard(cache_block(&r, ~tag - (uint64_t)made), 1);
        }
        int got = cache_take(in, &h);
        taken += got;
        if (!got && made == rounds)
            sched_yield();
    }
    t->sum = h;
    return NULL;
}

static uint64_t w_cache(int threads, double scale)
{
    return run_ring_threads(threads, scale, t_cache);
}

/* -------------------------------------------------------- 6. realloc growth */

/* Strings appended a few bytes at a time with an exact realloc per append, and
 * vectors grown by half their capacity, from bytes to MiB; several grow at
 * once so they cannot all stay at the top of the heap. */
typedef struct {
    char *data;
    size_t len, cap, target;
    int vector;
} growing_t;

static void grow_start(growing_t *g, rng_t *r)
{
    /* Target size log-uniform between 64 B and 4 MiB. */
    double e = 6 + (double)rng_below(r, 1 << 20) / (1 << 20) * 16;
    g->target = (size_t)(1ull << (int)e) + rng_below(r, 1ull << (int)e);
    g->vector = rng_below(r, 2);
    g->data = NULL;
    g->len = g->cap = 0;
}

static void *t_realloc(void *arg)
{
    task_t *t = arg;
    rng_t r = rng_seed(6, (uint64_t)t->id);
    enum { LIVE = 24 };
    growing_t g[LIVE];
    uint64_t h = 0;
    unsigned char chunk[256];
    long appends = scaled(2.5e6, t->scale, 1000);

    for (int i = 0; i < LIVE; i++)
        grow_start(&g[i], &r);
    for (long a = 0; a < appends; a++) {
        growing_t *s = &g[rng_below(&r, LIVE)];
        size_t n = 1 + (size_t)rng_below(&r, s->len < 4096 ? 16 : 256);
        memset(chunk, (int)(a & 0xff), n);
        chunk[0] = (unsigned char)(a >> 8);
        if (s->len + n > s->cap) {
            s->cap = s->vector ? (s->len + n) + (s->len + n) / 2 + 8 : s->len + n;
            s->data = xrealloc(s->data, s->cap);
        }
        memcpy(s->data + s->len, chunk, n);
        s->len += n;
        if (s->len >= s->target) {
            h += hash_bytes(s->data, s->len);
            free(s->data);
            grow_start(s, &r);
        }
    }
    for (int i = 0; i < LIVE; i++) {
        h += hash_bytes(g[i].data, g[i].len);
        free(g[i].data);
    }
    t->sum = h;
    return NULL;
}

static uint64_t w_realloc(int threads, double scale)
{
    return run_threads(threads, scale, NULL, t_realloc);
}

/* ------------------------------------------------------------- 7. large */

/* Blocks of 64 KiB to 64 MiB, log-uniform, touched one byte per 64 KiB, freed
 * out of order; a quarter come from calloc, whose untouched bytes must read 0. */
typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} big_t;

enum { STRIDE = 64 << 10 };

static void *t_large(void *arg)
{
    task_t *t = arg;
    rng_t r = rng_seed(7, (uint64_t)t->id);
    enum { LIVE = 12 };
    big_t b[LIVE] = { { 0 } };
    uint64_t h = 0;
    long ops = scaled(2500, t->scale, 20);

    for (long op = 0; op < ops + LIVE; op++) {
        big_t *s = &b[op < ops ? rng_below(&r, LIVE) : (uint64_t)(op - ops)];
        if (s->p) {
            for (size_t off = 0; off < s->size; off += STRIDE)
                h += (uint64_t)s->p[off] * (off / STRIDE + 1);
            h += s->p[s->size - 1];
            free(s->p);
            s->p = NULL;
        }
        if (op >= ops)
            continue;
        double e = 16 + (double)rng_below(&r, 1 << 20) / (1 << 20) * 10;
        s->size = (size_t)(1ull << (int)e) + rng_below(&r, 1ull << (int)e);
        s->tag = (uint64_t)op;
        if (rng_below(&r, 4) == 0) {
            s->p = xcalloc(1, s->size);
            /* Read the zeroes between the bytes we write. */
            for (size_t off = STRIDE / 2; off < s->size; off += STRIDE * 4)
                h += s->p[off] + 1;
        } else {
            s->p = xmalloc(s->size);
        }
        for (size_t off = 0; off < s->size; off += STRIDE)
            s->p[off] = (unsigned char)(s->tag + off / STRIDE);
        s->p[s->size - 1] = (unsigned char)(s->tag * 7);
    }
    t->sum = h;
    return NULL;
}

static uint64_t w_large(int threads, double scale)
{
    return run_threads(threads, scale, NULL, t_large);
}

/* ----------------------------------------------------------- 8. aligned */

static void *t_aligned(void *arg)
{
    task_t *t = arg;
    rng_t r = rng_seed(8, (uint64_t)t->id);
    enum { LIVE = 4096 };
    void **slot = xcalloc(LIVE, sizeof *slot);
    uint32_t *len = xcalloc(LIVE, sizeof *len);
    uint64_t h = 0, misaligned = 0;
    long ops = scaled(4e6, t->scale, 1000);

    for (long op = 0; op < ops; op++) {
        size_t j = rng_below(&r, LIVE);
        if (slot[j]) {
            h += consume(slot[j], len[j]);
            free(slot[j]);
        }
        uint64_t x = rng_next(&r);
        size_t align = (size_t)16 << (x % 9); /* 16 B - 4 KiB */
        size_t n = 8 + (x >> 8) % (x & 0x800 ? 4096 : 256);
        void *p;
        switch ((x >> 4) % 8) {
        case 0: /* ordinary allocations mixed in, alignment not checked */
            align = 1;
            p = xmalloc(n);
            break;
        case 1: case 2: case 3: /* C11: size a multiple of the alignment */
            n = (n + align - 1) & ~(align - 1);
            p = aligned_alloc(align, n);
            if (!p)
                die("aligned_alloc");
            break;
        default:
            if (posix_memalign(&p, align, n))
                die("posix_memalign");
            break;
        }
        if ((uintptr_t)p & (align - 1))
            misaligned++;
        fill(p, n, (uint64_t)op);
        slot[j] = p;
        len[j] = (uint32_t)n;
    }
    for (size_t j = 0; j < LIVE; j++)
        if (slot[j]) {
            h += consume(slot[j], len[j]);
            free(slot[j]);
        }
    free(slot);
    free(len);
    if (misaligned)
        fprintf(stderr, "aligned: %llu misaligned blocks\n", (unsigned long long)misaligned);
    t->sum = h + misaligned * 0x5bd1e995ull;
    return NULL;
}

static uint64_t w_aligned(int threads, double scale)
{
    return run_threads(threads, scale, NULL, t_aligned);
}

/* ------------------------------------------------------ 9. thread churn */

/* Short-lived threads allocate, free most of it, hand the rest to the main
 * thread and exit; the main thread frees those blocks after their owner died. */
enum { CHURN_KEEP = 48, CHURN_MADE = 300 };

typedef struct {
    uint64_t seed;
    uint64_t sum;
    void *keep[CHURN_KEEP];
    uint32_t len[CHURN_KEEP];
} churner_t;

static void *t_short(void *arg)
{
    churner_t *c = arg;
    rng_t r = rng_seed(9, c->seed);
    void *p[CHURN_MADE];
    uint32_t n[CHURN_MADE];
    uint64_t h = 0;
    for (int i = 0; i < CHURN_MADE; i++) {
        n[i] = (uint32_t)(16 + rng_below(&r, i & 1 ? 2048 : 128));
        p[i] = xmalloc(n[i]);
        fill(p[i], n[i], c->seed * 1000 + (uint64_t)i);
    }
    /* Free all but the first CHURN_KEEP in a shuffled order. */
    for (int i = CHURN_MADE - 1; i > CHURN_KEEP; i--) {
        int j = CHURN_KEEP + (int)rng_below(&r, (uint64_t)(i - CHURN_KEEP + 1));
        void *tp = p[i];
        uint32_t tn = n[i];
        p[i] = p[j], n[i] = n[j];
        p[j] = tp, n[j] = tn;
    }
    for (int i = CHURN_KEEP; i < CHURN_MADE; i++) {
        h += consume(p[i], n[i]);
        free(p[i]);
    }
    for (int i = 0; i < CHURN_KEEP; i++) {
        c->keep[i] = p[i];
        c->len[i] = n[i];
    }
    c->sum = h;
    return NULL;
}

static uint64_t w_threads(int threads, double scale)
{
    long rounds = scaled(13000, scale, 5);
    churner_t *c = xcalloc((size_t)threads, sizeof *c);
    pthread_t *tid = xcalloc((size_t)threads, sizeof *tid);
    uint64_t h = 0;
    for (long round = 0; round < rounds; round++) {
        for (int i = 0; i < threads; i++) {
            c[i].seed = (uint64_t)round * 256 + (uint64_t)i;
            if (pthread_create(&tid[i], NULL, t_short, &c[i]))
                die("pthread_create");
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            h += c[i].sum;
            for (int k = 0; k < CHURN_KEEP; k++) {
                h += consume(c[i].keep[k], c[i].len[k]);
                free(c[i].keep[k]);
            }
        }
    }
    free(c);
    free(tid);
    return h;
}

/* A thread pool that does not keep its threads, as Python's concurrent.futures
 * or a build tool's job runner: each batch starts POOL_WORKERS workers per
 * thread, more than there are cores, and each worker runs a few tasks and
 * exits. A task is interpreter work: a table of small keyed records in an
 * array grown by an eighth at a time with realloc (as CPython grows its lists),
 * short-lived temporaries, and the table rendered into pieces joined into one
 * large string. What an allocator does with an exited worker's memory, reuse
 * it for the next batch or fault in more, shows in time and peak RSS. */
enum { POOL_WORKERS = 4, POOL_TASKS = 3, POOL_ITEMS = 3000 };

typedef struct {
    uint64_t seed;
    uint64_t sum;
} pool_worker_t;

typedef struct {
    char *key;
    char *value;
    uint32_t key_len, value_len;
} record_t;

/* Append a pointer to an array grown by an eighth and a few, as CPython does. */
static void push_ptr(void ***array, size_t *len, size_t *cap, void *p)
{
    if (*len == *cap) {
        *cap += (*cap >> 3) + (*cap < 9 ? 3 : 6);
        *array = xrealloc(*array, *cap * sizeof **array);
    }
    (*array)[(*len)++] = p;
}

static uint64_t pool_task(rng_t *r, uint64_t tag)
{
    void **table = NULL, **parts = NULL;
    size_t rows = 0, row_cap = 0, nparts = 0, part_cap = 0, total = 0;
    uint64_t h = 0;
    for (int i = 0; i < POOL_ITEMS; i++) {
        record_t *rec = xmalloc(sizeof *rec);
        rec->key_len = (uint32_t)(8 + rng_below(r, 40));
        rec->value_len = (uint32_t)small_size(r);
        rec->key = xmalloc(rec->key_len);
        rec->value = xmalloc(rec->value_len);
        fill(rec->key, rec->key_len, tag + (uint64_t)i);
        fill(rec->value, rec->value_len, tag ^ (uint64_t)i);
        char *scratch = xmalloc(rec->key_len + 16); /* a formatted key, dropped */
        memcpy(scratch, rec->key, rec->key_len);
        h += consume(scratch, rec->key_len);
        free(scratch);
        push_ptr(&table, &rows, &row_cap, rec);
    }
    for (size_t i = 0; i < rows; i++) {
        const record_t *rec = table[i];
        size_t n = rec->key_len + rec->value_len + 4;
        char *part = xmalloc(n);
        memcpy(part, rec->key, rec->key_len);
        memcpy(part + rec->key_len, ": ", 2);
        memcpy(part + rec->key_len + 2, rec->value, rec->value_len);
        memcpy(part + n - 2, ", ", 2);
        total += n;
        push_ptr(&parts, &nparts, &part_cap, part);
    }
    char *joined = xmalloc(total);
    size_t at = 0;
    for (size_t i = 0; i < nparts; i++) {
        const record_t *rec = table[i];
        size_t n = rec->key_len + rec->value_len + 4;
        memcpy(joined + at, parts[i], n);
        at += n;
        free(parts[i]);
    }
    h ^= hash_bytes(joined, total);
    free(joined);
    free(parts);
    for (size_t i = 0; i < rows; i++) {
        record_t *rec = table[i];
        free(rec->key);
        free(rec->value);
        free(rec);
    }
    free(table);
    return h;
}

static void *t_pool_worker(void *arg)
{
    pool_worker_t *w = arg;
    rng_t r = rng_seed(13, w->seed);
    for (int t = 0; t < POOL_TASKS; t++)
        w->sum += pool_task(&r, w->seed * 64 + (uint64_t)t);
    return NULL;
}

static uint64_t w_pool(int threads, double scale)
{
    long batches = scaled(60, scale, 2);
    int workers = threads * POOL_WORKERS;
    pool_worker_t *w = xcalloc((size_t)workers, sizeof *w);
    pthread_t *tid = xcalloc((size_t)workers, sizeof *tid);
    uint64_t h = 0;
    for (long batch = 0; batch < batches; batch++) {
        for (int i = 0; i < workers; i++) {
            w[i] = (pool_worker_t){ (uint64_t)batch * 1024 + (uint64_t)i, 0 };
            if (pthread_create(&tid[i], NULL, t_pool_worker, &w[i]))
                die("pthread_create");
        }
        for (int i = 0; i < workers; i++) {
            pthread_join(tid[i], NULL);
            h += w[i].sum;
        }
    }
    free(w);
    free(tid);
    return h;
}

/* ---------------------------------------------- 10. memory efficiency */

/* A small /proc file read with read(2) into the caller's buffer: stdio would
 * allocate, and these are read between phases whose memory is being measured. */
static void read_proc(const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t k;
    int fd = open(path, O_RDONLY);
    while (fd >= 0 && n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    if (fd >= 0)
        close(fd);
    buf[n] = 0;
}

/* Resident memory in KiB, from /proc/self/statm; -1 when unreadable. */
static long rss_kib(void)
{
    char buf[256];
    long pages, resident;
    read_proc("/proc/self/statm", buf, sizeof buf);
    if (sscanf(buf, "%ld %ld", &pages, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* LazyFree in KiB, from /proc/self/smaps_rollup: pages given back with
 * MADV_FREE that the kernel has not yet taken. They still count in RSS, and
 * go only when memory runs short; -1 when the kernel does not say. */
static long lazyfree_kib(void)
{
    char buf[4096];
    read_proc("/proc/self/smaps_rollup", buf, sizeof buf);
    const char *p = strstr(buf, "\nLazyFree:");
    return p ? atol(p + 10) : -1;
}

/* A fragmenting pattern: fill memory with small objects, free all but a
 * scattered few, then reuse the space for objects of other sizes. An allocator
 * that cannot reuse freed space across size classes, or never returns it,
 * shows a higher peak and final RSS. The final RSS is printed, the peak is the
 * runner's ru_maxrss. */
static uint64_t w_fragment(int threads, double scale)
{
    (void)threads;
    rng_t r = rng_seed(10, 0);
    long n = scaled(1.2e6, scale, 1000), kept = 0;
    void **obj = xmalloc((size_t)n * sizeof *obj);
    uint32_t *len = xmalloc((size_t)n * sizeof *len);
    long *order = xmalloc((size_t)n * sizeof *order);
    void **keep = xmalloc((size_t)(n / 32 + 1) * sizeof *keep);
    uint32_t *keep_len = xmalloc((size_t)(n / 32 + 1) * sizeof *keep_len);
    uint64_t h = 0, live = 0;

    for (int cycle = 0; cycle < 3; cycle++) {
        /* Fill: small objects, a little larger each cycle. */
        for (long i = 0; i < n; i++) {
            len[i] = (uint32_t)(16 + rng_below(&r, 81) + 16 * (uint64_t)cycle);
            obj[i] = xmalloc(len[i]);
            fill(obj[i], len[i], (uint64_t)i);
        }
        /* The previous cycle's survivors die only now, amid the new fill. */
        for (long i = 0; i < kept; i++) {
            h = mix(h, consume(keep[i], keep_len[i]));
            free(keep[i]);
        }
        /* Free all but one in 32, in random order. */
        long m = 0;
        kept = 0;
        for (long i = 0; i < n; i++)
            if (i % 32 != 7) {
                order[m++] = i;
            } else {
                keep[kept] = obj[i];
                keep_len[kept++] = len[i];
            }
        for (long i = m - 1; i > 0; i--) {
            long j = (long)rng_below(&r, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (long i = 0; i < m; i++) {
            long k = order[i];
            h = mix(h, consume(obj[k], len[k]));
            free(obj[k]);
        }
        /* Reuse the space for larger objects, a third of the freed bytes. */
        long big = n / 12;
        void **tmp = xmalloc((size_t)big * sizeof *tmp);
        uint32_t *tl = xmalloc((size_t)big * sizeof *tl);
        for (long i = 0; i < big; i++) {
            tl[i] = (uint32_t)(128 + rng_below(&r, 897));
            tmp[i] = xmalloc(tl[i]);
            fill(tmp[i], tl[i], (uint64_t)i * 3);
        }
        for (long i = 0; i < big; i++) {
            h = mix(h, consume(tmp[i], tl[i]));
            free(tmp[i]);
        }
        free(tmp);
        free(tl);
    }
    free(obj);
    free(len);
    free(order);
    /* Give time-based purging a chance and a few calls to act on; the runner
     * takes the pause off the wall time. */
    struct timespec nap = { 0, 100 * 1000 * 1000 }, t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("idle_s=%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    for (int i = 0; i < 1000; i++)
        free(xmalloc(64 + (size_t)i));
    for (long i = 0; i < kept; i++)
        live += keep_len[i];
    printf("final_rss_kb=%ld\nlive_kb=%llu\n", rss_kib(), (unsigned long long)(live / 1024));
    for (long i = 0; i < kept; i++) {
        h = mix(h, consume(keep[i], keep_len[i]));
        free(keep[i]);
    }
    free(keep);
    free(keep_len);
    return h;
}

/* -------------------------------------------------------- 11. thrash */

/* The same 64 blocks of 1 MiB allocated, written in full and freed, over and
 * over. An allocator that hands blocks of this size back to the kernel at free
 * pays 256 page faults per block on every loop; the runner counts them. */
static uint64_t w_thrash(int threads, double scale)
{
    (void)threads;
    enum { BLOCKS = 64, SIZE = 1 << 20 };
    long loops = scaled(THRASH_LOOPS, scale, 2);
    void *b[BLOCKS];
    uint64_t h = 0;
    for (long loop = 0; loop < loops; loop++) {
        for (int i = 0; i < BLOCKS; i++) {
            b[i] = xmalloc(SIZE);
            fill(b[i], SIZE, (uint64_t)(loop * BLOCKS + i));
        }
        for (int i = 0; i < BLOCKS; i++) {
            h = mix(h, consume(b[i], SIZE));
            free(b[i]);
        }
    }
    printf("loops=%ld\n", loops);
    return h;
}

/* ------------------------------------------------ 12. memory going back */

/*
 * The memory workloads report, at the end of each phase, a line the runner
 * reads:
 *
 *     phase NAME rss_kb=N lazy_kb=N live_kb=N ms=X
 *
 * with RSS from /proc/self/statm, LazyFree from /proc/self/smaps_rollup, the
 * bytes the program holds, and how long the phase's one call took (trim).
 * Their checksum covers the blocks' contents, as in the other workloads.
 */

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void phase(const char *name, uint64_t live, double ms)
{
    long rss = rss_kib(), lazy = lazyfree_kib();
    printf("phase %s rss_kb=%ld lazy_kb=%ld live_kb=%llu ms=%.3f\n", name, rss, lazy,
           (unsigned long long)(live >> 10), ms);
}

/* The file name of the library that defines a symbol for this process, or "". */
static const char *defined_by(const char *symbol)
{
    Dl_info info;
    void *p = dlsym(RTLD_DEFAULT, symbol);
    if (!p || !dladdr(p, &info) || !info.dli_fname)
        return "";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/* malloc_trim as the process resolves it. None of the peers defines one, so
 * under them this is glibc's, which has none of their memory to give back:
 * the report says whose it was. Looked up before anything is measured, as
 * dlsym may allocate. */
typedef struct {
    int (*trim)(size_t);
    const char *trim_by, *malloc_by;
    int own;            /* malloc_trim comes from the library of malloc */
    const char *call;   /* the allocator's own release call when it is not */
    int (*mallctl)(const char *, void *, size_t *, void *, size_t);
    void (*mi_collect)(int force);
    void (*tc_release)(void);
} trim_t;

static trim_t trim_lookup(void)
{
    trim_t t = { 0 };
    t.trim = (int (*)(size_t))dlsym(RTLD_DEFAULT, "malloc_trim");
    t.trim_by = defined_by("malloc_trim");
    t.malloc_by = defined_by("malloc");
    t.own = t.trim && !strcmp(t.trim_by, t.malloc_by);
    if (t.own)
        return t;
    /* What each peer offers instead, when its own library defines it. */
    if (!strcmp(defined_by("mallctl"), t.malloc_by)) {
        *(void **)&t.mallctl = dlsym(RTLD_DEFAULT, "mallctl");
        t.call = "mallctl(\"thread.tcache.flush\") and mallctl(\"arena.<all>.purge\")";
    } else if (!strcmp(defined_by("mi_collect"), t.malloc_by)) {
        *(void **)&t.mi_collect = dlsym(RTLD_DEFAULT, "mi_collect");
        t.call = "mi_collect(true)";
    } else if (!strcmp(defined_by("MallocExtension_ReleaseFreeMemory"), t.malloc_by)) {
        *(void **)&t.tc_release = dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
        t.call = "MallocExtension_ReleaseFreeMemory()";
    }
    return t;
}

/* Time malloc_trim(0) and report the phase "trim"; then, for a peer whose
 * malloc_trim is not its own, time its own release call as phase "release". */
static void trim_phases(const trim_t *t, uint64_t live)
{
    printf("malloc_by=%s\nmalloc_trim_by=%s\n", t->malloc_by, t->trim_by[0] ? t->trim_by : "none");
    fflush(stdout);
    double t0 = mono_ms();
    if (t->trim)
        t->trim(0);
    phase("trim", live, mono_ms() - t0);
    if (!t->call)
        return;
    printf("release_call=%s\n", t->call);
    fflush(stdout);
    t0 = mono_ms();
    if (t->mallctl) {
        t->mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
        t->mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: MALLCTL_ARENAS_ALL */
    } else if (t->mi_collect) {
        t->mi_collect(1);
    } else if (t->tc_release) {
        t->tc_release();
    }
    phase("release", live, mono_ms() - t0);
}

/* Shuffle blocks and their sizes together. */
static void shuffle(rng_t *r, void **p, uint32_t *len, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        void *tp = p[i - 1];
        uint32_t tl = len[i - 1];
        p[i - 1] = p[j], len[i - 1] = len[j];
        p[j] = tp, len[j] = tl;
    }
}

/* Room for the blocks of `total` bytes of sizes uniform in [min, max], with a
 * margin; the arrays grow if the draw is unlucky. */
static size_t room_for(size_t total, size_t min, size_t max)
{
    return total / ((min + max) / 2) * 5 / 4 + 64;
}

/* Where the idle period's blocks go, so that the compiler keeps their malloc and free. */
static void *volatile sink;

/*
 * About 1 GiB (times SCALE) of blocks of random size in [min, max], written in
 * full, then: all freed in random order; an idle period of 3 s during which,
 * every 100 ms, four blocks of 200 KiB are allocated, touched and freed (the
 * activity that lets an allocator without a background thread run its purge
 * schedule); malloc_trim(0); and for a peer, its own release call.
 */
static uint64_t memory_return(double scale, size_t min, size_t max)
{
    trim_t t = trim_lookup();
    rng_t r = rng_seed(12, min);
    size_t total = (size_t)(scale * (double)(1u << 30)), room = room_for(total, min, max), n = 0;
    uint64_t h = 0, live = 0;
    phase("start", 0, 0);

    void **p = xmalloc(room * sizeof *p);
    uint32_t *len = xmalloc(room * sizeof *len);
    while (live < total) {
        if (n == room) {
            room *= 2;
            p = xrealloc(p, room * sizeof *p);
            len = xrealloc(len, room * sizeof *len);
        }
        len[n] = (uint32_t)(min + rng_below(&r, max - min + 1));
        p[n] = xmalloc(len[n]);
        fill(p[n], len[n], n);
        live += len[n++];
    }
    phase("peak", live, 0);

    shuffle(&r, p, len, n);
    for (size_t i = 0; i < n; i++) {
        h = mix(h, consume(p[i], len[i]));
        free(p[i]);
    }
    free(p);
    free(len);
    phase("freed", 0, 0);

    /* The idle period: 3 s, shortened to 0.1 s only at the smoke test's scale. */
    int ticks = scale >= 0.1 ? 30 : 1;
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    for (int i = 0; i < ticks; i++) {
        nanosleep(&tick, NULL);
        for (int k = 0; k < 4; k++) {
            unsigned char *q = xmalloc(200 << 10);
            q[0] = (unsigned char)k;
            q[(200 << 10) - 1] = (unsigned char)i;
            sink = q;
            h += q[0] + q[(200 << 10) - 1];
            free(sink);
        }
    }
    printf("idle_s=%.1f\n", ticks * 0.1);
    phase("idle", 0, 0);

    trim_phases(&t, 0);
    return h;
}

static uint64_t w_return_small(int threads, double scale)
{
    (void)threads;
    return memory_return(scale, 16, 8 << 10);
}

static uint64_t w_return_large(int threads, double scale)
{
    (void)threads;
    return memory_return(scale, 64 << 10, 1 << 20);
}

/*
 * How long malloc_trim stalls a program with a big, fragmented heap: 3 GiB
 * (times SCALE) of 64 KiB-1 MiB blocks and 2 GiB of 16 B-8 KiB blocks,
 * interleaved, all written in full; half of the blocks freed at random; then
 * malloc_trim(0) timed. At most 5 GiB is live, to stay under 6 GiB of RSS.
 */
static uint64_t w_trim_latency(int threads, double scale)
{
    (void)threads;
    enum { SMALL_MIN = 16, SMALL_MAX = 8 << 10, LARGE_MIN = 64 << 10, LARGE_MAX = 1 << 20 };
    trim_t t = trim_lookup();
    rng_t r = rng_seed(13, 0);
    size_t large_total = (size_t)(scale * 3.0 * (double)(1u << 30));
    size_t small_total = (size_t)(scale * 2.0 * (double)(1u << 30));
    size_t n_large = room_for(large_total, LARGE_MIN, LARGE_MAX);
    size_t n_small = room_for(small_total, SMALL_MIN, SMALL_MAX);
    size_t room = n_large + n_small, n = 0;
    uint64_t h = 0, large = 0, small = 0, live = 0;
    phase("start", 0, 0);

    void **p = xmalloc(room * sizeof *p);
    uint32_t *len = xmalloc(room * sizeof *len);
    while (large < large_total || small < small_total) {
        if (n == room) {
            room *= 2;
            p = xrealloc(p, room * sizeof *p);
            len = xrealloc(len, room * sizeof *len);
        }
        /* Large blocks at their share of the count, so both kinds spread
         * over the whole heap. */
        int big = small >= small_total ||
                  (large < large_total && rng_below(&r, n_large + n_small) < n_large);
        if (big) {
            len[n] = (uint32_t)(LARGE_MIN + rng_below(&r, LARGE_MAX - LARGE_MIN + 1));
            large += len[n];
        } else {
            len[n] = (uint32_t)(SMALL_MIN + rng_below(&r, SMALL_MAX - SMALL_MIN + 1));
            small += len[n];
        }
        p[n] = xmalloc(len[n]);
        fill(p[n], len[n], n);
        live += len[n++];
    }
    phase("peak", live, 0);

    shuffle(&r, p, len, n);
    for (size_t i = 0; i < n / 2; i++) {
        h = mix(h, consume(p[i], len[i]));
        live -= len[i];
        free(p[i]);
    }
    phase("fragmented", live, 0);

    trim_phases(&t, live);
    for (size_t i = n / 2; i < n; i++) {
        h = mix(h, consume(p[i], len[i]));
        free(p[i]);
    }
    free(p);
    free(len);
    return h;
}

/* ------------------------------------------------- gcc's generated input */

/* A large C file for the gcc workload: many functions with loops, switches,
 * local tables and string literals, and big initialised data. */
static void gen_c(double scale)
{
    long funcs = scaled(100, scale, 2);
    rng_t r = rng_seed(11, 0);
    printf("/* generated by bench/workloads gen-c */\n"
           "#include <stddef.h>\nextern int puts(const char *);\n"
           "struct rec { int a; long b; const char *s; double d[4]; };\n");
    for (long f = 0; f < funcs; f++) {
        printf("static const struct rec tab%ld[] = {\n", f);
        for (int i = 0; i < 24; i++)
            printf("  { %d, %lldL, \"s%ld_%d_%llx\", { %d.5, %d.25, %d, %d } },\n",
                   (int)rng_below(&r, 1000), (long long)rng_below(&r, 1000000), f, i,
                   (unsigned long long)rng_next(&r), i, i + 1, i + 2, i * 3);
        printf("};\n");
        printf("long fn%ld(long x, const struct rec *r, size_t n)\n{\n"
               "  long acc = %lld;\n  double s = 0;\n", f, (long long)rng_below(&r, 99));
        printf("  for (size_t i = 0; i < n; i++) {\n"
               "    acc += r[i].a * (x ^ (long)i) + r[i].b;\n"
               "    s += r[i].d[i & 3] * (double)acc;\n"
               "    if (acc > %lld) acc -= tab%ld[i %% 24].b;\n  }\n",
               (long long)rng_below(&r, 1 << 30), f);
        printf("  switch ((x + acc) & 31) {\n");
        for (int c = 0; c < 32; c++) {
            int k = (int)rng_below(&r, 4);
            printf("  case %d: ", c);
            if (k == 0)
                printf("acc = acc * %d + tab%ld[%d].a; break;\n", c + 3, f, c % 24);
            else if (k == 1)
                printf("puts(tab%ld[%d].s); acc ^= %d; break;\n", f, c % 24, c * 17);
            else if (k == 2)
                printf("for (int j = 0; j < %d; j++) acc += (acc >> 3) ^ j; break;\n", c + 2);
            else
                printf("s = s * 0.5 + %d; acc += (long)s; break;\n", c);
        }
        printf("  }\n");
        if (f > 0)
            printf("  if (x > 0 && (x & 7) == %ld) acc += fn%ld(x - 1, tab%ld, %d);\n",
                   f % 8, f - 1, f - 1, (int)(f % 24));
        printf("  return acc + (long)s;\n}\n\n");
    }
    printf("long run_all(long x)\n{\n  long acc = 0;\n");
    for (long f = 0; f < funcs; f++)
        printf("  acc += fn%ld(x + %ld, tab%ld, 24);\n", f, f, f);
    printf("  return acc;\n}\n");
}

/* ------------------------------------------------------------------ main */

typedef struct {
    const char *name;
    uint64_t (*run)(int threads, double scale);
    const char *about;
} workload_t;

static const workload_t workloads[] = {
    { "churn", w_churn, "small-object churn in one thread, 8-512 B" },
    { "mix", w_mix, "long-lived tree and table with short-lived trees and lists" },
    { "server", w_server, "working sets, random replacement, batches freed by another thread" },
    { "prodcons", w_prodcons, "producer/consumer: every block freed by another thread" },
    { "cache", w_cache, "false sharing: small objects handed between threads, written hard" },
    { "realloc", w_realloc, "strings and vectors grown by realloc from bytes to MiB" },
    { "large", w_large, "64 KiB-64 MiB blocks, touched sparsely, freed out of order" },
    { "aligned", w_aligned, "posix_memalign and aligned_alloc, 16 B-4 KiB alignments" },
    { "threads", w_threads, "short-lived threads allocating and exiting" },
    { "pool", w_pool, "thread-pool batches: workers doing interpreter work, then exiting" },
    { "fragment", w_fragment, "fragmenting pattern; peak and final RSS" },
    { "thrash", w_thrash, "64 blocks of 1 MiB allocated, written and freed in a loop" },
    { "return-small", w_return_small, "RSS through allocating, freeing, idling, trim: 16 B-8 KiB" },
    { "return-large", w_return_large, "RSS through allocating, freeing, idling, trim: 64 KiB-1 MiB" },
    { "trim-latency", w_trim_latency, "malloc_trim on a fragmented 5 GiB heap" },
};

int main(int argc, char **argv)
{
    size_t count = sizeof workloads / sizeof workloads[0];
    if (argc == 2 && !strcmp(argv[1], "list")) {
        for (size_t i = 0; i < count; i++)
            printf("%-10s %s\n", workloads[i].name, workloads[i].about);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "which-malloc")) {
        /* The runner checks with this that a preload really took effect. */
        Dl_info info;
        void *m = dlsym(RTLD_DEFAULT, "malloc");
        printf("%s\n", m && dladdr(m, &info) && info.dli_fname ? info.dli_fname : "?");
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "gen-c")) {
        gen_c(atof(argv[2]));
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s NAME THREADS SCALE | list | gen-c SCALE\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]);
    double scale = atof(argv[3]);
    if (threads < 1 || threads > 256 || !(scale > 0)) {
        fprintf(stderr, "workloads: THREADS must be 1-256 and SCALE > 0\n");
        return 2;
    }
    for (size_t i = 0; i < count; i++)
        if (!strcmp(argv[1], workloads[i].name)) {
            uint64_t h = workloads[i].run(threads, scale);
            printf("checksum=%016llx\n", (unsigned long long)h);
            return 0;
        }
    fprintf(stderr, "workloads: unknown workload '%s' (try: %s list)\n", argv[1], argv[0]);
    return 2;
}
