#!/usr/bin/env bash
# Build PostgreSQL's own regression test suite (src/test/regress: pg_regress, regress.so,
# refint.so, autoinc.so and the test files) from the Debian source package of the installed
# server, so that test/integration/regression.test.ts can run `installcheck-parallel` against
# the suite's cluster and back up the `regression` database it leaves behind.
#
#   test/support/regress-build.sh            # prints the built src/test/regress folder on stdout
#
# Idempotent and cached outside the repository: ${PGBACKUP_REGRESS_CACHE:-$HOME/.cache/pgbackup-regress}.
# A second run with the same installed server version does nothing but print the folder.
# Everything else (progress, timings, errors) goes to stderr. Any failure exits non-zero with
# a message saying what failed: the suite must never skip this test silently.
#
# Needs root on Debian/Ubuntu for the first run (it adds a deb-src entry, runs apt-get update
# and installs the build dependencies), unless those are already in place.
#
# Environment:
#   PGBACKUP_REGRESS_CACHE   cache folder (default $HOME/.cache/pgbackup-regress)
#   PGBACKUP_REGRESS_PACKAGE the server's Debian package (default: the newest installed postgresql-NN)
set -euo pipefail

log() { printf 'regress-build: %s\n' "$*" >&2; }
die() {
  printf 'regress-build: ERROR: %s\n' "$*" >&2
  exit 1
}
t_start=$SECONDS
step_start=$SECONDS
step() {
  step_start=$SECONDS
  log "$*"
}
step_done() { log "  done in $((SECONDS - step_start))s"; }

cache="${PGBACKUP_REGRESS_CACHE:-$HOME/.cache/pgbackup-regress}"

command -v dpkg-query >/dev/null || die "dpkg-query not found: this script builds from Debian's source package and needs a Debian-based system"

# Which server: the newest installed postgresql-NN package.
pkg="${PGBACKUP_REGRESS_PACKAGE:-}"
if [ -z "$pkg" ]; then
  pkg="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'postgresql-[0-9]*' 2>/dev/null |
    awk '$1 == "ii" && $2 ~ /^postgresql-[0-9]+$/ { print $2 }' | sort -t- -k2,2n | tail -n1 || true)"
fi
[ -n "$pkg" ] || die "no postgresql-NN server package is installed (install e.g. postgresql-15 first)"
version="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)"
[ -n "$version" ] || die "package $pkg is not installed"
major="${pkg#postgresql-}"
log "server package $pkg $version (major $major)"

safe_version="$(printf '%s' "$version" | tr -c 'A-Za-z0-9.+-' '_')"
work="$cache/$pkg-$safe_version"
stamp="$work/.built"
link="$cache/regress"

if [ -f "$stamp" ]; then
  regress_dir="$(cat "$stamp")"
  if [ -x "$regress_dir/pg_regress" ] && [ -f "$regress_dir/regress.so" ]; then
    ln -sfn "$regress_dir" "$link"
    log "cached: $regress_dir"
    printf '%s\n' "$regress_dir"
    exit 0
  fi
  log "stale cache stamp (built files missing): rebuilding"
  rm -f "$stamp"
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    die "need root to run: $* (run this script as root once, or install the build dependencies and a deb-src entry by hand)"
  fi
}
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# 1. A deb-src entry for each Debian (or Ubuntu) deb entry, if there is none yet.
have_deb_src() {
  grep -qsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null && return 0
  grep -qsiE '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources 2>/dev/null && return 0
  return 1
}
step "1/5 apt sources"
src_added=0
if have_deb_src; then
  log "  a deb-src entry exists"
else
  out=/etc/apt/sources.list.d/pgbackup-deb-src.sources
  tmpf="$(mktemp)"
  # deb822 files: copy every stanza whose Types has "deb", as "Types: deb-src".
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() { if (isdeb && text != "") printf "%s\n", text; text = ""; isdeb = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" {
        for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1
        text = text "Types: deb-src\n"; next
      }
      { text = text $0 "\n" }
      END { flush() }
    ' "$f" >>"$tmpf"
  done
  # One-line files: "deb URI suite comps" -> "deb-src ...".
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    lines="$(sed -nE 's/^[[:space:]]*deb([[:space:]]+)/deb-src\1/p' "$f")"
    if [ -n "$lines" ]; then printf '%s\n' "$lines" >>"$tmpf.list"; fi
  done
  [ -s "$tmpf" ] || [ -s "$tmpf.list" ] || die "found no deb entry in /etc/apt/sources.list* to derive a deb-src entry from"
  if [ -s "$tmpf" ]; then
    as_root install -m 0644 "$tmpf" "$out"
    log "  added $out:"
    sed 's/^/    /' "$out" >&2
  fi
  if [ -s "$tmpf.list" ]; then
    as_root install -m 0644 "$tmpf.list" /etc/apt/sources.list.d/pgbackup-deb-src.list
    log "  added /etc/apt/sources.list.d/pgbackup-deb-src.list"
  fi
  rm -f "$tmpf" "$tmpf.list"
  src_added=1
