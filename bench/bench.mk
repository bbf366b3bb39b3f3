# Benchmarks: see bench/README.md.
#
#   make bench            every workload under vmalloc, glibc and the installed peers;
#                         QUICK=1 for a one-minute run, REPS=N runs per cell,
#                         BENCH_ARGS='--only jemalloc churn server' to narrow it down,
#                         BENCH_ARGS='--variant vmalloc-nocheck=VMALLOC_CHECK=0' for a column
#                         of vmalloc with options set
#   make bench-memory     RSS after allocating, freeing, idling and malloc_trim; trim latency;
#                         page faults of reuse (about 3 minutes; QUICK=1 for a smaller one)
#   make bench-deps       install the peers (Debian)
#   make bench-instr      instructions per malloc + free under callgrind
#   make bench-smoke      every workload at a tiny scale, vmalloc's checksums against glibc's

BENCH_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
                -Wmissing-prototypes -pthread
BENCH_BIN    := build/bench/workloads build/bench/runner build/bench/instr \
                build/bench/libglibc-shim.so
BENCH_RUN    := build/bench/runner
BENCH_OPTS    = $(if $(filter 1 yes,$(QUICK)),--quick) $(if $(REPS),--reps $(REPS)) \
                --vmalloc ./libvmalloc.so --vmalloc-version '$(BENCH_VERSION)' $(BENCH_ARGS)
# The version in reports: the release and, in a git work tree, the commit.
BENCH_VERSION = $(VERSION)$(shell git rev-parse --short HEAD 2>/dev/null | sed 's/^/ (git /; s/$$/)/')

.PHONY: bench bench-deps bench-instr bench-memory bench-smoke bench-build

bench: all bench-build
	@$(BENCH_RUN) run $(BENCH_OPTS)

bench-memory: all bench-build
	@$(BENCH_RUN) memory $(BENCH_OPTS)

bench-smoke: all bench-build
	@$(BENCH_RUN) smoke --vmalloc ./libvmalloc.so $(BENCH_ARGS)

bench-instr: all bench-build
	@$(BENCH_RUN) instr --vmalloc ./libvmalloc.so --vmalloc-version '$(BENCH_VERSION)' $(BENCH_ARGS)

bench-deps:
	apt-get install -y libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4

bench-build: $(BENCH_BIN)

build/bench:
	mkdir -p $@

# The workloads are linked normally: the allocator under test comes from LD_PRELOAD.
build/bench/workloads: bench/workloads.c | build/bench
	$(CC) $(BENCH_CFLAGS) $< -o $@ -ldl

# The runner shares the peers, the SVG writing and the measuring with the vmalloc command.
build/bench/runner: bench/runner.c $(CLI_SHARED_OBJ) $(CLI_HEADERS) | build/bench
	$(CC) $(BENCH_CFLAGS) -Isrc/cli $< $(CLI_SHARED_OBJ) -o $@ -lm

# -fno-builtin: the compiler must not pair up and delete the malloc and free it counts.
build/bench/instr: bench/instr.c | build/bench
	$(CC) $(BENCH_CFLAGS) -fno-builtin $< -o $@ -lstdc++

build/bench/libglibc-shim.so: bench/glibc-shim.c | build/bench
	$(CC) $(BENCH_CFLAGS) -shared -fPIC $< -o $@ -ldl
