#!/usr/bin/env bash
# Variables defined here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared definitions of the m2m Fabric network: organisations, nodes, ports and paths, and the
# helpers every script uses. Sourced, not run. One table for everything, so the Compose file, the
# native scripts, the connection files and configtx.yaml can be checked against it
# (test/fabric/network-files.test.ts does).

set -euo pipefail

NETWORK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORGANIZATIONS="${NETWORK_DIR}/organizations"
ARTIFACTS="${NETWORK_DIR}/channel-artifacts"
NATIVE_DIR="${NETWORK_DIR}/.native"

# Docker Compose project name (volume and container names); the file itself has no `name:`.
COMPOSE_PROJECT="m2m-fabric"

CHANNEL_NAME="${CHANNEL_NAME:-m2m}"
CHAINCODE_NAME="${CHAINCODE_NAME:-m2m}"
DOMAIN="m2m.example.com"

# Peer organisations: key, MSP ID, peer port (chaincode listener = port + 1), operations port,
# chaincode-as-a-service port (native runs; in Compose every chaincode container listens on 9999).
PEER_ORGS=(csp foga fogb manufacturer)
declare -A ORG_MSP=([csp]=CSPMSP [foga]=FogAMSP [fogb]=FogBMSP [manufacturer]=ManufacturerMSP)
declare -A PEER_PORT=([csp]=7051 [foga]=8051 [fogb]=9051 [manufacturer]=10051)
declare -A PEER_OPS_PORT=([csp]=9451 [foga]=9452 [fogb]=9453 [manufacturer]=9454)
declare -A CCAAS_PORT=([csp]=9901 [foga]=9902 [fogb]=9903 [manufacturer]=9904)

# Orderers: index -> cluster/client port, admin (channel participation) port, operations port.
ORDERERS=(0 1 2 3)
declare -A ORDERER_PORT=([0]=7050 [1]=7150 [2]=7250 [3]=7350)
declare -A ORDERER_ADMIN_PORT=([0]=7053 [1]=7153 [2]=7253 [3]=7353)
declare -A ORDERER_OPS_PORT=([0]=9443 [1]=9444 [2]=9445 [3]=9446)

# Consensus: raft1 (1 Raft orderer, development), raft3 (3 Raft orderers), bft (4 SmartBFT
# orderers, Fabric 3.x only).
CONSENSUS="${CONSENSUS:-raft1}"

log() { printf '\033[1;34m[m2m-network]\033[0m %s\n' "$*" >&2; }
fail() {
    printf '\033[1;31m[m2m-network] error:\033[0m %s\n' "$*" >&2
    exit 1
}

org_domain() { echo "$1.${DOMAIN}"; }
peer_host() { echo "peer0.$1.${DOMAIN}"; }
orderer_host() { echo "orderer$1.${DOMAIN}"; }
peer_dir() { echo "${ORGANIZATIONS}/peerOrganizations/$(org_domain "$1")/peers/$(peer_host "$1")"; }
orderer_dir() { echo "${ORGANIZATIONS}/ordererOrganizations/${DOMAIN}/orderers/$(orderer_host "$1")"; }
orderer_tls_ca() { echo "${ORGANIZATIONS}/ordererOrganizations/${DOMAIN}/tlsca/tlsca.${DOMAIN}-cert.pem"; }
peer_tls_ca() { echo "${ORGANIZATIONS}/peerOrganizations/$(org_domain "$1")/tlsca/tlsca.$(org_domain "$1")-cert.pem"; }
admin_msp() { echo "${ORGANIZATIONS}/peerOrganizations/$(org_domain "$1")/users/Admin@$(org_domain "$1")/msp"; }
admin_tls() { echo "${ORGANIZATIONS}/peerOrganizations/$(org_domain "$1")/users/Admin@$(org_domain "$1")/tls"; }

# Orderer indexes that run for the chosen consensus.
active_orderers() {
    case "${CONSENSUS}" in
        raft1) echo 0 ;;
        raft3) echo 0 1 2 ;;
        bft) echo 0 1 2 3 ;;
        *) fail "CONSENSUS must be raft1, raft3 or bft (got '${CONSENSUS}')" ;;
    esac
}

