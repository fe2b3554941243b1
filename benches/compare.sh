#!/usr/bin/env bash
# sdexport performance suite: ours side by side with mtools, rsync, rclone and cp +
# sha256sum, each benchmark in the same run on the same machine, REPS repetitions, medians
# and ratios. Results and their reading: docs/PERFORMANCE.md.
#
#   benches/compare.sh            # full sizes (1 GiB, 300 photos, 16,000 files, 100,000 files, 3 GiB)
#   benches/compare.sh --quick    # about a quarter of the sizes, for a first look
#   REPS=5 ONLY="1 3" benches/compare.sh   # more repetitions, a subset of the benchmarks
#   DIR_REPS=3 ...                # repeat benchmark 4 into a directory too (slow: fsync per file)
#
# Needs: mkfs.fat, mcopy/mtype (mtools), rsync, rclone, sha256sum, dd, /usr/bin/time
# (Debian: dosfstools mtools rsync rclone time). Builds sdexport (release) into
# $CARGO_TARGET_DIR (default target-perf; SDEXPORT_BIN=path uses a given binary instead)
# and benches/hashbench (sha2 in memory).
# Work files go to $TMPDIR (default /tmp) and are removed at the end; the largest step
# needs about 2 × 3 GiB (full) of free space there.
#
# The benchmarks (numbers as in the performance issue):
#   1. one big file into a fresh 2 GiB FAT32 image: sdexport (verified) vs mcopy
#      (unverified) vs mcopy + sync + mtype | sha256sum (verified by hand), and the floor
#      of an honest verified copy: dd conv=fsync, then dd iflag=direct of the same bytes
#   2. a phone tree (DCIM/Camera, 0.5–8 MB random photos) into an image: sdexport vs
#      mcopy -s, vs mcopy -s + sync + per-file mtype | sha256sum, and the floor
#   3. the same tree into a directory card: sdexport vs rsync -a + sync + rsync -ac
#      --dry-run, rclone copy + rclone check --download, cp -r + sync + sha256sum both
#      sides, and the floor
#   4. 1,000 / 4,000 / 16,000 files with 28-character names in one folder, into an image
#      and into a directory (sdexport photos --all-files): times and the 16k / 1k factor
#   5. peak RSS (/usr/bin/time -v) for 100,000 small files and for one 3 GiB file, into images
#   6. hash throughput: sdexport's copy pipeline (a tmpfs card, so only CPU counts): a re-run
#      that finds the file already on the card (hashes the source and the card copy: two passes) and a
#      first run (copy + read back: two passes), vs sha256sum vs sha2 in memory
#
# Fairness: every verified-by-hand reference drops the host's cache of what it reads back
# (dd iflag=nocache count=0, per file, no root needed), as sdexport does; rsync -ac and
# rclone check do not (they read the copies from the page cache), as they would for a user.
# The source tree is read once before each benchmark so every tool starts with it cached.
# No timed assertion anywhere: this script only reports.
set -euo pipefail

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $a (try --help)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-perf}
export MTOOLS_SKIP_CHECK=1
REPS=${REPS:-3}
ONLY=${ONLY:-"1 2 3 4 5 6"}
# Benchmark 4 into a directory costs ~16 ms a file (two fsyncs each): one repetition by default.
DIR_REPS=${DIR_REPS:-1}
if [ "$QUICK" = 1 ]; then
  BIG_MIB=256; PHOTOS=80; DIRN="250 1000 4000"; SMALL_N=20000; HUGE_MIB=1024; HASH_MIB=512
else
  BIG_MIB=1024; PHOTOS=300; DIRN="1000 4000 16000"; SMALL_N=100000; HUGE_MIB=3072; HASH_MIB=1024
fi

for t in mkfs.fat mcopy mtype rsync rclone sha256sum dd; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "missing tool: $t" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }
MKFS=$(command -v mkfs.fat || echo /usr/sbin/mkfs.fat)

if [ -n "${SDEXPORT_BIN:-}" ]; then
  BIN=$SDEXPORT_BIN
else
  (cd "$ROOT" && cargo build --quiet --release --bin sdexport)
  BIN=$CARGO_TARGET_DIR/release/sdexport
