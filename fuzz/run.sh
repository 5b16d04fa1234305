#!/bin/sh
# fuzz/run.sh — build the graph-file parser's libFuzzer target with clang (ASan + UBSan) and run it.
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     (default 600 seconds, one job, one core)
#
# It compiles the library sources directly (no CMake needed) into build-fuzz/, seeds a working corpus
# from examples/*.smg, tests/fixtures/graphs/*.smg and fuzz/seeds/*.smg (inputs that once found bugs),
# plus the inputs kept by earlier runs in build-fuzz/corpus, and runs until SECONDS pass or something
# is found. Findings are written as
# build-fuzz/crash-* / leak-* / timeout-* files; reproduce one with
#   build-fuzz/fuzz_graph_parse build-fuzz/crash-<hash>
# The summary line libFuzzer prints at the end ("Done N runs in S second(s)") gives the exec count.
set -eu
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
[ $# -gt 0 ] && shift
CC=${CC:-clang}
OUT=build-fuzz
mkdir -p "$OUT/obj" "$OUT/corpus"

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c11 -g -O1 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I. -fopenmp"
objs=""
for src in base/*.c graph/*.c ops/*.c scheduler/*.c memory/*.c frontends/*.c; do
  [ -f "$src" ] || continue
  obj="$OUT/obj/$(echo "$src" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    $CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objs="$objs $obj"
done
$CC $CFLAGS $SAN -fsanitize=fuzzer fuzz/fuzz_graph_parse.c $objs -lxxhash -lm -o "$OUT/fuzz_graph_parse"

SEEDS="$OUT/seeds"
rm -rf "$SEEDS" && mkdir -p "$SEEDS"
cp examples/*.smg "$SEEDS"/ 2>/dev/null || true
cp tests/fixtures/graphs/*.smg "$SEEDS"/ 2>/dev/null || true
cp fuzz/seeds/*.smg "$SEEDS"/ 2>/dev/null || true   # inputs that once found bugs

# -jobs=1 runs one fuzzing process (one core) whose log goes to fuzz-0.log in the current directory:
# run it from build-fuzz/ so the log lands there; it is also copied to stdout at the end.
# detect_leaks checks every input for leaks; the rss limit catches runaway allocations.
cd "$OUT"
status=0
./fuzz_graph_parse corpus seeds -dict=../fuzz/graph.dict -max_total_time="$SECONDS_TO_RUN" \
  -jobs=1 -workers=1 -max_len=16384 -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
  -artifact_prefix=./ -print_final_stats=1 "$@" || status=$?
cat fuzz-0.log 2>/dev/null | tail -40
exit $status
