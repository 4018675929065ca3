#!/usr/bin/env bash
# Deploy IMAGE on this server (docs/deploy.md, "Updating"): run from anywhere, works in the directory above
# this script (~/quorum, holding docker-compose.prod.yml, deploy/ and .env.prod).
#
#   deploy/deploy.sh ghcr.io/<you>/quorum:<tag>            # refuses during the NYSE session
#   FORCE=1 deploy/deploy.sh ghcr.io/<you>/quorum:<tag>    # deploys now, even with the market open
#
# Before anything is pulled into the compose project, migrated or restarted, the image itself checks the NYSE
# calendar (`quorum market-closed`): while a session is open, or about to open, the deploy stops with exit 3 and
# changes nothing. Any failure of that check counts as "open" (it never deploys by accident).
set -euo pipefail

IMAGE="${1:-${IMAGE:-}}"
FORCE="${FORCE:-0}"
[ "${2:-}" = "--force" ] && FORCE=1
if [ -z "$IMAGE" ]; then
  echo "usage: deploy/deploy.sh IMAGE [--force]   (or IMAGE=... FORCE=1 deploy/deploy.sh)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
[ -f .env.prod ] || { echo "deploy: no .env.prod in $PWD (docs/deploy.md, step 4)" >&2; exit 2; }

compose() { docker compose --env-file .env.prod -f docker-compose.prod.yml "$@"; }

docker pull "$IMAGE"
if ! docker run --rm --network none "$IMAGE" market-closed; then
  if [ "$FORCE" = "1" ]; then
    echo "deploy: FORCED during market hours: a running cycle gets the workers' stop grace period to finish" >&2
  else
    echo "deploy: refused: the market is open (or the check failed). Deploy after the close, or force it" \
         "with FORCE=1 (workflow: run it by hand with force)." >&2
    exit 3
  fi
fi

sed -i '/^QUORUM_IMAGE=/d' .env.prod && echo "QUORUM_IMAGE=$IMAGE" >> .env.prod
compose pull api worker monitor chat
compose up -d --no-build postgres redis
compose run --rm api db upgrade
compose up -d --no-build --remove-orphans
compose run --rm api preflight
docker image prune -f
echo "deploy: $IMAGE is running"