fi
(cd "$ROOT/benches/hashbench" && CARGO_TARGET_DIR=$CARGO_TARGET_DIR/hashbench \
  cargo build --quiet --release --offline 2>/dev/null || CARGO_TARGET_DIR=$CARGO_TARGET_DIR/hashbench \
  cargo build --quiet --release)
HASHBENCH=$CARGO_TARGET_DIR/hashbench/release/hashbench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sdx-bench.XXXXXX")
SHM=""
cleanup() { rm -rf "$TMP"; [ -z "$SHM" ] || rm -rf "$SHM"; }
trap cleanup EXIT

echo "# sdexport performance suite — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
     "$(awk '/MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo),"\
     "sha_ni: $(grep -q -w sha_ni /proc/cpuinfo && echo yes || echo no)"
echo "work dir: $TMP on $(df --output=source "$TMP" | tail -1); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: $([ "$QUICK" = 1 ] && echo quick || echo full), $REPS repetitions, medians"

# ---------- helpers ----------
# now: seconds since the epoch with nanoseconds
now() { date +%s.%N; }
# timed NAME CMD...: run CMD (stdout discarded), append its wall time to $TMP/t.NAME
timed() {
  local name=$1; shift
  local s e; s=$(now); "$@" >/dev/null; e=$(now)
  echo "$e - $s" | bc -l | awk '{printf "%.3f\n", $1}' >> "$TMP/t.$name"
}
median() { sort -g "$TMP/t.$1" | awk '{a[NR]=$1} END{if (NR==0) print "nan"; else printf "%.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }'; }
reset_times() { rm -f "$TMP"/t.*; }
row() { printf "  %-58s %8s s  (runs: %s)\n" "$1" "$(median "$2")" "$(tr '\n' ' ' < "$TMP/t.$2" | sed 's/ $//')"; }
fresh_img() { rm -f "$1"; truncate -s "$2" "$1"; "$MKFS" -F 32 "$1" >/dev/null; }
# Drop the host's cache of files (clean pages only: callers sync first).
nocache() { local f; for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }
warm() { find "$1" -type f -print0 | xargs -0 cat > /dev/null; }
# Floor of a verified copy of the files under $1: write + fsync, then an O_DIRECT read.
floor() {
  rm -f "$TMP/floor.bin"
  find "$1" -type f -print0 | sort -z | xargs -0 cat | dd of="$TMP/floor.bin" bs=4M iflag=fullblock conv=fsync status=none
  dd if="$TMP/floor.bin" of=/dev/null bs=4M iflag=direct status=none
  rm -f "$TMP/floor.bin"
}
ours() { "$BIN" photos --no-progress --quiet "$@"; }
# Random files of 0.5–8 MB (70 % 0.5–1.5 MB, 25 % 1.5–3 MB, 5 % 3–8 MB: 1.5 MB on average,
# 300 photos ≈ 460 MB), deterministic sizes.
make_photos() {
  local dir=$1/DCIM/Camera n=$2
  mkdir -p "$dir"
  awk -v n="$n" 'BEGIN{srand(42); for (i=1;i<=n;i++) { r=rand();
      s = (r<0.7) ? 500000+rand()*1000000 : (r<0.95) ? 1500000+rand()*1500000 : 3000000+rand()*5000000;
      printf "IMG_20240601_%06d.jpg %d\n", i, s } }' |
  while read -r name size; do head -c "$size" /dev/urandom > "$dir/$name"; done
}
by_hand_tree_check() { # $1 image: per-file mtype | sha256sum, compared with the sources' sums
  local img=$1 src=$2
  (cd "$src" && find DCIM -type f | sort | while read -r f; do
     printf '%s  %s\n' "$(mtype -i "$img" "::/$f" | sha256sum | cut -d' ' -f1)" "$f"; done) > "$TMP/card.sums"
  cmp -s "$TMP/card.sums" "$TMP/src.sums"
}

