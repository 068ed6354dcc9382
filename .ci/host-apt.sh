# Sourced by the install scripts that bootstrap a Debian tree (debootstrap, mmdebstrap): the
# Debian archive this machine's apt already uses, so that the scripts go wherever the host's
# package sources point (a local mirror, a proxy, a snapshot) and name no host of their own.
# FRR_COMPOSER_MIRROR, when set, wins.

# host_debian_mirror: prints the URI of the first enabled `deb` source of the host that serves
# the main Debian archive (the one whose suite is the host's release, not -security or
# -updates). Exits with an error when none is found.
host_debian_mirror() {
    if [ -n "${FRR_COMPOSER_MIRROR:-}" ]; then
        printf '%s\n' "$FRR_COMPOSER_MIRROR"
        return
    fi
    local codename uri
    codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
    uri="$(
        {
            # deb822 files: a stanza per source; URIs and Suites on their own lines
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                awk -v want="$codename" '
                    function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "") {
                        n = split(suites, s, " "); for (i = 1; i <= n; i++) if (s[i] == want) { split(uris, u, " "); print u[1]; exit } }
                        types = ""; uris = ""; suites = ""; enabled = "" }
                    /^[[:space:]]*$/ { flush(); next }
                    /^#/ { next }
                    tolower($1) == "types:" { $1 = ""; types = $0 }
                    tolower($1) == "uris:" { $1 = ""; sub(/^ +/, ""); uris = $0 }
                    tolower($1) == "suites:" { $1 = ""; suites = $0 }
                    tolower($1) == "enabled:" { enabled = tolower($2) }
                    END { flush() }' "$f"
            done
            # one-line format: deb [options] URI SUITE COMPONENTS...
            for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] || continue
                sed -e 's/\[[^]]*\]//' "$f" | awk -v want="$codename" '$1 == "deb" && $3 == want { print $2; exit }'
            done
        } | head -n1
    )"
    if [ -z "$uri" ]; then
        echo "no Debian archive for \"$codename\" in the host's apt sources; set FRR_COMPOSER_MIRROR to one" >&2
        return 1
    fi
    printf '%s\n' "${uri%/}"
}
