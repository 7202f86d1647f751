#!/usr/bin/env bash
# The m2m network as native processes on 127.0.0.1, for users with the Fabric binaries and no
# Docker. Every node gets its own directory under fabric-network/.native/<host>/ holding
#   config/   a copy of the release's core.yaml or orderer.yaml (edit it per node if you like)
#   node.env  the node's own settings (ports, MSP, TLS, data paths), which override config/
#   data/     its ledger
#   node.log  its output, and node.pid while it runs
#
#   native.sh start | stop | status
#   native.sh restart-peer <org>            # stop and start one peer (same settings, log appended)
#   native.sh chaincode-start <package-id> | chaincode-stop
#
# Normally called by network.sh (npm run network:up -- --native) and deploy-chaincode.sh.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${SCRIPT_DIR}/lib.sh"

node_dir() { echo "${NATIVE_DIR}/$1"; }

# Whether a process runs; a zombie (exited, not yet reaped by its parent) does not.
running() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ -n "${state}" && "${state}" != Z* ]]
}

write_orderer_env() {
    local i="$1" dir tls
    dir="$(node_dir "$(orderer_host "$i")")"
    tls="$(orderer_dir "$i")/tls"
    mkdir -p "${dir}/config" "${dir}/data"
    cp "$(fabric_release_config)/orderer.yaml" "${dir}/config/orderer.yaml"
    cat >"${dir}/node.env" <<EOF
FABRIC_CFG_PATH=${dir}/config
FABRIC_LOGGING_SPEC=INFO
ORDERER_GENERAL_LISTENADDRESS=127.0.0.1
ORDERER_GENERAL_LISTENPORT=${ORDERER_PORT[$i]}
ORDERER_GENERAL_LOCALMSPID=OrdererMSP
ORDERER_GENERAL_LOCALMSPDIR=$(orderer_dir "$i")/msp
ORDERER_GENERAL_TLS_ENABLED=true
ORDERER_GENERAL_TLS_PRIVATEKEY=${tls}/server.key
ORDERER_GENERAL_TLS_CERTIFICATE=${tls}/server.crt
ORDERER_GENERAL_TLS_ROOTCAS=[${tls}/ca.crt]
ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE=${tls}/server.crt
ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY=${tls}/server.key
ORDERER_GENERAL_CLUSTER_ROOTCAS=[${tls}/ca.crt]
ORDERER_GENERAL_BOOTSTRAPMETHOD=none
ORDERER_CHANNELPARTICIPATION_ENABLED=true
ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:${ORDERER_ADMIN_PORT[$i]}
ORDERER_ADMIN_TLS_ENABLED=true
ORDERER_ADMIN_TLS_CERTIFICATE=${tls}/server.crt
ORDERER_ADMIN_TLS_PRIVATEKEY=${tls}/server.key
ORDERER_ADMIN_TLS_ROOTCAS=[${tls}/ca.crt]
ORDERER_ADMIN_TLS_CLIENTROOTCAS=[${tls}/ca.crt]
ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:${ORDERER_OPS_PORT[$i]}
ORDERER_METRICS_PROVIDER=prometheus
ORDERER_FILELEDGER_LOCATION=${dir}/data
ORDERER_CONSENSUS_WALDIR=${dir}/data/etcdraft/wal
ORDERER_CONSENSUS_SNAPDIR=${dir}/data/etcdraft/snapshot
EOF
}

write_peer_env() {
    local org="$1" host dir crypto port builder
    host="$(peer_host "${org}")"
    dir="$(node_dir "${host}")"
    crypto="$(peer_dir "${org}")"
    port="${PEER_PORT[${org}]}"
    builder="$(fabric_ccaas_builder)"
    mkdir -p "${dir}/config" "${dir}/data"
    cp "$(fabric_release_config)/core.yaml" "${dir}/config/core.yaml"
    cat >"${dir}/node.env" <<EOF
FABRIC_CFG_PATH=${dir}/config
FABRIC_LOGGING_SPEC=INFO
CORE_PEER_ID=${host}
CORE_PEER_LOCALMSPID=${ORG_MSP[${org}]}
CORE_PEER_MSPCONFIGPATH=${crypto}/msp
CORE_PEER_LISTENADDRESS=127.0.0.1:${port}
CORE_PEER_ADDRESS=127.0.0.1:${port}
CORE_PEER_CHAINCODELISTENADDRESS=127.0.0.1:$((port + 1))
CORE_PEER_CHAINCODEADDRESS=127.0.0.1:$((port + 1))
CORE_PEER_GOSSIP_BOOTSTRAP=127.0.0.1:${port}
CORE_PEER_GOSSIP_EXTERNALENDPOINT=127.0.0.1:${port}
CORE_PEER_TLS_ENABLED=true
CORE_PEER_TLS_CERT_FILE=${crypto}/tls/server.crt
CORE_PEER_TLS_KEY_FILE=${crypto}/tls/server.key
CORE_PEER_TLS_ROOTCERT_FILE=${crypto}/tls/ca.crt
CORE_PEER_GATEWAY_ENABLED=true
CORE_PEER_LIMITS_CONCURRENCY_GATEWAYSERVICE=${GATEWAY_CONCURRENCY:-500}
CORE_PEER_FILESYSTEMPATH=${dir}/data
CORE_LEDGER_SNAPSHOTS_ROOTDIR=${dir}/data/snapshots
CORE_LEDGER_STATE_STATEDATABASE=goleveldb
CORE_CHAINCODE_EXECUTETIMEOUT=30s
CORE_OPERATIONS_LISTENADDRESS=127.0.0.1:${PEER_OPS_PORT[${org}]}
CORE_METRICS_PROVIDER=prometheus
CORE_CHAINCODE_EXTERNALBUILDERS=[{name: ccaas_builder, path: ${builder}, propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}]
CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG={"ccaddress":"127.0.0.1:${CCAAS_PORT[${org}]}"}
EOF
}