fi
step_done

# 2. apt-get update (only when the source index for this package is not known yet), build deps.
step "2/5 apt-get update and build dependencies"
src_known() { apt-cache showsrc "$pkg" 2>/dev/null | grep -q "^Version: $(printf '%s' "$version" | sed 's/[.+]/\\&/g')\$"; }
if [ "$src_added" = 1 ] || ! src_known; then
  log "  apt-get update"
  as_root apt-get "${apt_opts[@]}" update -qq || die "apt-get update failed"
fi
# configure runs with --without-icu --without-readline --without-zlib: the regression suite's
# C parts (pg_regress, regress.so, refint.so, autoinc.so) need no more than a compiler, make
# and perl; dpkg-dev unpacks the source package. The release tarball ships the bison/flex
# output, so neither is needed.
deps=(build-essential dpkg-dev perl)
missing=()
for d in "${deps[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$d" 2>/dev/null | grep -q '^ii' || missing+=("$d")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "  installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "could not install ${missing[*]}"
else
  log "  build dependencies present"
fi
step_done

# 3. The source package of exactly the installed version (the expected outputs and regress.so
#    must match the running server). If the archive no longer has it, take the newest source
#    of the same major and say so loudly: regress.so only needs the same major, and a few
#    expected outputs may then differ, which the test tolerates (it needs the database, not a
#    clean regression run).
step "3/5 apt-get source $pkg=$version"
mkdir -p "$work"
srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" 2>/dev/null | head -n1 || true)"
if [ -n "$srcdir" ] && [ -f "$srcdir/configure" ] && [ -f "$work/.unpacked" ]; then
  log "  already unpacked: $srcdir"
else
  rm -rf "${work:?}"/* "$work"/.unpacked
  if ! (cd "$work" && apt-get "${apt_opts[@]}" source -qq "$pkg=$version" >&2); then
    log "  WARNING: the source of $pkg=$version is not available; trying the newest $pkg source instead"
    rm -rf "${work:?}"/*
    (cd "$work" && apt-get "${apt_opts[@]}" source -qq "$pkg" >&2) ||
      die "apt-get source $pkg failed (is there a deb-src entry and did apt-get update succeed?)"
  fi
  srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" | head -n1 || true)"
  [ -n "$srcdir" ] && [ -f "$srcdir/configure" ] || die "apt-get source left no unpacked tree with a configure script in $work"
  touch "$work/.unpacked"
fi
src_major="$(sed -nE "s/^PACKAGE_VERSION='([0-9]+)[^']*'/\1/p" "$srcdir/configure")"
[ "$src_major" = "$major" ] || die "source tree $srcdir is PostgreSQL $src_major, the server is $major"
step_done

# 4. configure (same major, minimal features; the server's own features come from the server).
step "4/5 configure"
if [ -f "$srcdir/config.status" ] && [ -f "$srcdir/src/Makefile.global" ]; then
  log "  already configured"
else
  (cd "$srcdir" && ./configure --without-icu --without-readline --without-zlib >"$work/configure.log" 2>&1) ||
    {
      tail -n 30 "$work/configure.log" >&2
      die "configure failed (full log: $work/configure.log)"
    }
fi
step_done

# 5. make -C src/test/regress: pg_regress, regress.so and contrib/spi's refint.so / autoinc.so.
step "5/5 make -C src/test/regress"
jobs="$(nproc 2>/dev/null || echo 2)"
(cd "$srcdir" && make -s -j"$jobs" -C src/test/regress >"$work/make.log" 2>&1) ||
  {
    tail -n 40 "$work/make.log" >&2
    die "make -C src/test/regress failed (full log: $work/make.log)"
  }
regress_dir="$srcdir/src/test/regress"
for f in pg_regress regress.so refint.so autoinc.so parallel_schedule; do
  [ -e "$regress_dir/$f" ] || die "build finished but $regress_dir/$f is missing"
done
step_done

printf '%s\n' "$regress_dir" >"$stamp"
ln -sfn "$regress_dir" "$link"
log "built $regress_dir in $((SECONDS - t_start))s"
printf '%s\n' "$regress_dir"
