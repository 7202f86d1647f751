#!/usr/bin/env bash
# Deploys (or upgrades) the m2m chaincode as a service. Run through `npm run network:deploy`.
#
#   deploy-chaincode.sh [--version V] [--sequence N]
#
# Steps, in Fabric's chaincode lifecycle:
#   1. stage the chaincode (dist/ + package.json + its own package-lock.json) and package the
#      CCaaS package (metadata.json + code.tar.gz/connection.json); its package ID is computed here;
#   2. start one chaincode server per organisation with that package ID (Docker image or native);
#   3. install the package on every peer;
#   4. approve the definition for each organisation (same name, version, sequence, package ID);
#   5. commit it once a MAJORITY of organisations approved (the channel's LifecycleEndorsement);
#   6. print the package ID.
# Upgrade: run it again after changing the chaincode. The sequence defaults to the committed
# sequence + 1 (1 for the first deployment); the version defaults to the sequence.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${SCRIPT_DIR}/lib.sh"

MODE="${MODE:-compose}"
VERSION=""
SEQUENCE=""
while (($# > 0)); do
    case "$1" in
        --version) VERSION="$2"; shift ;;
        --sequence) SEQUENCE="$2"; shift ;;
        *) fail "unknown option $1 (--version V, --sequence N)" ;;
    esac
    shift
done

ORDERER_ARGS=(-o "localhost:${ORDERER_PORT[0]}" --ordererTLSHostnameOverride "$(orderer_host 0)" --tls --cafile "$(orderer_tls_ca)")

committed_sequence() {
    (
        use_org_admin csp
        peer lifecycle chaincode querycommitted --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" -O json 2>/dev/null |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).sequence??0)}catch{console.log(0)}})'
    )
}

if [[ -z "${SEQUENCE}" ]]; then SEQUENCE=$(($(committed_sequence) + 1)); fi
[[ "${SEQUENCE}" =~ ^[1-9][0-9]*$ ]] || fail "--sequence must be a positive integer"
VERSION="${VERSION:-${SEQUENCE}.0}"
LABEL="${CHAINCODE_NAME}_${VERSION}"
PACKAGE="${ARTIFACTS}/${LABEL}.tar.gz"

log "1/6 staging and packaging ${CHAINCODE_NAME} version ${VERSION}, sequence ${SEQUENCE}"
node "${SCRIPT_DIR}/stage-chaincode.mjs" --out "${NETWORK_DIR}/build/chaincode"
PACKAGE_ID="$(node "${SCRIPT_DIR}/package-ccaas.mjs" --label "${LABEL}" --out "${PACKAGE}")"
log "package ID ${PACKAGE_ID}"

log "2/6 starting the chaincode servers"
if [[ "${MODE}" == compose ]]; then
    docker build -t m2m-chaincode:latest -f "${NETWORK_DIR}/chaincode/Dockerfile" "${NETWORK_DIR}/build/chaincode"
    CHAINCODE_ID="${PACKAGE_ID}" FABRIC_VERSION="${FABRIC_VERSION:-2.5}" \
        docker compose -f "${NETWORK_DIR}/compose/compose.yaml" --profile chaincode up -d --force-recreate \
        "cc.csp.${DOMAIN}" "cc.foga.${DOMAIN}" "cc.fogb.${DOMAIN}" "cc.manufacturer.${DOMAIN}"
else
    "${SCRIPT_DIR}/native.sh" chaincode-start "${PACKAGE_ID}"
fi

log "3/6 installing the package on every peer"
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

log "4/6 approving the definition for each organisation"
for org in "${PEER_ORGS[@]}"; do
    (
        use_org_admin "${org}"
        peer lifecycle chaincode approveformyorg "${ORDERER_ARGS[@]}" --channelID "${CHANNEL_NAME}" \
            --name "${CHAINCODE_NAME}" --version "${VERSION}" --package-id "${PACKAGE_ID}" --sequence "${SEQUENCE}"
    )
done

log "5/6 committing the definition (needs a MAJORITY of organisations)"
(
    use_org_admin csp
    peer lifecycle chaincode checkcommitreadiness --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" \
        --version "${VERSION}" --sequence "${SEQUENCE}" -O json
    PEER_ARGS=()
    for org in "${PEER_ORGS[@]}"; do
        PEER_ARGS+=(--peerAddresses "localhost:${PEER_PORT[${org}]}" --tlsRootCertFiles "$(peer_tls_ca "${org}")")
    done
    peer lifecycle chaincode commit "${ORDERER_ARGS[@]}" --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}" \
        --version "${VERSION}" --sequence "${SEQUENCE}" "${PEER_ARGS[@]}"
    peer lifecycle chaincode querycommitted --channelID "${CHANNEL_NAME}" --name "${CHAINCODE_NAME}"
)

mkdir -p "${ARTIFACTS}"
printf 'CHAINCODE_ID=%s\nCHAINCODE_VERSION=%s\nCHAINCODE_SEQUENCE=%s\n' "${PACKAGE_ID}" "${VERSION}" "${SEQUENCE}" >"${ARTIFACTS}/chaincode.env"
log "6/6 deployed ${CHAINCODE_NAME} ${VERSION} (sequence ${SEQUENCE})"
echo "${PACKAGE_ID}"
