#!/usr/bin/env bash
# The integration suite on a real, native Fabric network, from nothing to nothing:
# up --native, deploy, `npm run test:fabric` (every test/fabric/*.suite.ts, the peer-restart and
# peer-pause tests enabled), then the CSP key rotation, down — the network is taken down however the run ends.
#
#   run-suite.sh [--release 2.5.12] [--consensus raft1|raft3|bft]
#
# Binaries: with FABRIC_RELEASES set to a directory holding install.sh and release archives (the
# layout of a Fabric binaries mirror: `install.sh VERSION DIR` unpacks VERSION into DIR and prints
# its exports), the release is unpacked into .fabric/ and used; otherwise the Fabric binaries on
# PATH are used, and when any is missing the run stops with the list of what is missing.
# Used by .ci/run (2.5.12, raft1) and `npm run test:fabric:bft` (3.0.0, bft).

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"

RELEASE=2.5.12
CONSENSUS=raft1
while (($# > 0)); do
    case "$1" in
        --release) RELEASE="$2"; shift ;;
        --consensus) CONSENSUS="$2"; shift ;;
        -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run-suite.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\033[1;34m[fabric-suite]\033[0m %s\n' "$*" >&2; }

if [[ -n "${FABRIC_RELEASES:-}" && -f "${FABRIC_RELEASES}/install.sh" ]]; then
    say "Fabric ${RELEASE} from ${FABRIC_RELEASES} into .fabric/"
    eval "$(bash "${FABRIC_RELEASES}/install.sh" "${RELEASE}" .fabric)"
else
    say "FABRIC_RELEASES not set: using the Fabric binaries on PATH"
fi
bash fabric-network/scripts/network.sh check --native
say "$(peer version | sed -n 's/^ *Version: */peer /p') ($(command -v peer))"

UP_ARGS=(--native --consensus "${CONSENSUS}")
[[ "${RELEASE}" == 3.* ]] && UP_ARGS+=(--fabric-version "${RELEASE%.*}")

# A network left over by an interrupted run would refuse `up`.
if [[ -f fabric-network/.network-state ]]; then
    say "a network is already up here: taking it down first"
    npm run --silent network:down
fi

STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/m2m-fabric-suite-XXXXXX")"
cleanup() {
    local status=$?
    npm run --silent network:down >/dev/null 2>&1 || say "network:down failed; run it by hand"
    rm -rf "${STATE_DIR}"
    exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=${SECONDS}
npm run --silent network:up -- "${UP_ARGS[@]}"
up_done=${SECONDS}
npm run --silent network:deploy -- --no-build
deploy_done=${SECONDS}
# The suite runs straight after deploy: the discovery regression test relies on it.
FABRIC_CONNECTION=fabric-network/connection \
    M2M_FABRIC_TEST_STATE="${STATE_DIR}" \
    M2M_FABRIC_RESTART_PEER_CMD='bash fabric-network/scripts/network.sh restart-peer {org}' \
    M2M_FABRIC_PEER_PID_FILE='fabric-network/.native/peer0.{org}.m2m.example.com/node.pid' \
    node build/test/fabric/run.js
# Last, on the same network: the CSP's key rotations, within the suite and then to P-384. They change
# the channel's CA key for good, so they run after every suite that issues under the key it started
# with (lifecycle.suite.ts skips them without M2M_FABRIC_ROTATE=1).
say "CSP key rotations (same suite, then to P-384) on the network the suites used (lifecycle.suite.ts, M2M_FABRIC_ROTATE=1)"
FABRIC_CONNECTION=fabric-network/connection \
    M2M_FABRIC_TEST_STATE="${STATE_DIR}" \
    M2M_FABRIC_ROTATE=1 \
    node --test --test-name-pattern='rotates its key' build/test/fabric/lifecycle.suite.js
suite_done=${SECONDS}
say "Fabric ${RELEASE} ${CONSENSUS}: up $((up_done - started)) s, deploy $((deploy_done - up_done)) s, suite $((suite_done - deploy_done)) s"
