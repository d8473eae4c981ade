#!/usr/bin/env bash
# Copies the built dist folders of the seven model packages to DIR (default /tmp/moebench-before),
# with DIR/node_modules/@moebench links between the copies and to this checkout's backend, so that
# profile-step.mjs --before DIR can time this build against a later one in the same process.
# Run it after `pnpm exec tsc -b packages/models` at the commit to compare against.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="${1:-/tmp/moebench-before}"
rm -rf "$dir"
mkdir -p "$dir/packages" "$dir/node_modules/@moebench"
for package in models smlp moe switch gshard hash-layers base-layers; do
  mkdir -p "$dir/packages/$package"
  cp -r "$root/packages/$package/dist" "$root/packages/$package/package.json" "$dir/packages/$package/"
  name="$(node -p "require('$root/packages/$package/package.json').name.replace('@moebench/', '')")"
  ln -s "$dir/packages/$package" "$dir/node_modules/@moebench/$name"
done
ln -s "$root/packages/backend" "$dir/node_modules/@moebench/backend"
git -C "$root" rev-parse HEAD > "$dir/COMMIT"
echo "Copied the build of $(cat "$dir/COMMIT") to $dir"
