#!/usr/bin/env bash
# Compare the sdexport FAT engine with mtools (and fatfs 0.3.6) on the cases of the FAT
# engine issue. Run from anywhere; needs mkfs.fat, mcopy, fsck.fat; /usr/bin/time optional.
#   1. a 1 GiB file into a fresh 2 GiB FAT32 image (mkfs.fat): ours vs mcopy, 3 runs, median
#   2. 1,000 / 4,000 / 16,000 files with 28-character names in one directory
#   3. peak RSS of ours (via /usr/bin/time -v when present)
# fatfs 0.3.6 on 1,000 and 2,000 files takes minutes (it is quadratic); FATFS_COUNTS=""
# skips it, REPS and BIG_MIB shrink the big-file case.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-fat}
export MTOOLS_SKIP_CHECK=1
REPS=${REPS:-3}
BIG_MIB=${BIG_MIB:-1024}
(cd "$ROOT" && cargo build --quiet --release -p sdexport-fat --example fatbench)
BIN=$CARGO_TARGET_DIR/release/examples/fatbench
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fatbench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
MKFS=$(command -v mkfs.fat || echo /usr/sbin/mkfs.fat)
FSCK=$(command -v fsck.fat || echo /usr/sbin/fsck.fat)
TIMEV=""
[ -x /usr/bin/time ] && TIMEV=/usr/bin/time

fresh() { rm -f "$1"; truncate -s 2G "$1"; "$MKFS" -F 32 "$1" >/dev/null; }
# run CMD...: prints "wall_seconds max_rss_kib inner_seconds" (rss "-" without /usr/bin/time;
# inner = the `seconds=` fatbench prints, with ms precision, else the wall time)
run() {
  local s e r=- inner
  s=$(date +%s.%N)
  if [ -n "$TIMEV" ]; then
    "$TIMEV" -v -o "$TMP/time.txt" "$@" > "$TMP/out.txt"
    r=$(awk -F': ' '/Maximum resident set size/{print $2}' "$TMP/time.txt")
  else
    "$@" > "$TMP/out.txt"
  fi
  e=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}')
  inner=$(sed -n 's/^seconds=//p' "$TMP/out.txt"); inner=${inner:-$e}
  echo "$e $r $inner"
}
fsck_ok() { "$FSCK" -n "$1" >/dev/null 2>&1 && echo clean || echo "NOT CLEAN"; }
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "## 1. ${BIG_MIB} MiB file into a fresh 2 GiB FAT32 image (mkfs.fat), $REPS runs"
head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom > "$TMP/src.bin"
: > "$TMP/ours.txt"; : > "$TMP/mcopy.txt"; RSS_BIG=-
for i in $(seq "$REPS"); do
  fresh "$TMP/a.img"; cp --sparse=always "$TMP/a.img" "$TMP/b.img"; sync
  read -r e r _ < <(run "$BIN" write-big "$TMP/a.img" "$TMP/src.bin"); echo "$e" >> "$TMP/ours.txt"; RSS_BIG=$r
  read -r e2 _ _ < <(run mcopy -i "$TMP/b.img" "$TMP/src.bin" ::/big.bin); echo "$e2" >> "$TMP/mcopy.txt"
  printf "run %d: ours %ss (fsck %s)  mcopy %ss (fsck %s)\n" "$i" "$e" "$(fsck_ok "$TMP/a.img")" "$e2" "$(fsck_ok "$TMP/b.img")"
  cmp -s "$TMP/src.bin" <(mcopy -n -i "$TMP/a.img" ::/big.bin -) || echo "  ERROR: mcopy reads different bytes from our image"
done
OURS=$(median < "$TMP/ours.txt"); MC=$(median < "$TMP/mcopy.txt")
rm -f "$TMP/src.bin" "$TMP/a.img" "$TMP/b.img"

