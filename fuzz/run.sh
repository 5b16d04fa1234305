#!/bin/sh
# fuzz/run.sh — build one of SmallMind's libFuzzer targets with clang (ASan + UBSan) and run it.
#
#   fuzz/run.sh [TARGET] [SECONDS] [extra libFuzzer flags...]   (default: graph, 600 seconds, one core)
#
# TARGET is one of
#   graph        fuzz/fuzz_graph_parse.c: the graph-file loader; seeds from examples/*.smg,
#                tests/fixtures/graphs/*.smg and fuzz/seeds/*.smg (inputs that once found bugs)
#   safetensors  fuzz/fuzz_safetensors.c: the safetensors reader (header length, JSON header, data
#                section); seeds from fuzz/seeds/safetensors/ (valid tiny files, truncated and
#                malformed ones)
# It compiles the library sources directly (no CMake needed) into build-fuzz/obj/ (shared by the
# targets) and runs in build-fuzz/TARGET/, with the seeds plus the inputs kept by earlier runs in
# build-fuzz/TARGET/corpus, until SECONDS pass or something is found. Findings are written as
# build-fuzz/TARGET/crash-* / leak-* / timeout-* files; reproduce one with
#   build-fuzz/TARGET/fuzz_TARGET build-fuzz/TARGET/crash-<hash>
# The summary line libFuzzer prints at the end ("Done N runs in S second(s)") gives the exec count.
# Two targets can run at once (one core each) once build-fuzz/obj is built.
set -eu
cd "$(dirname "$0")/.."
TARGET=graph
case "${1:-}" in
graph | safetensors) TARGET=$1; shift ;;
esac
SECONDS_TO_RUN=${1:-600}
[ $# -gt 0 ] && shift
case "$TARGET" in
graph) SRC=fuzz/fuzz_graph_parse.c BIN=fuzz_graph_parse DICT=fuzz/graph.dict MAX_LEN=16384 ;;
safetensors) SRC=fuzz/fuzz_safetensors.c BIN=fuzz_safetensors DICT=fuzz/safetensors.dict MAX_LEN=8192 ;;
esac
CC=${CC:-clang}
OUT=build-fuzz
DIR="$OUT/$TARGET"
mkdir -p "$OUT/obj" "$DIR/corpus"

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
$CC $CFLAGS $SAN -fsanitize=fuzzer "$SRC" $objs -lxxhash -lm -o "$DIR/$BIN"

SEEDS="$DIR/seeds"
rm -rf "$SEEDS" && mkdir -p "$SEEDS"
if [ "$TARGET" = graph ]; then
  cp examples/*.smg tests/fixtures/graphs/*.smg fuzz/seeds/*.smg "$SEEDS"/ 2>/dev/null || true
else
  cp fuzz/seeds/safetensors/* "$SEEDS"/
fi

# -jobs=1 runs one fuzzing process (one core) whose log goes to fuzz-0.log in the current directory:
# run it from the target's folder so the log lands there; it is also copied to stdout at the end.
# detect_leaks checks every input for leaks; the rss limit catches runaway allocations.
cd "$DIR"
status=0
./"$BIN" corpus seeds -dict=../../"$DICT" -max_total_time="$SECONDS_TO_RUN" \
  -jobs=1 -workers=1 -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
  -artifact_prefix=./ -print_final_stats=1 "$@" || status=$?
tail -40 fuzz-0.log 2>/dev/null
exit $status
