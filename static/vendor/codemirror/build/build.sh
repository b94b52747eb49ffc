#!/usr/bin/env bash
# Rebuilds ../codemirror.bundle.js and ../LICENSE from the packages pinned in package-lock.json.
# Needs node and npm (run it from anywhere). node_modules lives in a temporary folder, never in
# static/, so collectstatic never sees it. Commit the bundle, the licence and the lock file.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(dirname "$here")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$here/entry.js" "$work/"
if [[ -f "$here/package-lock.json" ]]; then
  cp "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
else
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error)
  cp "$work/package-lock.json" "$here/"
fi

cd "$work"
./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --metafile=meta.json --outfile="$out/codemirror.bundle.js"

# One licence file naming every package that went into the bundle, with its licence text.
node - "$out/LICENSE" <<'NODE'
const fs = require("fs");
const path = require("path");
const inputs = Object.keys(JSON.parse(fs.readFileSync("meta.json", "utf8")).inputs);
const names = new Set();
for (const input of inputs) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) names.add(match[1]);
}
const parts = [
  "codemirror.bundle.js bundles the npm packages below (see build/package-lock.json).\n",
];
for (const name of [...names].sort()) {
  const dir = path.join("node_modules", name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`${name} ships no licence file`);
  parts.push(`== ${name} ${pkg.version} (${pkg.license}) ==\n`);
  parts.push(fs.readFileSync(path.join(dir, file), "utf8").trim() + "\n");
}
fs.writeFileSync(process.argv[2], parts.join("\n"));
NODE
echo "built $out/codemirror.bundle.js ($(wc -c <"$out/codemirror.bundle.js") bytes)"
