#!/usr/bin/env bash
# Deploys (or upgrades) the m2m chaincode as a service. Run through `npm run network:deploy`.
#
#   deploy-chaincode.sh [--version V] [--sequence N] [--no-build]
#   (--no-build: package the chaincode as compiled by the last `npm run build`)
#
# Steps, in Fabric's chaincode lifecycle:
#   1. stage the chaincode (dist/ + package.json + its own package-lock.json) and build the CCaaS
#      package (metadata.json + code.tar.gz/connection.json); its package ID is computed here;
#   2. install the package on every peer (skipped where it is already installed);
#   3. approve the definition for each organisation (same name, version, sequence, package ID;
#      skipped for an organisation whose approval checkcommitreadiness already shows);
#   4. check commit readiness: a MAJORITY of organisations (3 of 4, the channel's
#      LifecycleEndorsement) must have approved, or the script stops and names the missing ones;
#   5. commit the definition, endorsed by every peer;
#   6. (re)start one chaincode server per organisation with the new package ID (Docker image or
#      native process) and wait until each peer's chaincode answers;
#   7. print the package ID (also saved in channel-artifacts/chaincode.env).
# The servers are (re)started after the commit, not before: until the commit the peers still run the
# previous definition, whose package ID the old servers carry, so an upgrade interrupts endorsement
# only between steps 5 and 6 (seconds), not during install and approval.
# Upgrade: run it again after changing the chaincode. The sequence defaults to the committed
# sequence + 1 (1 for the first deployment); the version defaults to "<sequence>.0".

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${SCRIPT_DIR}/lib.sh"

MODE="${MODE:-compose}"
VERSION=""
SEQUENCE=""
STAGE_OPTIONS=()
while (($# > 0)); do
    case "$1" in
        --version) VERSION="$2"; shift ;;
        --sequence) SEQUENCE="$2"; shift ;;
        --no-build) STAGE_OPTIONS+=(--skip-build) ;;
        *) fail "unknown option $1 (--version V, --sequence N, --no-build)" ;;
    esac
    shift
done

ORDERER_ARGS=(-o "localhost:${ORDERER_PORT[0]}" --ordererTLSHostnameOverride "$(orderer_host 0)" --tls --cafile "$(orderer_tls_ca)")

# The committed sequence of the chaincode, 0 when none is committed yet (the peer answers 404).
# Any other failure stops the script: guessing a sequence would approve the wrong definition.
committed_sequence() {
    local out errors status=0
    errors="$(mktemp)"
    out="$(
        use_org_admin csp
        peer lifecycle chaincode querycommitted --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" -O json 2>"${errors}"
    )" || status=$?
    if ((status != 0)); then
        if grep -qE '404|not defined|not found' "${errors}"; then
            rm -f "${errors}"
            echo 0
            return
        fi
        local message
        message="$(cat "${errors}")"
        rm -f "${errors}"
        fail "cannot read the committed definition of ${CHAINCODE_NAME} from $(peer_host csp): ${message}"
    fi
    rm -f "${errors}"
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).sequence))' <<<"${out}"
}

if [[ -z "${SEQUENCE}" ]]; then
    COMMITTED="$(committed_sequence)"
    SEQUENCE=$((COMMITTED + 1))
fi
[[ "${SEQUENCE}" =~ ^[1-9][0-9]*$ ]] || fail "--sequence must be a positive integer"
VERSION="${VERSION:-${SEQUENCE}.0}"
LABEL="${CHAINCODE_NAME}_${VERSION}"
PACKAGE="${ARTIFACTS}/${LABEL}.tar.gz"

log "1/7 staging and packaging ${CHAINCODE_NAME} version ${VERSION}, sequence ${SEQUENCE}"
node "${SCRIPT_DIR}/stage-chaincode.mjs" --out "${NETWORK_DIR}/build/chaincode" "${STAGE_OPTIONS[@]}"
PACKAGE_ID="$(node "${SCRIPT_DIR}/package-ccaas.mjs" --label "${LABEL}" --out "${PACKAGE}")"
log "package ID ${PACKAGE_ID}"

log "2/7 installing the package on every peer"
for org in "${PEER_ORGS[@]}"; do
    (
        use_org_admin "${org}"
        if peer lifecycle chaincode queryinstalled -O json 2>/dev/null | grep -q "\"${PACKAGE_ID}\""; then
            log "  $(peer_host "${org}"): already installed"
        else
            peer lifecycle chaincode install "${PACKAGE}"
        fi
    )
done

