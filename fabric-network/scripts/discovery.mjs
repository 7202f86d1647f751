#!/usr/bin/env node
/**
 * Waits until Fabric's service discovery has converged on every peer, as the Gateway sees it.
 *
 *   node discovery.mjs --channel m2m [--chaincode m2m] [--timeout 120] \
 *       --peer <org>,<mspId>,<host:port>,<peer TLS CA>,<admin MSP dir>,<admin TLS dir> ...
 *
 * Each peer is asked, as its organisation's admin and over mutual TLS, the discovery service's own
 * questions (the ones the Gateway's endorsement planner answers from the same gossip state):
 *   - without --chaincode: the channel's peer membership — converged when every peer lists a peer of
 *     every organisation given with --peer (gossip alive messages and identities exchanged);
 *   - with --chaincode: the chaincode's endorsement descriptor — converged when every peer computes
 *     at least one layout satisfying the endorsement policy and lists endorsers of every
 *     organisation (state info with the installed chaincode gossiped). Until then the Gateway of
 *     that peer fails with "no combination of peers can be derived which satisfy the endorsement
 *     policy".
 * Prints one progress line per change and exits 0 when converged, 1 on timeout naming what each peer
 * still lacks. A fresh native network needs one gossip reconnect round (peer.gossip.reconnectInterval)
 * after the channel join, because the peers cannot authenticate each other's TLS before they know
 * the channel's MSPs.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { Buffer } from 'node:buffer';

import grpc from '@grpc/grpc-js';
import { signers } from '@hyperledger/fabric-gateway';
import protos from '@hyperledger/fabric-protos';

const { discovery, msp, peer: peerProtos } = protos;

function parseArgs(argv) {
    const options = { channel: 'm2m', chaincode: undefined, timeout: 120, peers: [] };
    for (let i = 0; i < argv.length; i++) {
        const value = argv[i + 1];
        switch (argv[i]) {
            case '--channel':
                options.channel = value;
                i++;
                break;
            case '--chaincode':
                options.chaincode = value;
                i++;
                break;
            case '--timeout':
                options.timeout = Number(value);
                i++;
                break;
            case '--peer': {
                const [org, mspId, address, tlsCa, adminMsp, adminTls] = value.split(',');
                if (adminTls === undefined) throw new Error(`--peer needs 6 comma-separated fields, got ${value}`);
                options.peers.push({ org, mspId, address, tlsCa, adminMsp, adminTls });
                i++;
                break;
            }
            default:
                throw new Error(`unknown argument ${argv[i]}`);
        }
    }
    if (options.peers.length === 0) throw new Error('no --peer given');
    return options;
}

const firstFile = (dir) => join(dir, readdirSync(dir).sort()[0]);

/** A discovery client of one peer, authenticated as its organisation's admin. */
function openPeer(peer) {
    const certificate = readFileSync(firstFile(join(peer.adminMsp, 'signcerts')));
    const signer = signers.newPrivateKeySigner(
        createPrivateKey(readFileSync(firstFile(join(peer.adminMsp, 'keystore')))),
    );
    const tlsCert = readFileSync(join(peer.adminTls, 'client.crt'));
    const credentials = grpc.credentials.createSsl(
        readFileSync(peer.tlsCa),
        readFileSync(join(peer.adminTls, 'client.key')),
        tlsCert,
    );
    const client = new discovery.DiscoveryClient(peer.address, credentials);
    const identity = new msp.SerializedIdentity();
    identity.setMspid(peer.mspId);
    identity.setIdBytes(certificate);
    // The discovery service checks the hash against the TLS certificate the client presented.
    const tlsHash = createHash('sha256').update(pemToDer(tlsCert)).digest();
    return {
        close: () => client.close(),
        async query(query) {
            const auth = new discovery.AuthInfo();
            auth.setClientIdentity(identity.serializeBinary());
            auth.setClientTlsCertHash(tlsHash);
            const request = new discovery.Request();
            request.setAuthentication(auth);
            request.setQueriesList([query]);
            const payload = request.serializeBinary();
            const signed = new discovery.SignedRequest();
            signed.setPayload(payload);
            signed.setSignature(await signer(createHash('sha256').update(payload).digest()));
            const response = await new Promise((resolve, reject) =>
                client.discover(signed, { deadline: Date.now() + 5000 }, (err, value) =>
                    err ? reject(err) : resolve(value),
                ),
            );
            const result = response.getResultsList()[0];
            if (result === undefined) throw new Error('empty discovery response');
            if (result.hasError()) throw new Error(result.getError().getContent());
            return result;
        },
    };
}

