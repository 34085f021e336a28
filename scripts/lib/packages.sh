# shellcheck shell=bash
# The Debian packages the project needs, and how to tell whether each one is
# installed.  Sourced by scripts/services.sh (which installs what is missing)
# and by scripts/tests/doctor-packages.sh (which tests the check).
#
# "Installed" is dpkg's word, never a guess from the file system: a glob such
# as /usr/lib/x86_64-linux-gnu/libclang*.so* also matches libclang-cpp.so.14
# (package libclang-cpp14, pulled in by other LLVM packages), which is not the
# libclang.so that bindgen (whisper-rs-sys) loads; that is package
# libclang-dev.  Whether the installed tools actually work is
# scripts/doctor.sh's job.

# Needed at run time, for the tests and to build (cmake and libclang-dev for
# whisper-rs-sys; espeak-ng and sox to make the fixture videos; openssl for
# the TLS tests' throwaway certificate authority; fonts-noto-cjk for captions
# burned into clips, Mandarin included; chromium and chromium-driver for the
# dashboard's browser tests).  The one list.
PACKAGES=(mariadb-server redis-server ffmpeg cmake libclang-dev espeak-ng sox openssl fonts-noto-cjk chromium chromium-driver systemd)

# package_installed PKG: true if dpkg has PKG installed ("install ok
# installed"; "hold ok installed" is installed too, just pinned).  A package
# dpkg has never heard of makes dpkg-query fail, which counts as not
# installed, as do "unknown ok not-installed", "deinstall ok config-files"
# and half-installed or half-configured states.
package_installed() {
  local status
  # shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not bash's
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  case "$status" in
    "install ok installed" | "hold ok installed") return 0 ;;
    *) return 1 ;;
  esac
}

# missing_packages: the packages of PACKAGES that are not installed, one a
# line, in list order; nothing if all are.
missing_packages() {
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    package_installed "$pkg" || printf '%s\n' "$pkg"
  done
}