declare -A RESULT
ONE() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------- 1. one big file into a fresh 2 GiB FAT32 image ----------
if ONE 1; then
  echo; echo "## 1. one ${BIG_MIB} MiB file into a fresh 2 GiB FAT32 image"
  reset_times
  mkdir -p "$TMP/b1/DCIM/Camera"; SRC=$TMP/b1/DCIM/Camera/VID_0001.mp4
  head -c "$((BIG_MIB << 20))" /dev/urandom > "$SRC"
  for i in $(seq "$REPS"); do
    warm "$TMP/b1"; timed floor floor "$TMP/b1"
    fresh_img "$TMP/a.img" 2G; sync; warm "$TMP/b1"
    timed ours ours --to "$TMP/a.img" "$TMP/b1"
    cmp -s "$SRC" <(mtype -i "$TMP/a.img" ::/DCIM/Camera/VID_0001.mp4) || echo "  ERROR: our copy differs"
    fresh_img "$TMP/a.img" 2G; sync
    timed mcopy mcopy -i "$TMP/a.img" "$SRC" ::/big.bin
    fresh_img "$TMP/a.img" 2G; sync
    by_hand_big() {
      sha256sum "$SRC" > "$TMP/src.sum" &
      mcopy -i "$TMP/a.img" "$SRC" ::/big.bin; sync; nocache "$TMP/a.img"
      local got; got=$(mtype -i "$TMP/a.img" ::/big.bin | sha256sum | cut -d' ' -f1); wait
      [ "$got" = "$(cut -d' ' -f1 "$TMP/src.sum")" ] || echo "  ERROR: by-hand copy differs"
    }
    timed byhand by_hand_big
    rm -f "$TMP/a.img"
  done
  row "floor: dd conv=fsync + dd iflag=direct" floor
  row "sdexport photos (write, flush, read back, compare)" ours
  row "mcopy (unverified)" mcopy
  row "mcopy + sync + mtype | sha256sum (by hand; sha256sum src alongside)" byhand
  O=$(median ours)
  echo "  ratios: ours/floor $(ratio "$O" "$(median floor)")  ours/by-hand $(ratio "$O" "$(median byhand)")  ours/mcopy $(ratio "$O" "$(median mcopy)")"
  rm -rf "$TMP/b1"
fi

# ---------- 2 + 3. a phone tree into an image, and into a directory ----------
if ONE 2 || ONE 3; then
  PH=$TMP/phone
  make_photos "$PH" "$PHOTOS"
  TOTAL_MB=$(du -sb "$PH" | awk '{printf "%.0f", $1/1e6}')
  (cd "$PH" && find DCIM -type f | sort | xargs sha256sum) > "$TMP/src.sums"
fi
if ONE 2; then
  echo; echo "## 2. a phone tree of $PHOTOS photos ($TOTAL_MB MB) into a fresh 2 GiB FAT32 image"
  reset_times
  for i in $(seq "$REPS"); do
    warm "$PH"; timed floor floor "$PH"
    fresh_img "$TMP/a.img" 2G; sync; warm "$PH"
    timed ours ours --to "$TMP/a.img" "$PH"
    fresh_img "$TMP/a.img" 2G; sync; warm "$PH"
    timed mcopy mcopy -s -i "$TMP/a.img" "$PH/DCIM" ::/
    fresh_img "$TMP/a.img" 2G; sync; warm "$PH"
    by_hand_tree() {
      (cd "$PH" && find DCIM -type f | sort | xargs sha256sum) > "$TMP/src.sums.now" &
      mcopy -s -i "$TMP/a.img" "$PH/DCIM" ::/; sync; nocache "$TMP/a.img"
      by_hand_tree_check "$TMP/a.img" "$PH" || echo "  ERROR: by-hand tree copy differs"
      wait
    }
    timed byhand by_hand_tree
    rm -f "$TMP/a.img"
  done
  row "floor: dd conv=fsync + dd iflag=direct" floor
  row "sdexport photos" ours
  row "mcopy -s (unverified)" mcopy
  row "mcopy -s + sync + mtype | sha256sum per file (by hand)" byhand
  O=$(median ours)
  echo "  ratios: ours/floor $(ratio "$O" "$(median floor)")  ours/by-hand $(ratio "$O" "$(median byhand)")  ours/mcopy-s $(ratio "$O" "$(median mcopy)")"
