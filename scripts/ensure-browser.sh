#!/usr/bin/env bash
# The ops page's browser tests drive Debian's chromium headless (tests/ui). Install it when it
# is missing and this machine can (root + apt-get); otherwise say so: the tests then skip,
# naming the reason. Never fails the test command by itself.
set -u
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian chromium for the browser tests ..."
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/tmp/renewal-apt.log 2>&1 \
        || { apt-get update -q >>/tmp/renewal-apt.log 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>/tmp/renewal-apt.log 2>&1; }; then
        exit 0
    fi
    echo "could not install chromium (see /tmp/renewal-apt.log): browser tests will skip"
else
    echo "no chromium and no way to install it here (needs root and apt-get): browser tests will skip"
fi
exit 0