function pemToDer(pem) {
    const base64 = pem
        .toString('utf8')
        .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
        .replace(/\s+/g, '');
    return Buffer.from(base64, 'base64');
}

/** What `peer` still lacks, or '' when it has converged. */
async function lacking(client, options, orgs) {
    const query = new discovery.Query();
    query.setChannel(options.channel);
    if (options.chaincode === undefined) {
        query.setPeerQuery(new discovery.PeerMembershipQuery());
        const result = await client.query(query);
        const seen = new Set();
        for (const [mspId, peers] of result.getMembers().getPeersByOrgMap().entries()) {
            if (peers.getPeersList().length > 0) seen.add(mspId);
        }
        const missing = orgs.filter((mspId) => !seen.has(mspId));
        return missing.length === 0 ? '' : `sees no peer of ${missing.join(', ')}`;
    }
    const call = new peerProtos.ChaincodeCall();
    call.setName(options.chaincode);
    const interest = new peerProtos.ChaincodeInterest();
    interest.setChaincodesList([call]);
    const ccQuery = new discovery.ChaincodeQuery();
    ccQuery.setInterestsList([interest]);
    query.setCcQuery(ccQuery);
    const result = await client.query(query);
    const descriptor = result.getCcQueryRes().getContentList()[0];
    if (descriptor === undefined || descriptor.getLayoutsList().length === 0) return 'has no endorsement layout';
    const endorsing = new Set();
    for (const peers of descriptor.getEndorsersByGroupsMap().values()) {
        for (const p of peers.getPeersList()) {
            const id = msp.SerializedIdentity.deserializeBinary(p.getIdentity_asU8());
            endorsing.add(id.getMspid());
        }
    }
    const missing = orgs.filter((mspId) => !endorsing.has(mspId));
    return missing.length === 0 ? '' : `lists no endorser of ${missing.join(', ')}`;
}

async function main() {
    const options = parseArgs(process.argv.slice(2));
    const orgs = options.peers.map((p) => p.mspId);
    const clients = options.peers.map((peer) => ({ peer, client: openPeer(peer) }));
    const what = options.chaincode === undefined ? 'peer membership' : `endorsers of chaincode ${options.chaincode}`;
    const started = Date.now();
    const deadline = started + options.timeout * 1000;
    const state = new Map();
    try {
        for (;;) {
            for (const { peer, client } of clients) {
                let status;
                try {
                    status = await lacking(client, options, orgs);
                } catch (err) {
                    status = `discovery failed: ${err.details ?? err.message}`;
                }
                state.set(peer.org, status);
            }
            const pending = [...state.entries()].filter(([, status]) => status !== '');
            if (pending.length === 0) {
                const seconds = ((Date.now() - started) / 1000).toFixed(1);
                console.error(
                    `[m2m-network] discovery converged (${what}) on all ${clients.length} peers after ${seconds}s`,
                );
                return 0;
            }
            if (Date.now() > deadline) {
                console.error(`[m2m-network] discovery did not converge (${what}) within ${options.timeout}s:`);
                for (const [org, status] of pending) console.error(`  ${org}: ${status}`);
                return 1;
            }
            await setTimeout(500);
        }
    } finally {
        for (const { client } of clients) client.close();
    }
}

main().then(
    (code) => process.exit(code),
    (err) => {
        console.error(`[m2m-network] discovery probe: ${err.message}`);
        process.exit(2);
    },
);
