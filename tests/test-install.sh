#!/usr/bin/env bash
# `cmake --install` into a temporary prefix gives a working tree: header, shared library (with its SONAME)
# and static library, modelpool.pc, the `modelpool` binary (RUNPATH to its lib/), the embedded model where
# that binary looks for it, and the man page. Both examples build from the prefix alone with
# `cc $(pkg-config --cflags --libs modelpool)` as strict C11 and print what the CLI prints; the static
# library links with `pkg-config --static`; the tree still works after it is moved.
# usage: test-install.sh CMAKE BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS...]   (sanitizer flags of the build, if any)
# exit 77 without the embedded model, sox or pkg-config.
set -euo pipefail
trap 'echo "FAIL: test-install.sh line $LINENO: a command failed (status $?)" >&2' ERR
cmake=$1 build=$2 src=$3
shift 3
extra=("$@")
model=$src/models/digits
[ -f "$model/model.safetensors" ] || { echo "skipped: no embedded model"; exit 77; }
command -v sox >/dev/null || { echo "skipped: sox missing"; exit 77; }
command -v pkg-config >/dev/null || { echo "skipped: pkg-config missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$tmp/p" > "$tmp/install.log"
P=$tmp/p
pc=$(find "$P" -name modelpool.pc)
[ -n "$pc" ] || fail "no modelpool.pc installed"
lib=$(dirname "$(dirname "$pc")")      # P/lib, or P/lib/<multiarch> when configured for /usr
for f in include/modelpool.h bin/modelpool share/modelpool/models/digits/config.json \
         share/modelpool/models/digits/model.safetensors share/modelpool/models/digits/vocab.json \
         share/modelpool/models/digits/lexicon.txt share/man/man1/modelpool.1; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
ver=$(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --modversion modelpool)
[ -f "$lib/libmodelpool.so.$ver" ] || fail "no libmodelpool.so.$ver"
[ "$(readlink "$lib/libmodelpool.so.${ver%%.*}")" = "libmodelpool.so.$ver" ] || fail "libmodelpool.so.${ver%%.*} link"
[ -L "$lib/libmodelpool.so" ] && [ -f "$lib/libmodelpool.a" ] || fail "libmodelpool.so link or libmodelpool.a missing"
dyn=$(readelf -d "$lib/libmodelpool.so.$ver"); grep -q "SONAME.*\[libmodelpool.so.${ver%%.*}\]" <<<"$dyn" || fail "SONAME"
dyn=$(readelf -d "$P/bin/modelpool"); grep -q 'RUNPATH.*\[$ORIGIN/' <<<"$dyn" || fail "modelpool has no \$ORIGIN RUNPATH"
if grep -rqs "$src" "$pc"; then fail "modelpool.pc points into the source tree"; fi

# the examples from the prefix alone, strict C11 and warnings as errors
export PKG_CONFIG_PATH=$lib/pkgconfig
cflags=(-std=c11 -Wall -Wextra -Werror "${extra[@]}")
for ex in transcribe live; do
  # shellcheck disable=SC2046   # pkg-config's output is meant to be split into words
  cc "${cflags[@]}" "$src/examples/$ex.c" -o "$tmp/$ex" $(pkg-config --cflags --libs modelpool) \
    || fail "examples/$ex.c does not build against the installed library"
done
# static: libmodelpool.a plus what pkg-config --static lists for it; no libmodelpool.so at run time
static_libs=$(pkg-config --static --libs modelpool | sed 's/-lmodelpool\b/-l:libmodelpool.a/')
# shellcheck disable=SC2046,SC2086
cc "${cflags[@]}" "$src/examples/transcribe.c" -o "$tmp/transcribe-static" $(pkg-config --cflags modelpool) \
  $static_libs || fail "the static library does not link with pkg-config --static"
dyn=$(readelf -d "$tmp/transcribe-static"); if grep -q 'NEEDED.*libmodelpool' <<<"$dyn"; then fail "static example needs the .so"; fi

# the bundled phone number 8 times with 1 s pauses (~50 s): 8 utterances for example-live
sox "$src/samples/phone-gsm.wav" "$tmp/one.wav" pad 0 1
sox "$tmp/one.wav" "$tmp/call.wav" repeat 7

# The installed binary, run from / with no --model and no MODELPOOL_MODEL, uses the installed model and
# prints what the build-tree binary prints with the source tree's model.
unset MODELPOOL_MODEL
"$build/modelpool" --help | grep -qF "($model;" || fail "build-tree binary's default model is not $model"
"$P/bin/modelpool" --help | grep -qF "($P/share/modelpool/models/digits;" \
  || fail "installed binary's default model: $("$P/bin/modelpool" --help | tail -1)"
f=$src/samples/phone-gsm.wav
want=$("$build/modelpool" transcribe "$f")
[ -n "$want" ] || fail "empty transcript from the build tree"
got=$(cd / && "$P/bin/modelpool" transcribe "$f")
[ "$got" = "$want" ] || fail "installed modelpool: '$got' != '$want'"
got=$(LD_LIBRARY_PATH=$lib "$tmp/transcribe" "$P/share/modelpool/models/digits" "$f")
[ "$got" = "$want" ] || fail "installed example-transcribe: '$got' != '$want'"
got=$("$tmp/transcribe-static" "$P/share/modelpool/models/digits" "$f")
[ "$got" = "$want" ] || fail "static example-transcribe: '$got' != '$want'"
[ "$("$P/bin/modelpool" transcribe --beam 16 "$src/samples/phone-gsm.wav")" = "$(cat "$src/samples/phone-gsm.txt")" ] \
  || fail "installed modelpool --beam 16 does not give samples/phone-gsm.txt"
# example-live built against the prefix prints what the build tree's prints (examples.run checks that)
"$build/example-live" "$model" "$tmp/call.wav" > "$tmp/live-build.txt" || fail "build-tree example-live failed"
LD_LIBRARY_PATH=$lib "$tmp/live" "$P/share/modelpool/models/digits" "$tmp/call.wav" > "$tmp/live.txt" \
  || fail "installed example-live failed (status $?)"
cmp -s "$tmp/live.txt" "$tmp/live-build.txt" || fail "installed example-live: $(diff "$tmp/live-build.txt" "$tmp/live.txt" | head -5)"
nf=$(grep -c '^final: ' "$tmp/live.txt")  # one or two per spoken copy (examples.run checks them)
[ "$nf" -ge 8 ] && [ "$nf" -le 16 ] || fail "example-live: $nf finals for 8 spoken copies"

# MODELPOOL_MODEL overrides the installed model, --model overrides both
rc=0; MODELPOOL_MODEL=$tmp/nowhere "$P/bin/modelpool" transcribe "$src/samples/phone-gsm.wav" 2> "$tmp/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "$tmp/nowhere" "$tmp/err" || fail "MODELPOOL_MODEL ignored (status $rc): $(cat "$tmp/err")"
MODELPOOL_MODEL=$tmp/nowhere "$P/bin/modelpool" transcribe --model "$P/share/modelpool/models/digits" \
  "$src/samples/phone-gsm.wav" > /dev/null || fail "--model does not override MODELPOOL_MODEL"

# a moved tree still works: RUNPATH, model lookup and modelpool.pc are relative to where they are
mv "$P" "$tmp/moved"
got=$(cd / && "$tmp/moved/bin/modelpool" transcribe "$src/samples/phone-gsm.wav")
[ "$got" = "$("$build/modelpool" transcribe "$src/samples/phone-gsm.wav")" ] || fail "moved tree: '$got'"
export PKG_CONFIG_PATH=$tmp/moved${lib#"$P"}/pkgconfig
# shellcheck disable=SC2046
cc "${cflags[@]}" "$src/examples/transcribe.c" -o "$tmp/t2" $(pkg-config --cflags --libs modelpool) \
  || fail "examples/transcribe.c does not build against the moved tree"
got=$(LD_LIBRARY_PATH=$tmp/moved${lib#"$P"} "$tmp/t2" "$tmp/moved/share/modelpool/models/digits" "$src/samples/phone-gsm.wav")
[ "$got" = "$("$build/modelpool" transcribe "$src/samples/phone-gsm.wav")" ] || fail "moved tree example: '$got'"

# the man page renders without warnings and documents exit codes, files and the environment
man1=$tmp/moved/share/man/man1/modelpool.1
if command -v man >/dev/null; then
  MANWIDTH=80 man -l "$man1" 2> "$tmp/manerr" | col -b > "$tmp/man.txt"
else
  groff -man -Tutf8 "$man1" 2> "$tmp/manerr" | col -b > "$tmp/man.txt"
fi
[ ! -s "$tmp/manerr" ] || fail "man page warnings: $(cat "$tmp/manerr")"
for s in "modelpool - " "EXIT STATUS" MODELPOOL_MODEL share/modelpool/models/digits transcribe serve --drain-s; do
  grep -qF -- "$s" "$tmp/man.txt" || fail "man page lacks '$s'"
done
warn=$(groff -man -ww -z "$man1" 2>&1) || true
[ -z "$warn" ] || fail "groff warnings: $warn"
echo "install ok (prefix, pkg-config shared and static, examples, relocated tree, man page)"
