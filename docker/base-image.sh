#!/bin/sh
# Build a minimal Debian base image with Python 3 for Odradek, from Debian's own packages,
# for machines that reach Debian's mirror but no image registry.
#
#   docker/base-image.sh ENGINE IMAGE [SUITE] [MIRROR]
#   docker/base-image.sh podman localhost/odradek-base:bookworm
#
# debootstrap (variant minbase) builds the root file system with python3 in it, without
# docs, man pages, locales or apt lists; `ENGINE import` turns the tarball into an image.
# Needs root (debootstrap chroots) and the debootstrap package.
set -eu

engine=${1:?usage: base-image.sh ENGINE IMAGE [SUITE] [MIRROR]}
image=${2:?usage: base-image.sh ENGINE IMAGE [SUITE] [MIRROR]}
suite=${3:-bookworm}
mirror=${4:-http://deb.debian.org/debian}

if [ "$(id -u)" != 0 ]; then
    echo "base-image.sh: debootstrap needs root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "base-image.sh: debootstrap is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/odradek-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "base-image.sh: debootstrap --variant=minbase $suite into $root"
debootstrap --variant=minbase --include=python3 "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

# Keep later installs (in derived images) free of docs and locales too, as Debian's slim
# images do.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-odradek-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/lintian/"*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
    "$root/var/cache/debconf/"*-old "$root/var/log/"* "$root/tmp/"* "$root/debootstrap"
# The image's sources.list points at the same mirror.
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"

tar --numeric-owner --xattrs -C "$root" -c . | "$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$image" >/dev/null
echo "base-image.sh: imported $image"