# configtxgen profile and config directory for the chosen consensus and run mode (compose|native).
channel_profile() {
    local suffix=""
    [[ "$1" == native ]] && suffix="Local"
    case "${CONSENSUS}" in
        raft1) echo "M2MRaftDev${suffix}" ;;
        raft3) echo "M2MRaft${suffix}" ;;
        bft) echo "M2MSmartBFT${suffix}" ;;
    esac
}
configtx_dir() {
    if [[ "${CONSENSUS}" == bft ]]; then echo "${NETWORK_DIR}/config/bft"; else echo "${NETWORK_DIR}/config"; fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# The Fabric release's config directory (core.yaml, orderer.yaml), needed by the peer CLI and by
# native nodes. FABRIC_CFG_PATH wins; otherwise the release layout bin/../config is assumed.
fabric_release_config() {
    if [[ -n "${FABRIC_CFG_PATH:-}" && -f "${FABRIC_CFG_PATH}/core.yaml" ]]; then
        echo "${FABRIC_CFG_PATH}"
        return
    fi
    local bin
    bin="$(command -v peer 2>/dev/null || true)"
    if [[ -n "${bin}" && -f "$(dirname "${bin}")/../config/core.yaml" ]]; then
        (cd "$(dirname "${bin}")/../config" && pwd)
        return
    fi
    fail "cannot find the Fabric release's config directory (core.yaml, orderer.yaml).
  Set FABRIC_CFG_PATH to the 'config' directory of the Fabric release you downloaded
  (install-fabric.sh binary puts bin/ and config/ side by side)."
}

# The chaincode-as-a-service external builder of the release (builders/ccaas/bin/{detect,build,release}).
fabric_ccaas_builder() {
    if [[ -n "${FABRIC_CCAAS_BUILDER:-}" ]]; then
        echo "${FABRIC_CCAAS_BUILDER}"
        return
    fi
    local bin
    bin="$(command -v peer 2>/dev/null || true)"
    if [[ -n "${bin}" && -x "$(dirname "${bin}")/../builders/ccaas/bin/detect" ]]; then
        (cd "$(dirname "${bin}")/../builders/ccaas" && pwd)
        return
    fi
    fail "cannot find the chaincode-as-a-service builder (builders/ccaas/bin/detect) of the Fabric release.
  Set FABRIC_CCAAS_BUILDER to it (the release tarball has it next to bin/ and config/)."
}

# Tells precisely what is missing for a run mode and how to get it; returns non-zero if anything is.
check_tools() {
    local mode="$1" missing=()
    local tools=(cryptogen configtxgen osnadmin peer)
    [[ "${mode}" == native ]] && tools+=(orderer)
    for tool in "${tools[@]}"; do have "${tool}" || missing+=("${tool}"); done
    have node || missing+=(node)
    if [[ "${mode}" == native ]] && have peer; then
        # Native nodes also need the release's config/ and builders/ccaas/ (next to bin/, or named).
        (fabric_release_config >/dev/null 2>&1) || missing+=("the release's config/ directory (set FABRIC_CFG_PATH)")
        (fabric_ccaas_builder >/dev/null 2>&1) || missing+=("the release's builders/ccaas (set FABRIC_CCAAS_BUILDER)")
    fi
    if [[ "${mode}" == compose ]]; then
        if ! have docker; then
            missing+=("docker")
        else
            docker compose version >/dev/null 2>&1 || missing+=("the docker compose v2 plugin")
            docker info >/dev/null 2>&1 || missing+=("a running Docker engine (docker info fails)")
        fi
    fi
    if ((${#missing[@]} > 0)); then
        local list
        list="$(printf '%s, ' "${missing[@]}")"
        cat >&2 <<EOF
[m2m-network] cannot run the ${mode} network; missing: ${list%, }.
  - Fabric binaries (cryptogen, configtxgen, osnadmin, peer, orderer): download a Fabric 2.5 or 3.x
    release for your OS/architecture (linux-amd64, linux-arm64, darwin-arm64, ...) with the
    install-fabric.sh script of the hyperledger/fabric repository ('install-fabric.sh binary'),
    or unpack a release tarball; then: export PATH=\$PWD/bin:\$PATH FABRIC_CFG_PATH=\$PWD/config
  - Docker mode also needs Docker Engine with the compose v2 plugin; without Docker use
    'npm run network:up -- --native' (every node as a local process).
  See fabric-network/README.md, "Prerequisites".
EOF
        return 1
    fi
}

# Environment for the peer CLI acting as an organisation's admin against its peer.
use_org_admin() {
    local org="$1"
    export CORE_PEER_TLS_ENABLED=true
    export CORE_PEER_LOCALMSPID="${ORG_MSP[${org}]}"
    export CORE_PEER_MSPCONFIGPATH
    CORE_PEER_MSPCONFIGPATH="$(admin_msp "${org}")"
    export CORE_PEER_TLS_ROOTCERT_FILE
    CORE_PEER_TLS_ROOTCERT_FILE="$(peer_tls_ca "${org}")"
    export CORE_PEER_ADDRESS="localhost:${PEER_PORT[${org}]}"
    # The CLI reads core.yaml for its defaults; the node-specific values above override it.
    export FABRIC_CFG_PATH
    FABRIC_CFG_PATH="$(fabric_release_config)"
}

# Retries a command with a fixed delay: Fabric nodes accept connections a moment after they start.
retry() {
    local attempts="$1" delay="$2"
    shift 2
    local n=1
    until "$@"; do
        ((n >= attempts)) && return 1
        n=$((n + 1))
        sleep "${delay}"
    done
}

# Waits until some orderer reports itself Raft leader of the channel (operations endpoint
# metric consensus_etcdraft_is_leader). A transaction submitted before a leader exists is refused
# with SERVICE_UNAVAILABLE. SmartBFT has no single long-lived leader metric; for it we wait until
# every orderer lists the channel as active.
wait_for_ordering() {
    local deadline=$((SECONDS + ${ORDERING_WAIT_SECONDS:-60}))
    log "waiting for the ordering service of channel ${CHANNEL_NAME} (${CONSENSUS})"
    while ((SECONDS < deadline)); do
        if [[ "${CONSENSUS}" == bft ]]; then
            local active=0 total=0
            for i in $(active_orderers); do
                total=$((total + 1))
                if osnadmin channel list --channelID "${CHANNEL_NAME}" -o "localhost:${ORDERER_ADMIN_PORT[$i]}" \
                    --ca-file "$(orderer_tls_ca)" --client-cert "$(orderer_dir "$i")/tls/server.crt" \
                    --client-key "$(orderer_dir "$i")/tls/server.key" 2>/dev/null | grep -q '"status": *"active"'; then
                    active=$((active + 1))
                fi
            done
            if ((active == total)); then
                log "all ${total} SmartBFT orderers are active"
                return 0
            fi
        else
            for i in $(active_orderers); do
                if curl -fsS "http://localhost:${ORDERER_OPS_PORT[$i]}/metrics" 2>/dev/null |
                    grep -Eq "^consensus_etcdraft_is_leader\{channel=\"${CHANNEL_NAME}\"\} 1"; then
                    log "orderer$i is the Raft leader of ${CHANNEL_NAME}"
                    return 0
                fi
            done
        fi
        sleep 1
    done
    fail "the ordering service elected no leader for ${CHANNEL_NAME} within ${ORDERING_WAIT_SECONDS:-60}s; check the orderer logs"
}

# Waits until service discovery has converged on every peer (scripts/discovery.mjs): without an
# argument, until each peer's channel membership lists a peer of every organisation; with a
# chaincode name, until each peer computes an endorsement layout for it with endorsers of every
# organisation. Before that a peer's Gateway fails with "no combination of peers can be derived
# which satisfy the endorsement policy". M2M_DISCOVERY_PROBE replaces the probe command (tests).
wait_for_discovery() {
    local chaincode="${1:-}" args=()
    for org in "${PEER_ORGS[@]}"; do
        args+=(--peer "${org},${ORG_MSP[${org}]},localhost:${PEER_PORT[${org}]},$(peer_tls_ca "${org}"),$(admin_msp "${org}"),$(admin_tls "${org}")")
    done
    [[ -n "${chaincode}" ]] && args+=(--chaincode "${chaincode}")
    log "waiting for service discovery to converge on every peer${chaincode:+ (endorsers of ${chaincode})}"
    local probe
    read -r -a probe <<<"${M2M_DISCOVERY_PROBE:-node ${NETWORK_DIR}/scripts/discovery.mjs}"
    "${probe[@]}" --channel "${CHANNEL_NAME}" --timeout "${DISCOVERY_WAIT_SECONDS:-120}" "${args[@]}" ||
        fail "service discovery did not converge; see the peers' logs in ${NATIVE_DIR} (native) or docker logs"
}
