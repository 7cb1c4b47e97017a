#!/usr/bin/env bash
# Installs what the deploy/ checks (ctest -L deploy) need beyond
# scripts/install-deps.sh: Node.js and npm (Debian's, where the machine has
# none), and the pinned npm packages of deploy/tests/package-lock.json
# (Kubernetes and prometheus-operator schemas, TypeScript) into
# deploy/tests/node_modules. Idempotent: npm runs only when the lock file
# changed since the last install. Run as root (or with sudo) when Node.js is
# missing.
#
# kubectl (with its built-in kustomize v5) renders the overlays; it must be
# on PATH. Debian 12 packages none that recent (kubernetes-client is 1.20);
# this project's machines have it from the kubectl package of the
# google-cloud-cli repository.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "install-deploy-tools: kubectl with 'kubectl kustomize' is not on PATH;" \
    "install kubectl >= 1.27 (kustomize v5) to run the deploy checks" >&2
  exit 1
fi

dir=deploy/tests
stamp="$dir/node_modules/.installed-lock-sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # npm ci: exactly the versions and integrity hashes of the lock file.
  npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" >"$stamp"
fi
echo "install-deploy-tools: node $(node --version), kubectl kustomize," \
  "npm packages of $dir/package-lock.json in $dir/node_modules"
