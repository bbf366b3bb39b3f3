# Tests. Every tests/api/*.c, tests/stress/*.c and tests/death/*.c is one program linked
# against libvmalloc.so (so it runs on vmalloc, cmocka included); tests/unit/*.c link the
# debug archive of the internals instead and use the system malloc. tests/run.sh runs them
# all with a time limit each and prints the closing count.

TEST_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -Wall -Wextra -Iinclude -Isrc -pthread
UNIT_BIN    := $(patsubst tests/unit/%.c,build/tests/unit/%,$(wildcard tests/unit/*.c))
API_BIN     := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/api/*.c tests/stress/*.c tests/death/*.c))
CPP_BIN     := $(patsubst tests/cpp/%.cc,build/tests/cpp/%,$(wildcard tests/cpp/*.cc)) \
               build/tests/cpp/test_new_replaced-static build/tests/cpp/test_new_minimal-static
LINK_VM     := -L. -lvmalloc -Wl,-rpath,'$$ORIGIN/../../..'

# cmocka is the one test dependency: install it on Debian when it is missing.
check-deps:
	@if ! printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\n' \
	    | $(CC) -E -x c - >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "cmocka is missing: installing libcmocka-dev"; \
	    (apt-get install -y -qq libcmocka-dev >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq libcmocka-dev >/dev/null)) || \
	     { echo "error: apt-get could not install libcmocka-dev"; exit 1; }; \
	  else \
	    echo "error: cmocka is missing. Install it (Debian: sudo apt-get install libcmocka-dev) and run make test again."; \
	    exit 1; \
	  fi; \
	fi

build/tests/unit/%: tests/unit/%.c build/libvmalloc-debug.a tests/unit/unit.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DVM_DEBUG=3 $< -o $@ build/libvmalloc-debug.a -lcmocka
build/tests/%: tests/%.c libvmalloc.so $(wildcard tests/*.h) | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< -o $@ $(LINK_VM) -lcmocka
# Misuse on purpose: the compiler must neither warn about it nor optimise it away.
build/tests/death/%: TEST_CFLAGS += -fno-builtin -Wno-free-nonheap-object -Wno-use-after-free
build/tests/cpp/%: tests/cpp/%.cc libvmalloc.so $(wildcard tests/cpp/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -fsized-deallocation -O1 -g -pthread -Iinclude $< -o $@ $(LINK_VM)

# The same programs linked fully static with libvmalloc.a.
build/tests/cpp/%-static: tests/cpp/%.cc libvmalloc.a $(wildcard tests/cpp/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -fsized-deallocation -O1 -g -static -pthread -Iinclude $< libvmalloc.a -o $@

# A C++ plugin that a C test loads with dlopen (not a test of its own: kept out of
# build/tests/cpp, whose programs run.sh runs).
build/tests/plugins/lib%.so: tests/plugins/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -g -shared -fPIC $< -o $@
# and one with its own copy of the C++ runtime linked in
build/tests/plugins/lib%-own-runtime.so: tests/plugins/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -g -shared -fPIC -static-libstdc++ $< -o $@
build/tests/api/test_cxx_plugin: build/tests/plugins/libnew_plugin.so \
                                 build/tests/plugins/libnew_plugin-own-runtime.so

# Sanitizers on the internals (no libc names, so the sanitizers keep their own malloc):
# every unit test under AddressSanitizer + UndefinedBehaviorSanitizer, and the threaded
# unit test under ThreadSanitizer.
ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS  := -fsanitize=thread
ASAN_OBJ    := $(patsubst src/%.c,build/asan/%.o,$(CORE_SRC))
TSAN_OBJ    := $(patsubst src/%.c,build/tsan/%.o,$(CORE_SRC))
SAN_BIN     := $(patsubst tests/unit/%.c,build/tests/sanitize/asan-%,$(wildcard tests/unit/*.c)) \
               build/tests/sanitize/tsan-test_threads

# Kept after the build (make would delete them as intermediates and rebuild them next time).
.SECONDARY: $(ASAN_OBJ) $(TSAN_OBJ)

build/asan/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAGS) -O1 -DVM_DEBUG=3 $(ASAN_FLAGS) -c $< -o $@
build/tsan/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAGS) -O1 -DVM_DEBUG=3 $(TSAN_FLAGS) -c $< -o $@
build/tests/sanitize/asan-%: tests/unit/%.c $(ASAN_OBJ) tests/unit/unit.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DVM_DEBUG=3 $(ASAN_FLAGS) $< $(ASAN_OBJ) -o $@ -lcmocka
build/tests/sanitize/tsan-%: tests/unit/%.c $(TSAN_OBJ) tests/unit/unit.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DVM_DEBUG=3 $(TSAN_FLAGS) $< $(TSAN_OBJ) -o $@ -lcmocka

test-build: all $(UNIT_BIN) $(API_BIN) $(CPP_BIN) $(SAN_BIN) fuzz-build

test: check-deps test-build
	@+bash tests/run.sh

.PHONY: test-build test-sanitize