echo
echo "## 2. files with 28-character names in one directory (100 bytes each; open to flush; best of $REPS)"
best() { sort -g | head -1; }
declare -A DIRT DIRR RNT MEMT
for n in 1000 4000 16000; do
  : > "$TMP/t.txt"
  for i in $(seq "$REPS"); do
    fresh "$TMP/d.img"
    read -r _ r e < <(run "$BIN" dir "$TMP/d.img" "$n"); echo "$e" >> "$TMP/t.txt"; DIRR[$n]=$r
  done
  DIRT[$n]=$(best < "$TMP/t.txt")
  printf "ours %6d files: %ss (fsck %s)\n" "$n" "${DIRT[$n]}" "$(fsck_ok "$TMP/d.img")"
done
for n in 1000 16000; do
  : > "$TMP/t.txt"
  for i in $(seq "$REPS"); do
    fresh "$TMP/d.img"
    read -r _ _ e < <(run "$BIN" dir-rename "$TMP/d.img" "$n"); echo "$e" >> "$TMP/t.txt"
  done
  RNT[$n]=$(best < "$TMP/t.txt")
  printf "ours %6d files, temp name + rename: %ss (fsck %s)\n" "$n" "${RNT[$n]}" "$(fsck_ok "$TMP/d.img")"
done
# The engine alone: the same on an in-memory copy of a 512 MiB image (no OS page cache).
rm -f "$TMP/m.img"; truncate -s 512M "$TMP/m.img"; "$MKFS" -F 32 "$TMP/m.img" >/dev/null
for n in 1000 16000; do
  : > "$TMP/t.txt"
  for i in $(seq "$REPS"); do
    read -r _ _ e < <(run "$BIN" dir-mem "$TMP/m.img" "$n"); echo "$e" >> "$TMP/t.txt"
  done
  MEMT[$n]=$(best < "$TMP/t.txt")
  printf "ours %6d files, in memory: %ss\n" "$n" "${MEMT[$n]}"
done
rm -f "$TMP/m.img"
declare -A FFT FFC
FATFS_COUNTS=${FATFS_COUNTS-1000 2000}
for n in $FATFS_COUNTS; do
  fresh "$TMP/f.img"
  read -r _ _ e < <(run "$BIN" fatfs-dir "$TMP/f.img" "$n"); FFT[$n]=$e
  FFC[$n]=$(fsck_ok "$TMP/f.img")
  printf "fatfs 0.3.6 %5d files: %ss (fsck %s)\n" "$n" "$e" "${FFC[$n]}"
done
rm -f "$TMP/d.img" "$TMP/f.img"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
echo
echo "| case | ours | reference | ratio | target |"
echo "|---|---|---|---|---|"
echo "| ${BIG_MIB} MiB into 2 GiB FAT32 (median of $REPS) | ${OURS} s | mcopy ${MC} s | $(ratio "$OURS" "$MC") | ≤ 1 |"
echo "| 1,000 files, one dir | ${DIRT[1000]} s | | | |"
echo "| 4,000 files, one dir | ${DIRT[4000]} s | | $(ratio "${DIRT[4000]}" "${DIRT[1000]}") × 1k | |"
echo "| 16,000 files, one dir | ${DIRT[16000]} s | | $(ratio "${DIRT[16000]}" "${DIRT[1000]}") × 1k | ≤ 20 × 1k |"
echo "| 1,000 / 16,000 files, temp name + rename | ${RNT[1000]} s / ${RNT[16000]} s | | $(ratio "${RNT[16000]}" "${RNT[1000]}") × 1k | ≤ 20 × 1k |"
echo "| 1,000 / 16,000 files, in memory (engine only) | ${MEMT[1000]} s / ${MEMT[16000]} s | | $(ratio "${MEMT[16000]}" "${MEMT[1000]}") × 1k | ≤ 20 × 1k |"
for n in $FATFS_COUNTS; do
  echo "| fatfs 0.3.6, $n files | | ${FFT[$n]} s (fsck: ${FFC[$n]}) | | |"
done
echo "| peak RSS, ${BIG_MIB} MiB write | ${RSS_BIG} KiB | | | < 65536 KiB |"
echo "| peak RSS, 16,000 files | ${DIRR[16000]} KiB | | | < 65536 KiB |"
