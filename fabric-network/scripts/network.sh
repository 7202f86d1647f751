#!/usr/bin/env bash
# Starts, stops and deploys the m2m Fabric network. Entry point of `npm run network:up|down|deploy`.
#
#   network.sh up     [--native] [--consensus raft1|raft3|bft] [--fabric-version 2.5|3.1] [--batch-timeout 250ms]
#   network.sh down   [--keep-crypto]
#   network.sh deploy [--version V] [--sequence N] [--no-build]
#   network.sh restart-peer <org>       # restart one peer (csp|foga|fogb|manufacturer), wait until it is back
#   network.sh check  [--native]        # only report which prerequisites are missing
#
# `up` generates development crypto material (cryptogen), starts the orderers and peers (Docker
# Compose, or native processes with --native), creates the channel through the channel
# participation API (osnadmin, no system channel), joins every peer and waits for the ordering
# service to elect a leader. `deploy` packages the chaincode as a service and runs the lifecycle.
# The run mode and consensus chosen by `up` are remembered for `down` and `deploy`.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${SCRIPT_DIR}/lib.sh"

STATE_FILE="${NETWORK_DIR}/.network-state"

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

load_state() {
    MODE=compose
    if [[ -f "${STATE_FILE}" ]]; then
        # shellcheck disable=SC1090
        source "${STATE_FILE}"
    fi
}

save_state() {
    cat >"${STATE_FILE}" <<EOF
MODE=${MODE}
CONSENSUS=${CONSENSUS}
FABRIC_VERSION=${FABRIC_VERSION}
EOF
}

generate_crypto() {
    if [[ -d "${ORGANIZATIONS}/peerOrganizations" ]]; then
        log "crypto material exists in ${ORGANIZATIONS} (delete it, or run 'down' without --keep-crypto, to regenerate)"
        return
    fi
    log "generating development crypto material with cryptogen"
    cryptogen generate --config="${NETWORK_DIR}/config/crypto-config.yaml" --output="${ORGANIZATIONS}"
    # Private keys are secrets: owner-only.
    find "${ORGANIZATIONS}" -type f \( -name '*_sk' -o -name 'server.key' -o -name 'client.key' \) -exec chmod 600 {} +
}

create_channel_block() {
    local mode="$1" profile config
    profile="$(channel_profile "${mode}")"
    config="$(configtx_dir)"
    mkdir -p "${ARTIFACTS}"
    if [[ -n "${BATCH_TIMEOUT}" ]]; then
        # A copy of config/ beside it (its MSPDir paths are relative) with the other BatchTimeout.
        [[ "${BATCH_TIMEOUT}" =~ ^[0-9]+(ms|s)$ ]] || fail "--batch-timeout takes a duration such as 250ms or 2s"
        rm -rf "${NETWORK_DIR}/.configtx"
        cp -r "${NETWORK_DIR}/config" "${NETWORK_DIR}/.configtx"
        sed -i "s/^\( *BatchTimeout:\).*/\1 ${BATCH_TIMEOUT}/" "${NETWORK_DIR}/.configtx/configtx.yaml" "${NETWORK_DIR}/.configtx/bft/configtx.yaml"
        config="${NETWORK_DIR}/.configtx${config#"${NETWORK_DIR}/config"}"
        log "BatchTimeout ${BATCH_TIMEOUT} (instead of configtx.yaml's)"
    fi
    log "creating the first block of channel ${CHANNEL_NAME} (profile ${profile})"
    configtxgen -configPath "${config}" -profile "${profile}" -channelID "${CHANNEL_NAME}" \
        -outputBlock "${ARTIFACTS}/${CHANNEL_NAME}.block"
}

join_orderers() {
    for i in $(active_orderers); do
        log "orderer$i joins ${CHANNEL_NAME} (channel participation API on localhost:${ORDERER_ADMIN_PORT[$i]})"
        retry 30 1 osnadmin channel join --channelID "${CHANNEL_NAME}" --config-block "${ARTIFACTS}/${CHANNEL_NAME}.block" \
            -o "localhost:${ORDERER_ADMIN_PORT[$i]}" --ca-file "$(orderer_tls_ca)" \
            --client-cert "$(orderer_dir "$i")/tls/server.crt" --client-key "$(orderer_dir "$i")/tls/server.key" >/dev/null ||
            fail "orderer$i did not join ${CHANNEL_NAME}; see its log"
    done
}

join_peers() {
    for org in "${PEER_ORGS[@]}"; do
        (
            use_org_admin "${org}"
            log "$(peer_host "${org}") joins ${CHANNEL_NAME}"
            retry 30 1 peer channel join -b "${ARTIFACTS}/${CHANNEL_NAME}.block" ||
                fail "$(peer_host "${org}") did not join ${CHANNEL_NAME}; see its log"
        )
    done
    # The anchor peers are in the channel's first block (configtx.yaml), so no channel update is needed.
}