# Prints the checkcommitreadiness approvals as "MSPID true|false" lines.
readiness() {
    (
        use_org_admin csp
        peer lifecycle chaincode checkcommitreadiness --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" \
            --version "${VERSION}" --sequence "${SEQUENCE}" -O json |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const [m,a] of Object.entries(JSON.parse(s).approvals??{}))console.log(m+" "+a)})'
    )
}

log "3/7 approving the definition for each organisation"
for org in "${PEER_ORGS[@]}"; do
    if readiness 2>/dev/null | grep -qx "${ORG_MSP[${org}]} true"; then
        log "  ${ORG_MSP[${org}]}: already approved"
        continue
    fi
    (
        use_org_admin "${org}"
        peer lifecycle chaincode approveformyorg "${ORDERER_ARGS[@]}" --channelID "${CHANNEL_NAME}" \
            --name "${CHAINCODE_NAME}" --version "${VERSION}" --package-id "${PACKAGE_ID}" --sequence "${SEQUENCE}"
    )
done

log "4/7 checking commit readiness (a MAJORITY of the ${#PEER_ORGS[@]} organisations must approve)"
APPROVALS="$(readiness)"
echo "${APPROVALS}" >&2
APPROVED="$(grep -c ' true$' <<<"${APPROVALS}" || true)"
NEEDED=$((${#PEER_ORGS[@]} / 2 + 1))
((APPROVED >= NEEDED)) ||
    fail "only ${APPROVED} of ${#PEER_ORGS[@]} organisations approved sequence ${SEQUENCE} (${NEEDED} needed); missing: $(grep ' false$' <<<"${APPROVALS}" | cut -d' ' -f1 | tr '\n' ' ')"

log "5/7 committing the definition"
(
    use_org_admin csp
    PEER_ARGS=()
    for org in "${PEER_ORGS[@]}"; do
        PEER_ARGS+=(--peerAddresses "localhost:${PEER_PORT[${org}]}" --tlsRootCertFiles "$(peer_tls_ca "${org}")")
    done
    peer lifecycle chaincode commit "${ORDERER_ARGS[@]}" --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" \
        --version "${VERSION}" --sequence "${SEQUENCE}" "${PEER_ARGS[@]}"
    peer lifecycle chaincode querycommitted --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}"
)

log "6/7 (re)starting the chaincode servers with ${PACKAGE_ID}"
if [[ "${MODE}" == compose ]]; then
    docker build -t m2m-chaincode:latest -f "${NETWORK_DIR}/chaincode/Dockerfile" "${NETWORK_DIR}/build/chaincode"
    CHAINCODE_ID="${PACKAGE_ID}" FABRIC_VERSION="${FABRIC_VERSION:-2.5}" \
        docker compose -p "${COMPOSE_PROJECT}" -f "${NETWORK_DIR}/compose/compose.yaml" --profile chaincode \
        up -d --force-recreate "cc.csp.${DOMAIN}" "cc.foga.${DOMAIN}" "cc.fogb.${DOMAIN}" "cc.manufacturer.${DOMAIN}"
else
    "${SCRIPT_DIR}/native.sh" chaincode-start "${PACKAGE_ID}"
fi
# org.hyperledger.fabric:GetMetadata is answered by every fabric-contract-api chaincode: a cheap
# query that proves the peer reaches its org's server and that the server runs the committed package.
for org in "${PEER_ORGS[@]}"; do
    (
        use_org_admin "${org}"
        # The first probes race the servers' start and are refused: keep their output for the failure only.
        errors="$(mktemp)"
        if ! retry 30 2 peer chaincode query -C "${CHANNEL_NAME}" -n "${CHAINCODE_NAME}" \
            -c '{"Args":["org.hyperledger.fabric:GetMetadata"]}' >/dev/null 2>"${errors}"; then
            cat "${errors}" >&2
            rm -f "${errors}"
            fail "$(peer_host "${org}") cannot reach its chaincode server cc.${org}.${DOMAIN}; see its log"
        fi
        rm -f "${errors}"
        log "  $(peer_host "${org}"): chaincode answers"
    )
done
# Every peer must also know every other organisation's peers as endorsers of the new definition
# (gossiped state info) before a client's first MAJORITY endorsement can be planned.
wait_for_discovery "${CHAINCODE_NAME}"

mkdir -p "${ARTIFACTS}"
printf 'CHAINCODE_ID=%s\nCHAINCODE_VERSION=%s\nCHAINCODE_SEQUENCE=%s\n' "${PACKAGE_ID}" "${VERSION}" "${SEQUENCE}" >"${ARTIFACTS}/chaincode.env"
log "7/7 deployed ${CHAINCODE_NAME} ${VERSION} (sequence ${SEQUENCE})"
echo "${PACKAGE_ID}"