# Starts a process with the variables of an env file (values taken literally, no shell expansion).
start_process() {
    local name="$1" dir="$2"
    shift 2
    if [[ -f "${dir}/node.pid" ]] && running "$(cat "${dir}/node.pid")"; then
        log "${name} already runs (pid $(cat "${dir}/node.pid"))"
        return
    fi
    local -a vars=()
    while IFS= read -r line; do
        [[ -z "${line}" || "${line}" == \#* ]] && continue
        vars+=("${line}")
    done <"${dir}/node.env"
    # Appended, so a restarted node keeps the log of its earlier life.
    printf '=== %s started %s ===\n' "${name}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"${dir}/node.log"
    env "${vars[@]}" nohup "$@" >>"${dir}/node.log" 2>&1 &
    echo $! >"${dir}/node.pid"
    log "${name} started (pid $!, log ${dir}/node.log)"
}

stop_process() {
    local name="$1" dir="$2"
    [[ -f "${dir}/node.pid" ]] || return 0
    local pid
    pid="$(cat "${dir}/node.pid")"
    if running "${pid}"; then
        kill "${pid}"
        for _ in $(seq 1 40); do running "${pid}" || break; sleep 0.25; done
        if running "${pid}"; then kill -9 "${pid}"; fi
        log "${name} stopped"
    fi
    rm -f "${dir}/node.pid"
}

cmd_start() {
    for i in $(active_orderers); do
        write_orderer_env "$i"
        start_process "$(orderer_host "$i")" "$(node_dir "$(orderer_host "$i")")" orderer
    done
    for org in "${PEER_ORGS[@]}"; do
        write_peer_env "${org}"
        start_process "$(peer_host "${org}")" "$(node_dir "$(peer_host "${org}")")" peer node start
    done
}

cmd_stop() {
    cmd_chaincode_stop
    for org in "${PEER_ORGS[@]}"; do stop_process "$(peer_host "${org}")" "$(node_dir "$(peer_host "${org}")")"; done
    for i in "${ORDERERS[@]}"; do stop_process "$(orderer_host "$i")" "$(node_dir "$(orderer_host "$i")")"; done
}

# Stops one organisation's peer and starts it again with the same node.env (the event-resume test's
# "peer restart"); its ledger and log are kept.
cmd_restart_peer() {
    local org="$1" host
    [[ -n "${ORG_MSP[${org}]:-}" ]] || fail "unknown organisation '${org}' (${PEER_ORGS[*]})"
    host="$(peer_host "${org}")"
    [[ -f "$(node_dir "${host}")/node.env" ]] || fail "${host} was never started here (no $(node_dir "${host}")/node.env)"
    stop_process "${host}" "$(node_dir "${host}")"
    start_process "${host}" "$(node_dir "${host}")" peer node start
}

cmd_status() {
    for dir in "${NATIVE_DIR}"/*/; do
        [[ -f "${dir}/node.pid" ]] || continue
        local name
        name="$(basename "${dir}")"
        if running "$(cat "${dir}/node.pid")"; then echo "${name}: running"; else echo "${name}: stopped"; fi
    done
}

# One chaincode server per organisation, run from the staged chaincode (stage-chaincode.mjs).
cmd_chaincode_start() {
    local package_id="$1" staged="${NETWORK_DIR}/build/chaincode"
    [[ -x "${staged}/node_modules/.bin/fabric-chaincode-node" ]] ||
        (cd "${staged}" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
    for org in "${PEER_ORGS[@]}"; do
        local dir
        dir="$(node_dir "cc.${org}.${DOMAIN}")"
        mkdir -p "${dir}"
        stop_process "cc.${org}.${DOMAIN}" "${dir}"
        # The same variables as the chaincode image (chaincode/Dockerfile): where the org's peer dials
        # (CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG of write_peer_env) and the package ID the peer runs.
        # M2M_REQUIRE_ROLE_ATTRIBUTE must be the same on every org's server (a chaincode parameter).
        cat >"${dir}/node.env" <<EOF
CHAINCODE_SERVER_ADDRESS=127.0.0.1:${CCAAS_PORT[${org}]}
CHAINCODE_ID=${package_id}
CORE_CHAINCODE_ID_NAME=${package_id}
M2M_REQUIRE_ROLE_ATTRIBUTE=${M2M_REQUIRE_ROLE_ATTRIBUTE:-false}
EOF
        # shellcheck disable=SC2016 # expanded by the inner sh, from node.env
        start_process "cc.${org}.${DOMAIN}" "${dir}" sh -c \
            'exec "$0" server --chaincode-address="$CHAINCODE_SERVER_ADDRESS" --chaincode-id="$CHAINCODE_ID" --module-path="$1"' \
            "${staged}/node_modules/.bin/fabric-chaincode-node" "${staged}"
    done
}

cmd_chaincode_stop() {
    for org in "${PEER_ORGS[@]}"; do stop_process "cc.${org}.${DOMAIN}" "$(node_dir "cc.${org}.${DOMAIN}")"; done
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-peer) cmd_restart_peer "${2:?organisation}" ;;
    chaincode-start) cmd_chaincode_start "${2:?package id}" ;;
    chaincode-stop) cmd_chaincode_stop ;;
    *) fail "usage: native.sh start|stop|status|restart-peer <org>|chaincode-start <package-id>|chaincode-stop" ;;
esac