compose() {
    FABRIC_VERSION="${FABRIC_VERSION}" docker compose -p "${COMPOSE_PROJECT}" -f "${NETWORK_DIR}/compose/compose.yaml" "$@"
}

compose_profiles() {
    case "${CONSENSUS}" in
        raft1) ;;
        raft3) echo "--profile raft3" ;;
        bft) echo "--profile bft" ;;
    esac
}

cmd_up() {
    MODE=compose
    BATCH_TIMEOUT=""
    FABRIC_VERSION="${FABRIC_VERSION:-2.5}"
    while (($# > 0)); do
        case "$1" in
            --native) MODE=native ;;
            --consensus) CONSENSUS="$2"; shift ;;
            --fabric-version) FABRIC_VERSION="$2"; shift ;;
            --batch-timeout) BATCH_TIMEOUT="$2"; shift ;;
            -h | --help) usage ;;
            *) fail "unknown option $1" ;;
        esac
        shift
    done
    active_orderers >/dev/null
    # native.sh runs as its own process: it must see the consensus chosen here.
    export CONSENSUS FABRIC_VERSION
    if [[ "${CONSENSUS}" == bft && "${FABRIC_VERSION}" == 2.* ]]; then
        fail "SmartBFT needs Fabric 3.x: add --fabric-version 3.1 (and Fabric 3 binaries on PATH)"
    fi
    check_tools "${MODE}" || exit 1
    [[ -f "${STATE_FILE}" ]] && fail "a network is already up (${STATE_FILE}); run 'npm run network:down' first"

    generate_crypto
    create_channel_block "${MODE}"
    save_state
    if [[ "${MODE}" == compose ]]; then
        log "starting orderers and peers with Docker Compose (Fabric ${FABRIC_VERSION}, ${CONSENSUS})"
        # shellcheck disable=SC2046
        compose $(compose_profiles) up -d
    else
        "${SCRIPT_DIR}/native.sh" start
    fi
    join_orderers
    wait_for_ordering
    join_peers
    wait_for_discovery
    log "network is up. Next: npm run network:deploy"
    log "services connect with the files in ${NETWORK_DIR}/connection/ (FABRIC_CONNECTION=...; see README.md)"
}

cmd_down() {
    local keep_crypto=false
    while (($# > 0)); do
        case "$1" in
            --keep-crypto) keep_crypto=true ;;
            -h | --help) usage ;;
            *) fail "unknown option $1" ;;
        esac
        shift
    done
    load_state
    if [[ "${MODE}" == compose ]]; then
        if have docker && docker compose version >/dev/null 2>&1; then
            log "stopping the Compose network and deleting its volumes"
            compose --profile raft3 --profile bft --profile chaincode down --volumes --remove-orphans
        else
            log "docker compose is not available: nothing to stop in Compose mode"
        fi
    else
        "${SCRIPT_DIR}/native.sh" stop
        rm -rf "${NATIVE_DIR}"
    fi
    rm -rf "${ARTIFACTS}" "${NETWORK_DIR}/build" "${NETWORK_DIR}/.configtx" "${STATE_FILE}"
    if [[ "${keep_crypto}" == false ]]; then rm -rf "${ORGANIZATIONS}"; fi
    log "network is down"
}

# Restarts one organisation's peer under live clients (the suite's M2M_FABRIC_RESTART_PEER_CMD) and
# returns once the peer answers discovery again with the whole channel membership.
cmd_restart_peer() {
    local org="${1:-}"
    [[ -n "${org}" && -n "${ORG_MSP[${org}]:-}" ]] || fail "restart-peer needs an organisation: ${PEER_ORGS[*]}"
    load_state
    [[ -f "${STATE_FILE}" ]] || fail "no network is up: run 'npm run network:up' first"
    log "restarting $(peer_host "${org}") (${MODE})"
    if [[ "${MODE}" == compose ]]; then
        docker restart "$(peer_host "${org}")" >/dev/null
    else
        "${SCRIPT_DIR}/native.sh" restart-peer "${org}"
    fi
    wait_for_discovery
}

cmd_check() {
    local mode=compose
    [[ "${1:-}" == --native ]] && mode=native
    check_tools "${mode}" || return 1
    log "all prerequisites for the ${mode} network are present"
}

main() {
    local command="${1:-}"
    [[ -z "${command}" ]] && usage 1
    shift
    case "${command}" in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        deploy)
            load_state
            [[ -f "${STATE_FILE}" ]] || fail "no network is up: run 'npm run network:up' first"
            check_tools "${MODE}" || exit 1
            MODE="${MODE}" CONSENSUS="${CONSENSUS}" FABRIC_VERSION="${FABRIC_VERSION}" "${SCRIPT_DIR}/deploy-chaincode.sh" "$@"
            ;;
        restart-peer) cmd_restart_peer "$@" ;;
        check) cmd_check "$@" ;;
        -h | --help | help) usage ;;
        *) fail "unknown command ${command} (up, down, deploy, restart-peer, check)" ;;
    esac
}

main "$@"