fi
if ONE 3; then
  echo; echo "## 3. the same tree ($PHOTOS photos, $TOTAL_MB MB) into a directory card ($(df --output=fstype "$TMP" | tail -1))"
  reset_times
  C=$TMP/card
  for i in $(seq "$REPS"); do
    warm "$PH"; timed floor floor "$PH"
    rm -rf "$C"; mkdir "$C"; sync; warm "$PH"
    timed ours ours --to "$C" "$PH"
    rm -rf "$C"; mkdir "$C"; sync; warm "$PH"
    rsync_v() { rsync -a "$PH/DCIM" "$C/"; sync; [ -z "$(rsync -ac --dry-run --itemize-changes "$PH/DCIM" "$C/")" ] || echo "  ERROR: rsync check"; }
    timed rsync rsync_v
    rm -rf "$C"; mkdir "$C"; sync; warm "$PH"
    rclone_v() { rclone copy "$PH/DCIM" "$C/DCIM" 2>/dev/null; rclone check --download "$PH/DCIM" "$C/DCIM" 2>/dev/null; }
    timed rclone rclone_v
    rm -rf "$C"; mkdir "$C"; sync; warm "$PH"
    cp_v() {
      cp -r "$PH/DCIM" "$C/"; sync
      (cd "$C" && find DCIM -type f -print0 | xargs -0 -n 64 sh -c 'for f; do dd if="$f" iflag=nocache count=0 status=none; done' _)
      (cd "$C" && find DCIM -type f | sort | xargs sha256sum) > "$TMP/card.sums"
      (cd "$PH" && find DCIM -type f | sort | xargs sha256sum) > "$TMP/src.sums.now"
      cmp -s "$TMP/card.sums" "$TMP/src.sums.now" || echo "  ERROR: cp check"
    }
    timed cp cp_v
  done
  rm -rf "$C"
  row "floor: dd conv=fsync + dd iflag=direct" floor
  row "sdexport photos" ours
  row "rsync -a + sync + rsync -ac --dry-run" rsync
  row "rclone copy + rclone check --download" rclone
  row "cp -r + sync + sha256sum both sides (card uncached)" cp
  O=$(median ours); R=$(median rsync); RC=$(median rclone)
  FAST=$(awk -v a="$R" -v b="$RC" 'BEGIN{print (a<b)?a:b}')
  echo "  ratios: ours/floor $(ratio "$O" "$(median floor)")  ours/fastest(rsync,rclone) $(ratio "$O" "$FAST")  ours/cp+sha256sum $(ratio "$O" "$(median cp)")"
fi
[ -z "${PH:-}" ] || rm -rf "$PH"

# ---------- 4. directory scaling ----------
# Files of 1 KiB with 28-character names ("f" + 23 digits + ".jpg") in one folder.
make_flat() {
  mkdir -p "$1/DCIM/flat"
  python3 - "$1/DCIM/flat" "$2" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%023d.jpg" % i), "wb") as f:
        f.write(os.urandom(1024))
EOF
}
if ONE 4; then
  echo; echo "## 4. files with 28-character names in one folder (1 KiB each), sdexport photos --all-files ($REPS runs into an image, $DIR_REPS into a directory)"
  reset_times
  for n in $DIRN; do
    rm -rf "$TMP/flat"; make_flat "$TMP/flat" "$n"
    for i in $(seq "$REPS"); do
      fresh_img "$TMP/a.img" 2G; sync
      timed "img$n" ours --all-files --to "$TMP/a.img" "$TMP/flat"
      if [ "$i" -le "$DIR_REPS" ]; then
        rm -rf "$TMP/card"; mkdir "$TMP/card"; sync
        timed "dir$n" ours --all-files --to "$TMP/card" "$TMP/flat"
      fi
    done
    printf "  %6d files: image %6s s, directory %6s s\n" "$n" "$(median "img$n")" "$(median "dir$n")"
  done
  rm -rf "$TMP/flat" "$TMP/card" "$TMP/a.img"
  set -- $DIRN; LO=$1; HI=${3:-$1}
  echo "  factor $HI / $LO files (linear = $((HI / LO))): image $(ratio "$(median "img$HI")" "$(median "img$LO")"), directory $(ratio "$(median "dir$HI")" "$(median "dir$LO")")"
fi

