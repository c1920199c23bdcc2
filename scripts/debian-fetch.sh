# SPDX-License-Identifier: MIT
# Sourced by scripts/vm-image.sh and scripts/kmd-headers.sh: Debian packages
# fetched with apt-get download through a private list of sources (bookworm,
# bookworm-security) in the cache dir ./configure uses and unpacked there
# with dpkg-deb -x, one directory per version; nothing is installed on the
# host. The caller defines say and die and sets cache_dir and tmp (a scratch
# directory it removes).

apt_dir=$cache_dir/vm-apt
apt_root_opt=
[ "$(id -u)" != 0 ] || apt_root_opt=-oAPT::Sandbox::User=root

apt_private() { # CMD ARG...: apt-get or apt-cache with the private lists
    cmd=$1
    shift
    "$cmd" -o Dir::Etc::sourcelist="$apt_dir/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
        ${apt_root_opt:+"$apt_root_opt"} "$@"
}

archive_uri() { # ARG: "security" or "main": the system's Debian archive of that kind
    uri=
    if [ "$1" = security ]; then match='~'; else match='!~'; fi
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '$1 == "URIs:" && $2 '"$match"' /security/ { print $2; exit }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; if (u '"$match"' /security/) { print u; exit } }' \
            /etc/apt/sources.list)
    fi
    if [ -z "$uri" ]; then
        if [ "$1" = security ]; then uri=http://deb.debian.org/debian-security; else
            uri=http://deb.debian.org/debian; fi
    fi
    echo "$uri"
}

# Writes the private sources list and updates its package lists; the log
# goes to $tmp/update.log. False when the archive cannot be reached.
apt_update() {
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    cat >"$apt_dir/sources.list" <<LIST
deb [signed-by=$keyring] $(archive_uri main) bookworm main
deb [signed-by=$keyring] $(archive_uri security) bookworm-security main
LIST
    say "updating private package lists in $apt_dir (bookworm, bookworm-security) ..."
    apt_private apt-get -q update --error-on=any >"$tmp/update.log" 2>&1
}

unpacked_dir() { # NAME=VERSION: its directory in the cache (epoch dropped)
    name=${1%%=*}
    ver=${1#*=}
    echo "$cache_dir/vm-$name-${ver#*:}"
}

cached() { # NAME=VERSION: true when unpacked in the cache
    [ -e "$(unpacked_dir "$1")/.vkmt-complete" ]
}

# DIR NAME=VERSION...: download the packages and unpack them all into DIR,
# which gets a .vkmt-complete file naming them; nothing happens when DIR is
# complete already. A partial DIR is never left behind.
fetch_into() {
    dir=$1
    shift
    [ -e "$dir/.vkmt-complete" ] && return 0
    say "fetching $* ..."
    rm -rf "$apt_dir/dl"
    mkdir -p "$apt_dir/dl"
    (cd "$apt_dir/dl" && apt_private apt-get -q download "$@") >"$tmp/fetch.log" 2>&1 ||
        { cat "$tmp/fetch.log" >&2; die "apt-get download $* failed"; }
    rm -rf "$dir.tmp"
    for deb in "$apt_dir/dl/"*.deb; do
        dpkg-deb -x "$deb" "$dir.tmp" || die "dpkg-deb -x failed for $deb"
    done
    echo "$*" >"$dir.tmp/.vkmt-complete"
    mv "$dir.tmp" "$dir"
    rm -rf "$apt_dir/dl"
}

fetch() { # NAME=VERSION: download and unpack into the cache unless there
    fetch_into "$(unpacked_dir "$1")" "$1"
}
