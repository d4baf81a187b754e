#!/bin/bash
# Build wire_fuzz (clang, libFuzzer + ASan + UBSan) and run it on a fresh seed corpus.
#
#   link/qemu/fuzz/fuzz.sh OUT_DIR [libFuzzer options...]     (default: -runs=200000)
#
# OUT_DIR gets the binary, corpus/ (the seeds, then whatever libFuzzer adds) and,
# on a failure, the crashing input (crash-*).  VLINK_RX_SRC builds against another
# copy of vlink-rx.c (the tap test uses a broken one to prove a bug is caught).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [libFuzzer options...]" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=$1
shift
src=${VLINK_RX_SRC:-$repo/link/qemu/hw/vlink-rx.c}

if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang is not installed; run 'npx ntbh setup' (Debian packages clang and libclang-rt-14-dev)" >&2
    exit 3
fi
mkdir -p "$out/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -DVLINK_RX_STANDALONE -I "$repo/link/include" -I "$repo/link/qemu/hw" \
    "$here/wire_fuzz.c" "$src" -o "$out/wire_fuzz"
"$repo/node_modules/.bin/tsx" "$here/seeds.ts" "$out/corpus"
cd "$out"
if [ $# -eq 0 ]; then
    set -- -runs=200000
fi
exec ./wire_fuzz -seed=1 -max_len=4096 "$@" corpus
