#!/usr/bin/env bash
# Installs what bench/peers/run.sh needs on Debian 12, as root: Debian packages by name (only
# those missing) and the two Node peers from the npm registry into bench/peers/node/node_modules
# (exact versions, pinned in bench/peers/node/package.json). Idempotent; says nothing when
# everything is already there.
#   sudo bench/peers/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: run as root (apt-get)" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }

missing=()
# Node: any node/npm on PATH will do (NodeSource's nodejs package ships npm and conflicts with
# Debian's npm package, so npm is only installed by name when there is no npm at all).
command -v node >/dev/null 2>&1 || installed nodejs || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || installed npm || missing+=(npm)
for p in ruby-sidekiq python3-celery python3-rq python3-redis redis-server jq; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install.sh: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node peers, exactly as pinned (package.json; package-lock.json pins the rest, and npm
# install follows it: npm ci is not used because npm 11 rejects this lock file over optional
# platform packages of msgpackr, a BullMQ dependency; --no-save, or npm 11 writes those into the
# tracked lock file). Skipped when node_modules already holds the pinned versions.
cd "$here/node"
want=$(node -e 'const p=require("./package.json");for(const[k,v]of Object.entries(p.dependencies))console.log(k+"@"+v)')
have=$(node -e '
  const p=require("./package.json");
  for (const k of Object.keys(p.dependencies)) {
    try { console.log(k+"@"+require("./node_modules/"+k+"/package.json").version); }
    catch { console.log(k+"@none"); }
  }')
if [[ $want != "$have" ]]; then
  echo "install.sh: npm install in $here/node" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error --registry=https://registry.npmjs.org/ >/dev/null
fi
