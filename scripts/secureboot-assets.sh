#!/usr/bin/env bash
# Fetch the Secure Boot chain test/e2e/secureboot.test.ts boots, from Debian 13 (trixie), on any
# Debian machine: the Microsoft-signed shim, the Debian-signed GRUB (network image) and a
# Debian-signed kernel, for amd64 and arm64, plus a static busybox of each architecture for the
# guest's initramfs. Packages are downloaded and unpacked (`dpkg -x`), never installed.
#
#   scripts/secureboot-assets.sh [CACHE_DIR]
#       default: ${XDG_CACHE_HOME:-$HOME/.cache}/bootserve-ci/secureboot
#
# Leaves:
#   CACHE_DIR/root/          a tree laid out like / (usr/lib/shim/shimx64.efi.signed,
#                            usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed, the arm64
#                            twins, boot/vmlinuz-*): what `bootserve --secure-boot-dir` reads
#   CACHE_DIR/vmlinuz-amd64, vmlinuz-arm64, busybox-amd64, busybox-arm64   (stable names)
#   CACHE_DIR/VERSIONS       the packages, one a line
#
# The machine's own apt sources are untouched: apt runs with a private configuration (its own
# sources list naming trixie and the archive keyring, its own lists, cache and state folders
# under CACHE_DIR/apt). Idempotent: does nothing when CACHE_DIR/VERSIONS is there and every file
# it names is; delete CACHE_DIR to fetch anew. Needs apt-get, dpkg and debian-archive-keyring.
set -euo pipefail

dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/bootserve-ci/secureboot}"
mirror="${BOOTSERVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

wanted=(vmlinuz-amd64 vmlinuz-arm64 busybox-amd64 busybox-arm64
  root/usr/lib/shim/shimx64.efi.signed root/usr/lib/shim/shimaa64.efi.signed
  root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed root/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed)
complete() {
  [[ -s "$dir/VERSIONS" ]] || return 1
  for f in "${wanted[@]}"; do [[ -s "$dir/$f" ]] || return 1; done
}
if complete; then
  echo "secureboot-assets: already in $dir"
  exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "secureboot-assets: $tool not found (a Debian system is needed)" >&2; exit 1; }
done
[[ -r "$keyring" ]] || { echo "secureboot-assets: $keyring not found (apt-get install debian-archive-keyring)" >&2; exit 1; }

# The private apt: everything it reads or writes lives under $dir/apt.
apt_dir="$dir/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/state" "$apt_dir/etc/preferences.d"
echo "deb [signed-by=$keyring] $mirror trixie main" >"$apt_dir/etc/sources.list"
: >"$apt_dir/state/status"
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list"
  -o "Dir::Etc::sourceparts=/dev/null"
  -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
  -o "Dir::State=$apt_dir/state"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::State::status=$apt_dir/state/status"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64"
  # Downloading as root into folders _apt cannot write to: skip apt's sandbox user.
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
  -q
)
papt() { apt-get "${apt_opts[@]}" "$@"; }

papt update >/dev/null

# The cloud flavour is the smallest kernel (no hardware drivers) and is signed like the others;
# ask the meta-package which versioned image it stands for today.
kernel_of() {
  apt-cache "${apt_opts[@]}" depends "linux-image-cloud-$1:$1" 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }'
}
kernel_amd64="$(kernel_of amd64)"
kernel_arm64="$(kernel_of arm64)"
if [[ -z "$kernel_amd64" || -z "$kernel_arm64" ]]; then
  echo "secureboot-assets: cannot resolve linux-image-cloud-amd64/arm64 in trixie" >&2
  exit 1
fi

packages=(shim-signed:amd64 shim-signed:arm64 grub-efi-amd64-signed:amd64 grub-efi-arm64-signed:arm64
  "$kernel_amd64:amd64" "$kernel_arm64:arm64" busybox-static:amd64 busybox-static:arm64)

work="$(mktemp -d "$dir/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && papt download "${packages[@]}" >/dev/null)

# Unpack into a fresh tree, then swap it in: a half-done run never looks done.
mkdir "$work/root" "$work/busybox"
for deb in "$work"/*.deb; do
  case "$(basename "$deb")" in
    busybox-static_*_amd64.deb) dpkg -x "$deb" "$work/busybox/amd64" ;;
    busybox-static_*_arm64.deb) dpkg -x "$deb" "$work/busybox/arm64" ;;
    linux-image-*) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/root" --wildcards './boot/vmlinuz-*' ;; # no modules: 10x smaller
    *) dpkg -x "$deb" "$work/root" ;;
  esac
done
# /usr/bin in trixie (merged /usr), /bin before.
for arch in amd64 arm64; do
  install -m 0755 "$(find "$work/busybox/$arch" -path '*bin/busybox' | head -1)" "$work/busybox-$arch"
done
vmlinuz() { find "$work/root/boot" -name "vmlinuz-*-$1" | head -1; }
# Hard links: the same bytes as root/boot/vmlinuz-*, under a name that does not change.
for arch in amd64 arm64; do ln "$(vmlinuz "$arch")" "$work/vmlinuz-$arch" 2>/dev/null || cp "$(vmlinuz "$arch")" "$work/vmlinuz-$arch"; done
for deb in "$work"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version} ${Architecture}\n' "$deb"; done >"$work/VERSIONS"

rm -rf "$dir/root" "$dir/VERSIONS"
mv "$work/root" "$dir/root"
for f in vmlinuz-amd64 vmlinuz-arm64 busybox-amd64 busybox-arm64; do mv "$work/$f" "$dir/$f"; done
mv "$work/VERSIONS" "$dir/VERSIONS"
complete || { echo "secureboot-assets: a file is missing after unpacking (see $dir)" >&2; exit 1; }
# The package lists (40 MB) are only needed to fetch again, which starts with an update anyway.
rm -rf "$apt_dir/lists" "$apt_dir/cache"
echo "secureboot-assets: $(paste -sd',' "$dir/VERSIONS") -> $dir"
