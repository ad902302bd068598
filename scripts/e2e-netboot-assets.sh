#!/usr/bin/env bash
# Fetch what test/e2e/qemu.test.ts boots: a small Debian kernel and a static busybox (for the
# initramfs the test builds). Debian packages are downloaded and unpacked, never installed.
#
#   scripts/e2e-netboot-assets.sh [CACHE_DIR]     default: ${TMPDIR:-/tmp}/bootserve-e2e
#
# Leaves CACHE_DIR/vmlinuz and CACHE_DIR/busybox (and CACHE_DIR/VERSIONS). Idempotent: does
# nothing when both are there. Needs apt-get (after `apt-get update`) and dpkg-deb.
# The test reads the same directory from BOOTSERVE_E2E_ASSETS.
set -euo pipefail

dir="${1:-${TMPDIR:-/tmp}/bootserve-e2e}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

if [[ -s "$dir/vmlinuz" && -s "$dir/busybox" ]]; then
  echo "e2e-netboot-assets: already in $dir"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb tar; do
  command -v "$tool" >/dev/null || { echo "e2e-netboot-assets: $tool not found (a Debian system is needed)" >&2; exit 1; }
done

# The cloud flavour is the smallest amd64 kernel (no hardware drivers to probe) and boots
# under QEMU's software emulation in a few seconds, with the serial console built in.
# Ask the meta-package which versioned image it stands for today.
kernel_pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
if [[ -z "$kernel_pkg" ]]; then
  echo "e2e-netboot-assets: cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2
  exit 1
fi

work="$(mktemp -d "$dir/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
# Downloading as root into a folder _apt cannot write to: skip apt's sandbox user.
apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg" busybox-static

mkdir x
dpkg-deb --fsys-tarfile ./linux-image-*.deb | tar -x -C x --wildcards './boot/vmlinuz-*'
dpkg-deb --fsys-tarfile ./busybox-static_*.deb | tar -x -C x ./bin/busybox

# Move into place last, busybox before vmlinuz, so a half-done run is never taken as done.
install -m 0755 x/bin/busybox "$dir/busybox.tmp" && mv "$dir/busybox.tmp" "$dir/busybox"
install -m 0644 x/boot/vmlinuz-* "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
{
  echo "kernel: $kernel_pkg ($(basename x/boot/vmlinuz-*))"
  echo "busybox: $(basename ./busybox-static_*.deb)"
} >"$dir/VERSIONS"
echo "e2e-netboot-assets: $(tr '\n' ' ' <"$dir/VERSIONS")-> $dir"
