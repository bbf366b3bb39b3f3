# The fuzz harness (tests/fuzz/README.md): libFuzzer with AddressSanitizer and
# UndefinedBehaviorSanitizer over the internals (no libc or C++ names), built with clang into
# build/fuzz/. Works included from the top Makefile or alone (make -f tests/fuzz/fuzz.mk).
#
#   make fuzz-build         the harness; installs clang and its libFuzzer runtime with
#                           apt-get when they are missing and we are root, else skips
#   make fuzz               fuzzes for FUZZ_SECONDS (120); a crash input is copied into
#                           tests/fuzz/regressions/ and the target fails
#   make fuzz-regressions   replays every saved crash input and the seed corpus (seconds)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 120
FUZZ_FLAGS   ?=
FUZZ_DIR     := build/fuzz
FUZZ_BIN     := $(FUZZ_DIR)/fuzz_heap
FUZZ_MAKE    := $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -O1 -g -D_GNU_SOURCE -DVM_DEBUG=3 -Isrc -Iinclude -pthread \
                -Wall -Wextra -Wshadow -Wstrict-prototypes -Wundef -Wsign-compare \
                -Wpointer-arith -Wmissing-prototypes $(FUZZ_SAN)
FUZZ_OBJ     := $(patsubst src/%.c,$(FUZZ_DIR)/%.o,$(filter-out src/override.c src/override_cxx.c,$(wildcard src/*.c)))
FUZZ_HEADERS := $(wildcard src/*.h src/*.def include/*.h)
# Every file in these is one input for fuzz-regressions.
FUZZ_INPUTS  := tests/fuzz/regressions tests/fuzz/corpus

# Succeeds when $(FUZZ_CC) links a libFuzzer program. Otherwise, as root on Debian,
# installs clang (if $(FUZZ_CC) is missing) and libclang-rt-N-dev for its version N
# (Debian 12: libclang-rt-14-dev holds libclang_rt.fuzzer), failing if apt-get cannot;
# anyone else gets one line saying what to install, and the fuzz targets skip.
FUZZ_PROBE_C = int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }
FUZZ_PROBE = printf '%s\n' '$(FUZZ_PROBE_C)' \
	| $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -x c - -o $(FUZZ_DIR)/probe >/dev/null 2>&1
FUZZ_HINT = Debian: sudo apt-get install clang libclang-rt-14-dev
FUZZ_TOOLCHAIN = { mkdir -p $(FUZZ_DIR); $(FUZZ_PROBE) || { \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "fuzz: skipped: $(FUZZ_CC) cannot link libFuzzer programs ($(FUZZ_HINT))"; \
	  false; \
	else \
	  fuzz_install() { echo "fuzz: installing $$1"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$$1" </dev/null >/dev/null 2>&1 || \
	    { apt-get update -qq </dev/null >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$$1" </dev/null >/dev/null; }; }; \
	  { command -v $(FUZZ_CC) >/dev/null || fuzz_install $(FUZZ_CC); } && \
	  fuzz_install libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev && $(FUZZ_PROBE) || \
	  { echo "error: could not install a libFuzzer toolchain for $(FUZZ_CC) with apt-get"; exit 1; }; \
	fi; }; }

.PHONY: fuzz fuzz-build fuzz-regressions

# The harness, or (toolchain missing, not root) a skip line and no binary.
fuzz-build:
	@if $(FUZZ_TOOLCHAIN); then $(FUZZ_MAKE) -q $(FUZZ_BIN) || $(FUZZ_MAKE) $(FUZZ_BIN); \
	else rm -f $(FUZZ_BIN); fi

$(FUZZ_DIR)/%.o: src/%.c $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BIN): tests/fuzz/fuzz_heap.c $(FUZZ_OBJ) $(FUZZ_HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@

# Fuzzes into build/fuzz/corpus (seeded from tests/fuzz/corpus). libFuzzer stops at the
# first crash, whose input goes to tests/fuzz/regressions/ (minimise it with
# `build/fuzz/fuzz_heap -minimize_crash=1 -runs=50000 -exact_artifact_path=OUT FILE`).
fuzz: fuzz-build
	@[ -x $(FUZZ_BIN) ] || exit 0; \
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes tests/fuzz/regressions; \
	rm -f $(FUZZ_DIR)/crashes/*; \
	echo "fuzz: running $(FUZZ_BIN) for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/fuzz.log)"; \
	start=$$(date +%s); \
	$(FUZZ_BIN) -max_len=4096 -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=4096 \
	  -detect_leaks=0 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/ $(FUZZ_FLAGS) \
	  $(FUZZ_DIR)/corpus tests/fuzz/corpus >$(FUZZ_DIR)/fuzz.log 2>&1; \
	status=$$?; seconds=$$(( $$(date +%s) - start )); \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/fuzz.log | tail -n 1); \
	[ -n "$$runs" ] || runs=$$(grep -o '^#[0-9]*' $(FUZZ_DIR)/fuzz.log | tail -n 1 | tr -d '#'); \
	crashes=0; \
	for f in $(FUZZ_DIR)/crashes/crash-* $(FUZZ_DIR)/crashes/leak-* \
	         $(FUZZ_DIR)/crashes/timeout-* $(FUZZ_DIR)/crashes/oom-*; do \
	  [ -f "$$f" ] || continue; \
	  crashes=$$((crashes + 1)); cp "$$f" tests/fuzz/regressions/; \
	  echo "fuzz: saved tests/fuzz/regressions/$${f##*/}"; \
	done; \
	if [ $$status -ne 0 ]; then \
	  grep -E '^(fuzz_heap:|vmalloc:|==[0-9]+==ERROR|SUMMARY|    #[0-9]+ )' $(FUZZ_DIR)/fuzz.log \
	    | grep -vE 'fuzzer::|libc\.so|libc_start|in _start|in main ' | head -n 40; \
	  [ $$crashes -gt 0 ] || crashes=1; \
	fi; \
	echo "fuzz: $${runs:-0} runs in $$seconds s, $$crashes crashes"; \
	[ $$crashes -eq 0 ]

# Replays each saved crash input and seed in a process of its own; fails if any crashes.
fuzz-regressions: fuzz-build
	@[ -x $(FUZZ_BIN) ] || exit 0; \
	count=0; crashes=0; start=$$(date +%s); : >$(FUZZ_DIR)/regressions.log; \
	for f in $$(find $(FUZZ_INPUTS) -type f ! -name '.*' ! -name '*.md' 2>/dev/null | sort); do \
	  count=$$((count + 1)); \
	  if ! $(FUZZ_BIN) -rss_limit_mb=4096 -detect_leaks=0 "$$f" >$(FUZZ_DIR)/one.log 2>&1; then \
	    crashes=$$((crashes + 1)); \
	    echo "fuzz-regressions: $$f crashes:"; \
	    grep -E '^(fuzz_heap:|vmalloc:|==[0-9]+==ERROR|SUMMARY)' $(FUZZ_DIR)/one.log \
	      | head -n 5 | sed 's/^/    /'; \
	  fi; \
	  cat $(FUZZ_DIR)/one.log >>$(FUZZ_DIR)/regressions.log; \
	done; \
	echo "fuzz-regressions: $$count inputs in $$(( $$(date +%s) - start )) s, $$crashes crashes"; \
	[ $$crashes -eq 0 ]
