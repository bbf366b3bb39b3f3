# The vmalloc command (src/cli): `vmalloc run` runs a program on vmalloc, `vmalloc compare`
# compares allocators on it. It needs the C library only, and is built beside
# libvmalloc.so, where it looks for the library first. Its peer discovery, SVG writing and
# measuring (CLI_SHARED_OBJ) are linked into bench/runner.c too.
#
#   make vmalloc            the command (part of make all)
#   make cli-test-build     the programs tests/cli/test_cli.sh runs (part of make test-build)

CLI_CFLAGS     := -std=c11 -O2 -g -D_GNU_SOURCE $(WARN)
CLI_OBJ        := $(patsubst src/cli/%.c,build/cli/%.o,$(wildcard src/cli/*.c))
CLI_SHARED_OBJ := build/cli/peers.o build/cli/svg.o build/cli/measure.o
CLI_HEADERS    := $(wildcard src/cli/*.h)
CLI_TEST_BIN   := build/tests/cli/which_malloc build/tests/cli/alloc_free \
                  build/tests/cli/svg_check build/tests/cli/libclimarker.so

.PHONY: cli-test-build

build/cli:
	mkdir -p $@
build/cli/%.o: src/cli/%.c $(CLI_HEADERS) | build/cli
	$(CC) $(CLI_CFLAGS) -c $< -o $@
# Debian's folder for the peers' libraries is named after the multiarch triplet.
build/cli/peers.o: CLI_CFLAGS += -DMULTIARCH='"$(shell $(CC) -print-multiarch 2>/dev/null)"'
build/cli/main.o: CLI_CFLAGS += -DVM_VERSION='"$(VERSION)"'

vmalloc: $(CLI_OBJ)
	$(CC) $(CLI_CFLAGS) $^ -o $@

# The test programs are linked normally: the allocator under test comes from LD_PRELOAD.
build/tests/cli:
	mkdir -p $@
build/tests/cli/%: tests/cli/%.c | build/tests/cli
	$(CC) $(CLI_CFLAGS) $< -o $@ -ldl
build/tests/cli/lib%.so: tests/cli/%.c | build/tests/cli
	$(CC) $(CLI_CFLAGS) -shared -fPIC $< -o $@

cli-test-build: vmalloc $(CLI_TEST_BIN)
test-build: cli-test-build