# ---------- 5. memory ----------
peak_rss() { # CMD...: prints "seconds max_rss_MiB"
  /usr/bin/time -v -o "$TMP/time.txt" "$@" >/dev/null
  awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; e=s}
              /Maximum resident set size/{r=$2} END{printf "%.1f s, peak RSS %.1f MiB\n", e, r/1024}' "$TMP/time.txt"
}
if ONE 5; then
  echo; echo "## 5. peak RSS"
  mkdir -p "$TMP/many"
  python3 - "$TMP/many/DCIM" "$SMALL_N" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "%03d" % (i // 5000))
    if i % 5000 == 0:
        os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "IMG_%06d.jpg" % i), "wb") as f:
        f.write(os.urandom(512))
EOF
  fresh_img "$TMP/a.img" 4G
  echo "  $SMALL_N files of 512 B into a 4 GiB image:     $(peak_rss "$BIN" photos --no-progress -q --all-files --to "$TMP/a.img" "$TMP/many")"
  # Not into a directory: at ~16 ms of fsyncs per file (benchmark 4) it would take half an hour.
  rm -rf "$TMP/many" "$TMP/card" "$TMP/a.img"
  mkdir -p "$TMP/huge/DCIM/Camera"
  head -c "$((HUGE_MIB << 20))" /dev/urandom > "$TMP/huge/DCIM/Camera/VID_0001.mp4"
  fresh_img "$TMP/a.img" 4G
  echo "  one $HUGE_MIB MiB file into a 4 GiB image:      $(peak_rss "$BIN" photos --no-progress -q --to "$TMP/a.img" "$TMP/huge")"
  rm -f "$TMP/a.img"
  rm -rf "$TMP/huge"
fi

# ---------- 6. hash throughput ----------
if ONE 6; then
  echo; echo "## 6. SHA-256 throughput (${HASH_MIB} MiB, cached source, tmpfs card: CPU only)"
  reset_times
  SHM=$(mktemp -d /dev/shm/sdx-bench.XXXXXX)
  mkdir -p "$SHM/phone/DCIM/Camera"
  head -c "$((HASH_MIB << 20))" /dev/urandom > "$SHM/phone/DCIM/Camera/VID_0001.mp4"
  for i in $(seq "$REPS"); do
    rm -rf "$SHM/card"; mkdir "$SHM/card"
    timed ours ours --to "$SHM/card" "$SHM/phone"
    # The same run again: the file is already on the card (same name and size), so the run
    # hashes the source and the card's copy (it never trusts the manifest alone): two passes
    # of the pipeline's hashing, no copy.
    timed rerun ours --to "$SHM/card" "$SHM/phone"
    timed sha256sum sha256sum "$SHM/phone/DCIM/Camera/VID_0001.mp4"
  done
  SHA2=$("$HASHBENCH" "$HASH_MIB" "$REPS")
  B=$((HASH_MIB << 20))
  # ours hashes every byte twice (while copying, and when reading back) and also copies it
  OURS_R=$(awk -v b="$B" -v t="$(median ours)" 'BEGIN{printf "%.3f", 2*b/t/1e9}')
  SUM_R=$(awk -v b="$B" -v t="$(median sha256sum)" 'BEGIN{printf "%.3f", b/t/1e9}')
  printf "  %-58s %s GB/s\n" "sha2 in memory (hashbench, median of $REPS)" "$SHA2"
  printf "  %-58s %s GB/s  (%s s)\n" "sha256sum of the cached file" "$SUM_R" "$(median sha256sum)"
  RERUN_R=$(awk -v b="$B" -v t="$(median rerun)" 'BEGIN{printf "%.3f", 2*b/t/1e9}')
  printf "  %-58s %s GB/s  (%s s)\n" "sdexport re-run, already on card: 2 x bytes hashed / wall time" "$RERUN_R" "$(median rerun)"
  printf "  %-58s %s GB/s  (%s s for copy + read back)\n" "sdexport photos to tmpfs: 2 x bytes hashed / wall time" "$OURS_R" "$(median ours)"
  echo "  ratios: re-run/sha2-in-memory $(ratio "$RERUN_R" "$SHA2")  re-run/sha256sum $(ratio "$RERUN_R" "$SUM_R")  copy+read-back/sha2-in-memory $(ratio "$OURS_R" "$SHA2")"
  rm -rf "$SHM"; SHM=""
fi
echo; echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
