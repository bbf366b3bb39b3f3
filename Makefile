# vmalloc: a drop-in replacement for the C heap.
#
#   make            libvmalloc.so, libvmalloc.a and the vmalloc command
#   make test       every test (installs cmocka with apt-get when it is missing)
#   make bench      the benchmark comparison against glibc and installed peers
#   make install    PREFIX=/usr/local DESTDIR=

CC       ?= cc
CXX      ?= c++
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
VERSION  := 0.1.0

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wundef -Wsign-compare \
            -Wpointer-arith -Wmissing-prototypes
LIBFLAGS := -std=c11 -O2 -g -fPIC -funwind-tables -D_GNU_SOURCE -fvisibility=hidden \
            -ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-calloc \
            -fno-builtin-realloc -fno-builtin-free -fno-plt $(WARN) -Iinclude -Isrc
# The release library: every module plus the libc names and C++'s operator new and
# delete. The archive's C++ object refers to the C++ runtime outright (it goes only into
# C++ programs); the shared library's, weakly (it goes into C programs too).
CORE_SRC := $(filter-out src/override.c src/override_cxx.c,$(wildcard src/*.c))
REL_OBJ  := $(patsubst src/%.c,build/rel/%.o,$(CORE_SRC) src/override.c src/override_cxx.c)
ARCHIVE_OBJ := $(filter-out build/rel/override_cxx.o,$(REL_OBJ)) build/rel/override_cxx-archive.o
# The internals without the libc names, at full checking, for unit tests
# (cmocka allocates with the system malloc, so it must not be ours).
DBG_OBJ  := $(patsubst src/%.c,build/dbg/%.o,$(CORE_SRC))
HEADERS  := $(wildcard src/*.h src/*.def include/*.h)

.PHONY: all test bench install uninstall clean check-deps bench-deps FORCE
all: libvmalloc.so libvmalloc.a vmalloc

build/rel/%.o: src/%.c $(HEADERS) | build/rel
	$(CC) $(LIBFLAGS) -DVM_DEBUG=0 -DVM_VERSION=\"$(VERSION)\" -c $< -o $@
build/rel/override_cxx-archive.o: src/override_cxx.c $(HEADERS) | build/rel
	$(CC) $(LIBFLAGS) -DVM_DEBUG=0 -DVM_STATIC_ARCHIVE -c $< -o $@
build/dbg/%.o: src/%.c $(HEADERS) | build/dbg
	$(CC) $(LIBFLAGS) -O1 -DVM_DEBUG=3 -c $< -o $@
build/rel build/dbg build/tests:
	mkdir -p $@

libvmalloc.so: $(REL_OBJ)
	$(CC) -shared -Wl,-soname,libvmalloc.so -Wl,-z,now -o $@ $^ -lpthread
libvmalloc.a: $(ARCHIVE_OBJ)
	rm -f $@ && ar rcs $@ $^
build/libvmalloc-debug.a: $(DBG_OBJ)
	rm -f $@ && ar rcs $@ $^

vmalloc.pc: FORCE
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: vmalloc\nDescription: %s\nVersion: %s\nLibs: -L$${libdir} -lvmalloc\nLibs.private: -lpthread\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(LIBDIR)' '$(INCDIR)' 'drop-in replacement for the C heap' '$(VERSION)' > $@

install: all vmalloc.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 vmalloc $(DESTDIR)$(BINDIR)/vmalloc
	install -m 755 libvmalloc.so $(DESTDIR)$(LIBDIR)/libvmalloc.so
	install -m 644 libvmalloc.a $(DESTDIR)$(LIBDIR)/libvmalloc.a
	install -m 644 include/vmalloc.h $(DESTDIR)$(INCDIR)/vmalloc.h
	install -m 644 vmalloc.pc $(DESTDIR)$(LIBDIR)/pkgconfig/vmalloc.pc
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vmalloc $(DESTDIR)$(LIBDIR)/libvmalloc.so $(DESTDIR)$(LIBDIR)/libvmalloc.a \
	  $(DESTDIR)$(INCDIR)/vmalloc.h $(DESTDIR)$(LIBDIR)/pkgconfig/vmalloc.pc

include src/cli/cli.mk
include tests/tests.mk
include tests/fuzz/fuzz.mk
include bench/bench.mk

clean:
	rm -rf build libvmalloc.so libvmalloc.a vmalloc.pc vmalloc
