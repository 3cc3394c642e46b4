#!/bin/sh
# Rebuilds web/vendor/jssip-3.10.6.min.js and web/vendor/LICENSES.txt from the
# pinned packages in tests/integration/webrtc (run `npm ci` there first).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
w="$root/tests/integration/webrtc"
version=$(node -p "require('$w/node_modules/jssip/package.json').version")
out="$root/web/vendor/jssip-$version.min.js"
"$w/node_modules/.bin/esbuild" "$w/jssip-entry.js" --bundle --minify --format=iife \
  --global-name=JsSIPBundle --legal-comments=eof --outfile="$out"
: > "$root/web/vendor/LICENSES.txt"
for p in jssip sdp-transform debug events ms; do
  f=$(ls "$w/node_modules/$p" | grep -i '^licen' | head -1)
  v=$(node -p "require('$w/node_modules/$p/package.json').version")
  { echo "==== $p $v ($p/$f) ===="; cat "$w/node_modules/$p/$f"; echo; } >> "$root/web/vendor/LICENSES.txt"
done
sha256sum "$out"
