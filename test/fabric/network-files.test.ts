/**
 * Validation of fabric-network/: every YAML and JSON file parses, and the files agree with each
 * other — organisations, MSP IDs, host names, ports and crypto paths are the same in
 * crypto-config.yaml, both configtx.yaml files, the Compose file, the native scripts' table
 * (scripts/lib.sh) and the connection files. Fabric's own tools (cryptogen, configtxgen) are run
 * too when they are on PATH; without them that test is reported as skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { parse } from 'yaml';

import { ENV_NAMES, parseEnvFile, readConnectionFile } from '@m2m-fabric/sdk';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const NET = join(ROOT, 'fabric-network');
const DOMAIN = 'm2m.example.com';

type Yaml = Record<string, unknown>;
async function readYaml(path: string): Promise<Yaml> {
    // uniqueKeys: a repeated key is an error (Go's yaml would silently keep the last one).
    return parse(await readFile(join(NET, path), 'utf8'), { merge: true, uniqueKeys: true, strict: true }) as Yaml;
}
function get(value: unknown, ...keys: (string | number)[]): unknown {
    let current = value;
    for (const key of keys) current = (current as Record<string | number, unknown>)[key];
    return current;
}
function list(value: unknown): unknown[] {
    assert.ok(Array.isArray(value), `expected a list, got ${JSON.stringify(value)}`);
    return value;
}

/** The network table of scripts/lib.sh: the one place ports and MSP IDs are defined. */
interface Topology {
    orgs: string[];
    msp: Record<string, string>;
    peerPort: Record<string, number>;
    peerOpsPort: Record<string, number>;
    ccaasPort: Record<string, number>;
    ordererPort: Record<string, number>;
    ordererAdminPort: Record<string, number>;
    ordererOpsPort: Record<string, number>;
}
async function readTopology(): Promise<Topology> {
    const text = await readFile(join(NET, 'scripts', 'lib.sh'), 'utf8');
    const assoc = (name: string): Record<string, string> => {
        const match = new RegExp(`declare -A ${name}=\\(([^)]*)\\)`).exec(text);
        assert.ok(match, `${name} not found in lib.sh`);
        const pairs = [...(match[1] ?? '').matchAll(/\[(\w+)\]=(\w+)/g)].map((m): [string, string] => [
            m[1] ?? '',
            m[2] ?? '',
        ]);
        return Object.fromEntries(pairs);
    };
    const numbers = (name: string): Record<string, number> =>
        Object.fromEntries(Object.entries(assoc(name)).map(([k, v]) => [k, Number(v)]));
    const orgs = /PEER_ORGS=\(([^)]*)\)/.exec(text)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
    return {
        orgs,
        msp: assoc('ORG_MSP'),
        peerPort: numbers('PEER_PORT'),
        peerOpsPort: numbers('PEER_OPS_PORT'),
        ccaasPort: numbers('CCAAS_PORT'),
        ordererPort: numbers('ORDERER_PORT'),
        ordererAdminPort: numbers('ORDERER_ADMIN_PORT'),
        ordererOpsPort: numbers('ORDERER_OPS_PORT'),
    };
}

const peerHost = (org: string): string => `peer0.${org}.${DOMAIN}`;
const ordererHost = (i: number | string): string => `orderer${i}.${DOMAIN}`;
/** Paths cryptogen creates (relative to fabric-network/), from crypto-config.yaml's naming rules. */
const crypto = {
    peerOrgMsp: (org: string) => `organizations/peerOrganizations/${org}.${DOMAIN}/msp`,
    peerTlsCa: (org: string) =>
        `organizations/peerOrganizations/${org}.${DOMAIN}/tlsca/tlsca.${org}.${DOMAIN}-cert.pem`,
    peerNode: (org: string) => `organizations/peerOrganizations/${org}.${DOMAIN}/peers/${peerHost(org)}`,
    user: (org: string) => `organizations/peerOrganizations/${org}.${DOMAIN}/users/User1@${org}.${DOMAIN}/msp`,
    ordererOrgMsp: `organizations/ordererOrganizations/${DOMAIN}/msp`,
    ordererNode: (i: number | string) => `organizations/ordererOrganizations/${DOMAIN}/orderers/${ordererHost(i)}`,
};

// SmartBFT options of Fabric 3's configtx.yaml (sampleconfig).
const SMARTBFT_OPTIONS = [
    'RequestBatchMaxCount',
    'RequestBatchMaxBytes',
    'RequestBatchMaxInterval',
    'IncomingMessageBufferSize',
    'RequestPoolSize',
    'RequestForwardTimeout',
    'RequestComplainTimeout',
    'RequestAutoRemoveTimeout',
    'ViewChangeResendInterval',
    'ViewChangeTimeout',
    'LeaderHeartbeatTimeout',
    'LeaderHeartbeatCount',
    'CollectTimeout',
];

const PROFILES = {
    'config/configtx.yaml': { M2MRaftDev: [0], M2MRaftDevLocal: [0], M2MRaft: [0, 1, 2], M2MRaftLocal: [0, 1, 2] },
    'config/bft/configtx.yaml': { M2MSmartBFT: [0, 1, 2, 3], M2MSmartBFTLocal: [0, 1, 2, 3] },
} as const;

void describe('fabric-network files', () => {
    void it('the network table covers four organisations and four orderers with distinct ports', async () => {
        const t = await readTopology();
        assert.deepEqual(t.orgs, ['csp', 'foga', 'fogb', 'manufacturer']);
        assert.deepEqual(t.msp, { csp: 'CSPMSP', foga: 'FogAMSP', fogb: 'FogBMSP', manufacturer: 'ManufacturerMSP' });
        const ports = [
            ...Object.values(t.peerPort),
            ...Object.values(t.peerPort).map((p) => p + 1),
            ...Object.values(t.peerOpsPort),
            ...Object.values(t.ccaasPort),
            ...Object.values(t.ordererPort),
            ...Object.values(t.ordererAdminPort),
            ...Object.values(t.ordererOpsPort),
        ];
        assert.equal(new Set(ports).size, ports.length, `a port is used twice: ${ports.join(',')}`);
    });

    void it('crypto-config.yaml defines every organisation and orderer, with localhost names for native runs', async () => {
        const t = await readTopology();
        const doc = await readYaml('config/crypto-config.yaml');
        const ordererOrg = list(doc.OrdererOrgs)[0] as Yaml;
        assert.equal(ordererOrg.Domain, DOMAIN);
        assert.equal(ordererOrg.EnableNodeOUs, true);
        const specs = list(ordererOrg.Specs) as Yaml[];
        assert.deepEqual(
            specs.map((s) => s.Hostname),
            Object.keys(t.ordererPort).map((i) => `orderer${i}`),
        );
        for (const spec of specs) assert.deepEqual(spec.SANS, ['localhost', '127.0.0.1']);
        const peerOrgs = list(doc.PeerOrgs) as Yaml[];
        assert.deepEqual(
            peerOrgs.map((o) => o.Domain),
            t.orgs.map((org) => `${org}.${DOMAIN}`),
        );
        for (const org of peerOrgs) {
            // NodeOUs give the peer/client/admin roles the policies below rely on.
            assert.equal(org.EnableNodeOUs, true);
            assert.deepEqual(get(org, 'Template', 'SANS'), ['localhost', '127.0.0.1']);
            assert.equal(get(org, 'Users', 'Count'), 1);
        }
    });

    for (const [file, profiles] of Object.entries(PROFILES)) {
        void it(`${file}: organisations, anchor peers, consenters and crypto paths agree with the table`, async () => {
            const t = await readTopology();
            const doc = await readYaml(file);
            const base = dirname(join(NET, file));
            const cryptoPath = (path: unknown): string => relative(NET, resolve(base, String(path)));
            assert.deepEqual(Object.keys(doc.Profiles as Yaml).sort(), Object.keys(profiles).sort());
            for (const [name, ordererList] of Object.entries(profiles)) {
                const orderers = ordererList as readonly number[];
                const local = name.endsWith('Local');
                const bft = name.startsWith('M2MSmartBFT');
                const profile = get(doc, 'Profiles', name) as Yaml;
                // Only keys configtxgen's Orderer section knows (a mis-indented option block lands here).
                const ordererKeys = Object.keys(get(profile, 'Orderer') as Yaml);
                const known = ['OrdererType', 'BatchTimeout', 'BatchSize', 'Organizations', 'Policies', 'Capabilities'];
                const consensusKeys = bft ? ['SmartBFT', 'ConsenterMapping'] : ['EtcdRaft'];
                assert.deepEqual(ordererKeys.sort(), [...known, ...consensusKeys].sort(), name);
                if (bft) {
                    assert.deepEqual(
                        Object.keys(get(profile, 'Orderer', 'SmartBFT') as Yaml).sort(),
                        [...SMARTBFT_OPTIONS].sort(),
                    );
                } else {
                    assert.deepEqual(Object.keys(get(profile, 'Orderer', 'EtcdRaft', 'Options') as Yaml).sort(), [
                        'ElectionTick',
                        'HeartbeatTick',
                        'MaxInflightBlocks',
                        'SnapshotIntervalSize',
                        'TickInterval',
                    ]);
                }
                assert.deepEqual(get(profile, 'Capabilities'), bft ? { V3_0: true } : { V2_0: true }, name);
                assert.deepEqual(get(profile, 'Application', 'Capabilities'), { V2_5: true });
                assert.equal(get(profile, 'Application', 'Policies', 'Endorsement', 'Rule'), 'MAJORITY Endorsement');
                assert.equal(
                    get(profile, 'Application', 'Policies', 'LifecycleEndorsement', 'Rule'),
                    'MAJORITY Endorsement',
                );

                const apps = list(get(profile, 'Application', 'Organizations')) as Yaml[];
                assert.deepEqual(
                    apps.map((o) => o.ID),
                    t.orgs.map((org) => t.msp[org]),
                );
                apps.forEach((app, index) => {
                    const org = t.orgs[index] ?? '';
                    const msp = t.msp[org] ?? '';
                    assert.equal(app.Name, msp);
                    assert.equal(cryptoPath(app.MSPDir), crypto.peerOrgMsp(org));
                    // Anchor peers must be in the first block: discovery needs them to find other orgs.
                    assert.deepEqual(app.AnchorPeers, [
                        { Host: local ? '127.0.0.1' : peerHost(org), Port: t.peerPort[org] },
                    ]);
                    for (const [policy, rule] of Object.entries(app.Policies as Record<string, { Rule: string }>)) {
                        const msps = [...rule.Rule.matchAll(/'(\w+)\.\w+'/g)].map((m) => m[1]);
                        assert.ok(
                            msps.length > 0 && msps.every((m) => m === msp),
                            `${name} ${msp} ${policy}: ${rule.Rule}`,
                        );
                    }
                });

                const ordererOrgs = list(get(profile, 'Orderer', 'Organizations')) as Yaml[];
                assert.equal(ordererOrgs.length, 1);
                const ordererOrg = ordererOrgs[0] as Yaml;
                assert.equal(ordererOrg.ID, 'OrdererMSP');
                assert.equal(cryptoPath(ordererOrg.MSPDir), crypto.ordererOrgMsp);
                const hostOf = (i: number): string => (local ? '127.0.0.1' : ordererHost(i));
                assert.deepEqual(
                    ordererOrg.OrdererEndpoints,
                    orderers.map((i) => `${hostOf(i)}:${t.ordererPort[i]}`),
                );
                const consenters = list(
                    bft
                        ? get(profile, 'Orderer', 'ConsenterMapping')
                        : get(profile, 'Orderer', 'EtcdRaft', 'Consenters'),
                ) as Yaml[];
                assert.equal(get(profile, 'Orderer', 'OrdererType'), bft ? 'BFT' : 'etcdraft');
                assert.equal(consenters.length, orderers.length);
                consenters.forEach((consenter, index) => {
                    const i = orderers[index] ?? -1;
                    assert.equal(consenter.Host, hostOf(i));
                    assert.equal(consenter.Port, t.ordererPort[i]);
                    assert.equal(cryptoPath(consenter.ClientTLSCert), `${crypto.ordererNode(i)}/tls/server.crt`);
                    assert.equal(cryptoPath(consenter.ServerTLSCert), `${crypto.ordererNode(i)}/tls/server.crt`);
                    if (bft) {
                        assert.equal(consenter.ID, index + 1);
                        assert.equal(consenter.MSPID, 'OrdererMSP');
                        assert.equal(
                            cryptoPath(consenter.Identity),
                            `${crypto.ordererNode(i)}/msp/signcerts/${ordererHost(i)}-cert.pem`,
                        );
                    }
                });
                if (bft) {
                    // n = 3f + 1 with f = 1.
                    assert.equal(consenters.length, 4);
                    assert.ok(get(profile, 'Orderer', 'SmartBFT'));
                }
                const batch = get(profile, 'Orderer', 'BatchTimeout');
                assert.match(String(batch), /^\d+(ms|s)$/);
            }
        });
    }

    void it('Fabric 2.5 configtxgen can read config/configtx.yaml: no Fabric-3-only keys in it', async () => {
        const text = (await readFile(join(NET, 'config', 'configtx.yaml'), 'utf8'))
            .split('\n')
            .filter((line) => !line.trim().startsWith('#'))
            .join('\n');
        for (const key of ['ConsenterMapping', 'SmartBFT', 'V3_0']) assert.ok(!text.includes(key), key);
        // Top-level keys are exactly those configtxgen's TopLevel struct accepts.
        const doc = await readYaml('config/configtx.yaml');
        const bft = await readYaml('config/bft/configtx.yaml');
        const allowed = ['Organizations', 'Capabilities', 'Application', 'Orderer', 'Channel', 'Profiles'];
        assert.deepEqual(Object.keys(doc).sort(), [...allowed].sort());
        assert.deepEqual(Object.keys(bft).sort(), [...allowed].sort());
        // The two files describe the same peer organisations.
        const orgs = (d: Yaml): unknown =>
            (list(d.Organizations) as Yaml[])
                .filter((o) => o.ID !== 'OrdererMSP')
                .map((o) => ({ ...o, MSPDir: String(o.MSPDir).replace(/^(\.\.\/)+/, '') }));
        assert.deepEqual(orgs(bft), orgs(doc));
    });

    void it('compose.yaml runs the official images, no Docker socket, and matches the table', async () => {
        const t = await readTopology();
        const doc = await readYaml('compose/compose.yaml');
        const services = doc.services as Record<string, Yaml>;
        const env = (service: Yaml): Record<string, string> =>
            Object.fromEntries(
                (list(service.environment) as string[]).map((line) => [
                    line.slice(0, line.indexOf('=')),
                    line.slice(line.indexOf('=') + 1),
                ]),
            );
        const text = await readFile(join(NET, 'compose', 'compose.yaml'), 'utf8');
        assert.ok(!text.includes('docker.sock'), 'peers must not get the Docker socket: chaincode runs as a service');

        for (const [i, port] of Object.entries(t.ordererPort)) {
            const service = services[ordererHost(i)];
            assert.ok(service, ordererHost(i));
            assert.match(String(service.image), /^hyperledger\/fabric-orderer:\$\{FABRIC_VERSION:-2\.5\}$/);
            const e = env(service);
            assert.equal(e.ORDERER_GENERAL_LISTENPORT, String(port));
            assert.equal(e.ORDERER_ADMIN_LISTENADDRESS, `0.0.0.0:${t.ordererAdminPort[i]}`);
            assert.equal(e.ORDERER_OPERATIONS_LISTENADDRESS, `0.0.0.0:${t.ordererOpsPort[i]}`);
            assert.equal(e.ORDERER_GENERAL_BOOTSTRAPMETHOD, 'none');
            assert.deepEqual(service.ports, [
                `${port}:${port}`,
                `${t.ordererAdminPort[i]}:${t.ordererAdminPort[i]}`,
                `${t.ordererOpsPort[i]}:${t.ordererOpsPort[i]}`,
            ]);
            const volumes = list(service.volumes) as string[];
            assert.ok(volumes.includes(`../${crypto.ordererNode(i)}/msp:/var/hyperledger/orderer/msp:ro`));
            assert.ok(volumes.includes(`../${crypto.ordererNode(i)}/tls:/var/hyperledger/orderer/tls:ro`));
            const expectedProfiles = { '0': undefined, '1': ['raft3', 'bft'], '2': ['raft3', 'bft'], '3': ['bft'] }[i];
            assert.deepEqual(service.profiles, expectedProfiles);
        }
        const configtx = await readYaml('config/configtx.yaml');
        for (const org of t.orgs) {
            const service = services[peerHost(org)];
            assert.ok(service, peerHost(org));
            assert.match(String(service.image), /^hyperledger\/fabric-peer:\$\{FABRIC_VERSION:-2\.5\}$/);
            const e = env(service);
            const port = t.peerPort[org] ?? 0;
            assert.equal(e.CORE_PEER_LOCALMSPID, t.msp[org]);
            assert.equal(e.CORE_PEER_LISTENADDRESS, `0.0.0.0:${port}`);
            assert.equal(e.CORE_PEER_CHAINCODELISTENADDRESS, `0.0.0.0:${port + 1}`);
            // The gossip external endpoint is the anchor peer address in the channel's first block.
            const anchor = (
                list(get(configtx, 'Profiles', 'M2MRaftDev', 'Application', 'Organizations')) as Yaml[]
            ).find((o) => o.ID === t.msp[org])?.AnchorPeers as { Host: string; Port: number }[];
            assert.equal(e.CORE_PEER_GOSSIP_EXTERNALENDPOINT, `${anchor[0]?.Host}:${anchor[0]?.Port}`);
            assert.equal(e.CORE_PEER_GOSSIP_BOOTSTRAP, `${peerHost(org)}:${port}`);
            assert.equal(e.CORE_OPERATIONS_LISTENADDRESS, `0.0.0.0:${t.peerOpsPort[org]}`);
            assert.deepEqual(service.ports, [`${port}:${port}`, `${t.peerOpsPort[org]}:${t.peerOpsPort[org]}`]);
            const volumes = list(service.volumes) as string[];
            assert.ok(volumes.includes(`../${crypto.peerNode(org)}/msp:/etc/hyperledger/peer/msp:ro`));
            assert.ok(volumes.includes(`../${crypto.peerNode(org)}/tls:/etc/hyperledger/peer/tls:ro`));
            // The chaincode server the peer dials exists, and listens where the peer dials it.
            const builder = JSON.parse(e.CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG ?? '{}') as { ccaddress: string };
            const [ccHost, ccPort] = builder.ccaddress.split(':');
            const cc = services[ccHost ?? ''];
            assert.ok(cc, `chaincode service ${ccHost}`);
            assert.equal(env(cc).CHAINCODE_SERVER_ADDRESS, `0.0.0.0:${ccPort}`);
            assert.deepEqual(cc.profiles, ['chaincode']);
        }
        assert.equal(Object.keys(services).length, 4 + 4 + 4);
    });

    void it('native.sh gives every peer its own ports, data dir and chaincode address from the table', async () => {
        const text = await readFile(join(NET, 'scripts', 'native.sh'), 'utf8');
        for (const line of [
            'CORE_PEER_LISTENADDRESS=127.0.0.1:${port}',
            'CORE_PEER_GOSSIP_EXTERNALENDPOINT=127.0.0.1:${port}',
            'CORE_PEER_FILESYSTEMPATH=${dir}/data',
            'CORE_OPERATIONS_LISTENADDRESS=127.0.0.1:${PEER_OPS_PORT[${org}]}',
            'CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG={"ccaddress":"127.0.0.1:${CCAAS_PORT[${org}]}"}',
            'CORE_CHAINCODE_EXTERNALBUILDERS=[{name: ccaas_builder, path: ${builder}, propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}]',
            'ORDERER_GENERAL_LISTENPORT=${ORDERER_PORT[$i]}',
            'ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:${ORDERER_ADMIN_PORT[$i]}',
            'ORDERER_FILELEDGER_LOCATION=${dir}/data',
            'CHAINCODE_SERVER_ADDRESS=127.0.0.1:${CCAAS_PORT[${org}]}',
            'CHAINCODE_ID=${package_id}',
        ]) {
            assert.ok(text.includes(line), `native.sh lacks ${line}`);
        }
        const lib = await readFile(join(NET, 'scripts', 'lib.sh'), 'utf8');
        // The native profiles are the *Local ones (everything on 127.0.0.1).
        assert.ok(lib.includes('echo "M2MRaftDev${suffix}"') && lib.includes('[[ "$1" == native ]] && suffix="Local"'));
    });

    void it('connection files: .env and .json agree, and name the right peer, CA, MSP and User1 identity', async () => {
        const t = await readTopology();
        const dir = join(NET, 'connection');
        const files = (await readdir(dir)).sort();
        assert.deepEqual(
            files,
            t.orgs.flatMap((org) => [`${org}.env`, `${org}.json`]),
        );
        for (const org of t.orgs) {
            const fromEnv = readConnectionFile(join(dir, `${org}.env`));
            const fromJson = readConnectionFile(join(dir, `${org}.json`));
            assert.deepEqual(fromEnv, fromJson);
            assert.equal(fromEnv.peerEndpoint, `localhost:${t.peerPort[org]}`);
            assert.equal(fromEnv.hostAlias, peerHost(org));
            assert.equal(fromEnv.mspId, t.msp[org]);
            assert.equal(fromEnv.channelName, 'm2m');
            assert.equal(fromEnv.chaincodeName, 'm2m');
            assert.equal(relative(NET, fromEnv.tlsCaCertPath ?? ''), crypto.peerTlsCa(org));
            assert.equal(
                relative(NET, fromEnv.certPath ?? ''),
                `${crypto.user(org)}/signcerts/User1@${org}.${DOMAIN}-cert.pem`,
            );
            assert.equal(relative(NET, fromEnv.keyPath ?? ''), `${crypto.user(org)}/keystore`);
            const names = Object.keys(parseEnvFile(await readFile(join(dir, `${org}.env`), 'utf8'), org));
            assert.ok(names.every((n) => (Object.values(ENV_NAMES) as string[]).includes(n)));
        }
    });

    void it('chaincode-as-a-service package: metadata, connection template, Dockerfile', async () => {
        const metadata = JSON.parse(await readFile(join(NET, 'chaincode', 'metadata.json'), 'utf8')) as Yaml;
        assert.equal(metadata.type, 'ccaas');
        const connection = JSON.parse(await readFile(join(NET, 'chaincode', 'connection.json'), 'utf8')) as Yaml;
        assert.equal(connection.address, '{{.ccaddress}}');
        assert.equal(connection.tls_required, false);
        const dockerfile = await readFile(join(NET, 'chaincode', 'Dockerfile'), 'utf8');
        assert.match(dockerfile, /npm ci --omit=dev/);
        assert.match(dockerfile, /fabric-chaincode-node server --chaincode-address=/);
        assert.match(dockerfile, /--chaincode-id=\\"\$\{CHAINCODE_ID:-\$\{CORE_CHAINCODE_ID_NAME:\?/);
    });

    void it('package-ccaas.mjs writes a reproducible package and prints label:sha256', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'm2m-ccaas-'));
        try {
            const run = (out: string): string => {
                const result = spawnSync(
                    process.execPath,
                    [join(NET, 'scripts', 'package-ccaas.mjs'), '--label', 'm2m_2.0', '--out', out],
                    { encoding: 'utf8' },
                );
                assert.equal(result.status, 0, result.stderr);
                return result.stdout.trim();
            };
            const first = run(join(dir, 'a.tar.gz'));
            const second = run(join(dir, 'b.tar.gz'));
            assert.match(first, /^m2m_2\.0:[0-9a-f]{64}$/);
            assert.equal(first, second);
            const entries = untar(gunzipSync(await readFile(join(dir, 'a.tar.gz'))));
            assert.deepEqual([...entries.keys()], ['metadata.json', 'code.tar.gz']);
            assert.deepEqual(JSON.parse(entries.get('metadata.json')?.toString() ?? ''), {
                type: 'ccaas',
                label: 'm2m_2.0',
            });
            const code = untar(gunzipSync(entries.get('code.tar.gz') ?? Buffer.alloc(0)));
            assert.deepEqual([...code.keys()], ['connection.json']);
            assert.deepEqual(
                JSON.parse(code.get('connection.json')?.toString() ?? ''),
                JSON.parse(await readFile(join(NET, 'chaincode', 'connection.json'), 'utf8')),
            );
            const bad = spawnSync(
                process.execPath,
                [join(NET, 'scripts', 'package-ccaas.mjs'), '--label', 'bad label'],
                {
                    encoding: 'utf8',
                },
            );
            assert.equal(bad.status, 2);
            assert.match(bad.stderr, /invalid label/);
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });

    void it('stage-chaincode.mjs produces a self-contained package.json with the class-transformer pin', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'm2m-stage-'));
        try {
            const result = spawnSync(
                process.execPath,
                [join(NET, 'scripts', 'stage-chaincode.mjs'), '--out', dir, '--skip-build', '--skip-lock'],
                { encoding: 'utf8' },
            );
            assert.equal(result.status, 0, result.stderr);
            const staged = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Yaml;
            const source = JSON.parse(
                await readFile(join(ROOT, 'chaincode', 'contract', 'package.json'), 'utf8'),
            ) as Yaml;
            // Every dependency as in the source, but the workspace's protocol package travels packed.
            const protocolTarball = 'file:vendor/m2m-fabric-protocol-0.1.0.tgz';
            assert.deepEqual(staged.dependencies, {
                ...(source.dependencies as object),
                '@m2m-fabric/protocol': protocolTarball,
            });
            assert.ok((await readdir(join(dir, 'vendor'))).includes('m2m-fabric-protocol-0.1.0.tgz'));
            assert.deepEqual(staged.overrides, { 'class-transformer': '0.5.1' });
            assert.equal(get(staged, 'scripts', 'start'), 'fabric-chaincode-node start');
            assert.equal(staged.type, 'module');
            assert.equal(staged.devDependencies, undefined);
            const dist = await readdir(join(dir, 'dist'));
            assert.ok(dist.includes('index.js'));
            assert.ok(!dist.some((f) => f.endsWith('.d.ts')));
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });

    void it('scripts are valid bash (and pass shellcheck when it is installed)', (t) => {
        const scripts = ['lib.sh', 'network.sh', 'native.sh', 'deploy-chaincode.sh'].map((f) =>
            join(NET, 'scripts', f),
        );
        for (const script of scripts) {
            const result = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
            assert.equal(result.status, 0, `${script}: ${result.stderr}`);
        }
        const shellcheck = spawnSync('shellcheck', ['-x', ...scripts], { encoding: 'utf8', cwd: join(NET, 'scripts') });
        if (shellcheck.error !== undefined) {
            t.diagnostic('shellcheck not installed: only bash -n was run');
            return;
        }
        assert.equal(shellcheck.status, 0, shellcheck.stdout);
    });

    void it('network.sh explains what is missing when neither Docker nor the Fabric binaries are there', (t) => {
        const probe = spawnSync('bash', ['-c', 'command -v cryptogen && docker info'], { encoding: 'utf8' });
        if (probe.status === 0) {
            t.skip('Fabric binaries and a Docker engine are present here');
            return;
        }
        const result = spawnSync('bash', [join(NET, 'scripts', 'network.sh'), 'check'], {
            encoding: 'utf8',
            env: { ...process.env, PATH: `/usr/bin:/bin` },
        });
        assert.notEqual(result.status, 0);
        assert.match(
            result.stderr,
            /cannot run the compose network; missing: cryptogen, configtxgen, osnadmin, peer, /,
        );
        assert.match(result.stderr, /install-fabric\.sh/);
        assert.match(result.stderr, /--native/);
    });

    void it('root package.json has the network:up|down|deploy and test:fabric scripts', async () => {
        const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
            scripts: Record<string, string>;
        };
        assert.match(pkg.scripts['network:up'] ?? '', /fabric-network\/scripts\/network\.sh up/);
        assert.match(pkg.scripts['network:down'] ?? '', /fabric-network\/scripts\/network\.sh down/);
        assert.match(pkg.scripts['network:deploy'] ?? '', /fabric-network\/scripts\/network\.sh deploy/);
        assert.match(pkg.scripts['test:fabric'] ?? '', /build\/test\/fabric\/run\.js/);
        assert.ok(!(pkg.scripts.test ?? '').includes('test:fabric'));
    });

    void it('native.sh and compose.yaml set the same node settings (native adds only its paths and builder)', async () => {
        const native = await readFile(join(NET, 'scripts', 'native.sh'), 'utf8');
        /** Variable names of the node.env heredoc inside a shell function of native.sh. */
        const heredocKeys = (fn: string): Set<string> => {
            const body = new RegExp(`${fn}\\(\\) \\{[\\s\\S]*?<<EOF\\n([\\s\\S]*?)\\nEOF`).exec(native)?.[1];
            assert.ok(body, `no node.env heredoc in ${fn}`);
            return new Set(body.split('\n').map((line) => line.slice(0, line.indexOf('='))));
        };
        const compose = (await readYaml('compose/compose.yaml')).services as Record<string, Yaml>;
        const composeKeys = (service: string): Set<string> =>
            new Set((list(compose[service]?.environment) as string[]).map((line) => line.slice(0, line.indexOf('='))));
        const compare = (
            what: string,
            nativeKeys: Set<string>,
            composeSet: Set<string>,
            nativeOnly: string[],
        ): void => {
            assert.deepEqual(
                [...composeSet].filter((k) => !nativeKeys.has(k)),
                [],
                `${what}: set in compose.yaml, not in native.sh`,
            );
            assert.deepEqual(
                [...nativeKeys].filter((k) => !composeSet.has(k)).sort(),
                [...nativeOnly].sort(),
                `${what}: set only in native.sh`,
            );
        };
        // Inside the images FABRIC_CFG_PATH, the data paths and the ccaas builder come from the image's
        // own core.yaml/orderer.yaml; native nodes set them per node.
        compare('peer', heredocKeys('write_peer_env'), composeKeys(peerHost('foga')), [
            'FABRIC_CFG_PATH',
            'CORE_PEER_FILESYSTEMPATH',
            'CORE_LEDGER_SNAPSHOTS_ROOTDIR',
            'CORE_CHAINCODE_EXTERNALBUILDERS',
        ]);
        compare('orderer', heredocKeys('write_orderer_env'), composeKeys(ordererHost(0)), ['FABRIC_CFG_PATH']);
        compare('chaincode server', heredocKeys('cmd_chaincode_start'), composeKeys('cc.foga.m2m.example.com'), [
            'CORE_CHAINCODE_ID_NAME',
        ]);
        // The image reads the same two variables the native command does.
        const dockerfile = await readFile(join(NET, 'chaincode', 'Dockerfile'), 'utf8');
        for (const name of ['CHAINCODE_SERVER_ADDRESS', 'CHAINCODE_ID', 'CORE_CHAINCODE_ID_NAME']) {
            assert.ok(dockerfile.includes(`$${name}`) || dockerfile.includes(`\${${name}`), `Dockerfile lacks ${name}`);
        }
    });

    void it("compose.yaml passes a Compose implementation's own validation, for every profile", (t) => {
        // `docker compose` (v2) when installed, else docker-compose 1.29 (Debian package docker-compose):
        // both check the file against the Compose schema without a Docker engine.
        const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
        const v1 = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
        const command: string[] | undefined =
            v2.status === 0 ? ['docker', 'compose'] : v1.status === 0 ? ['docker-compose'] : undefined;
        if (command === undefined) {
            t.skip('neither docker compose nor docker-compose is installed');
            return;
        }
        const [program = '', ...prefix] = command;
        const cases: [string[], string[]][] = [
            [[], ['orderer0', ...['csp', 'foga', 'fogb', 'manufacturer'].map((o) => `peer0.${o}`)]],
            [
                ['--profile', 'raft3'],
                ['orderer0', 'orderer1', 'orderer2'],
            ],
            [
                ['--profile', 'bft', '--profile', 'chaincode'],
                ['orderer3', 'cc.csp', 'cc.manufacturer'],
            ],
        ];
        for (const [profiles, mustRun] of cases) {
            const args = [...prefix, '-p', 'm2m-fabric', '-f', join(NET, 'compose', 'compose.yaml'), ...profiles];
            const env = { ...process.env, FABRIC_VERSION: '3.1', CHAINCODE_ID: 'm2m_1.0:00' };
            const check = spawnSync(program, [...args, 'config', '-q'], { encoding: 'utf8', env });
            assert.equal(check.status, 0, `${command.join(' ')} ${profiles.join(' ')} config: ${check.stderr}`);
            const services = spawnSync(program, [...args, 'config', '--services'], { encoding: 'utf8', env });
            assert.equal(services.status, 0, services.stderr);
            const names = services.stdout.split('\n').filter(Boolean);
            // (docker-compose 1.29 lists every service whatever the profiles; v2 only the active ones.)
            for (const name of mustRun)
                assert.ok(names.includes(`${name}.${DOMAIN}`), `${profiles.join(' ')}: ${name}`);
        }
    });

    void it('npm run test:fabric without a network reports every test skipped, none failed', () => {
        const env = { ...process.env };
        delete env.FABRIC_CONNECTION;
        delete env.M2M_FABRIC_TEST_TARGET;
        // Inside `node --test` this variable makes a child report to the parent runner instead of printing TAP.
        delete env.NODE_TEST_CONTEXT;
        const result = spawnSync(process.execPath, [join(ROOT, 'build', 'test', 'fabric', 'run.js')], {
            encoding: 'utf8',
            env,
            timeout: 60_000,
        });
        assert.equal(result.error, undefined);
        assert.equal(result.status, 0, result.stderr);
        const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(result.stdout)?.[1]);
        assert.equal(count('fail'), 0);
        assert.equal(count('pass'), 0);
        assert.ok(count('skipped') >= 5, result.stdout);
        assert.match(result.stdout, /no Fabric network configured: set FABRIC_CONNECTION/);
    });

    void it('fog-node/: the board peer has the native peer settings, its chaincode server and fog gateway agree', async () => {
        const t = await readTopology();
        /** systemd EnvironmentFile: KEY=VALUE, # comments, a single-quoted value taken literally. */
        const envFile = async (name: string): Promise<Record<string, string>> =>
            Object.fromEntries(
                (await readFile(join(NET, 'fog-node', name), 'utf8'))
                    .split('\n')
                    .filter((line) => line !== '' && !line.startsWith('#'))
                    .map((line) => {
                        const value = line.slice(line.indexOf('=') + 1);
                        return [line.slice(0, line.indexOf('=')), value.replace(/^'(.*)'$/, '$1')];
                    }),
            );
        const peer = await envFile('peer.env');
        const native = await readFile(join(NET, 'scripts', 'native.sh'), 'utf8');
        const nativeKeys = /write_peer_env\(\) \{[\s\S]*?<<EOF\n([\s\S]*?)\nEOF/
            .exec(native)?.[1]
            ?.split('\n')
            .map((line) => line.slice(0, line.indexOf('=')));
        assert.deepEqual(Object.keys(peer).sort(), [...(nativeKeys ?? [])].sort());
        const port = t.peerPort.foga ?? 0;
        assert.equal(peer.CORE_PEER_LOCALMSPID, t.msp.foga);
        assert.equal(peer.CORE_PEER_LISTENADDRESS, `0.0.0.0:${port}`);
        assert.equal(peer.CORE_PEER_GOSSIP_EXTERNALENDPOINT, `${peerHost('foga')}:${port}`);
        assert.equal(peer.CORE_OPERATIONS_LISTENADDRESS, `127.0.0.1:${t.peerOpsPort.foga}`);
        const builder = JSON.parse(peer.CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG ?? '') as { ccaddress: string };
        const chaincode = await envFile('chaincode.env');
        assert.equal(builder.ccaddress, chaincode.CHAINCODE_SERVER_ADDRESS);
        assert.equal(chaincode.CHAINCODE_SERVER_ADDRESS, `127.0.0.1:${t.ccaasPort.foga}`);
        assert.match(chaincode.CHAINCODE_ID ?? '', /^m2m_[\w.+-]+:[0-9a-f]{64}$/);
        // The fog gateway's settings are valid for the CLI's own schema, and name this organisation's connection file.
        const fog = await envFile('fog.env');
        const { FOG_SCHEMA } = await import('@m2m-fabric/cli');
        const { loadConfig } = await import('@m2m-fabric/common');
        const loaded = loadConfig(FOG_SCHEMA, { env: fog });
        assert.equal(loaded['fog.id'], 'fog-a');
        assert.match(fog.FABRIC_CONNECTION ?? '', /\/foga\.env$/);
        assert.ok(fog.IPFS_API_URL, 'services on separate machines share one object store');
    });

    void it('fog-node/ systemd units pass systemd-analyze verify', (t) => {
        if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
            t.skip('systemd-analyze is not installed');
            return;
        }
        // An alternate root holding the units, their environment files, stand-ins for the programs
        // they start (verify checks those are executable) and the system's own units (targets).
        const root = mkdtempSync(join(tmpdir(), 'm2m-systemd-'));
        try {
            const units = readdirSync(join(NET, 'fog-node')).filter((f) => f.endsWith('.service'));
            assert.deepEqual(units.sort(), ['m2m-chaincode.service', 'm2m-fog.service', 'm2m-peer.service']);
            mkdirSync(join(root, 'etc', 'systemd', 'system'), { recursive: true });
            mkdirSync(join(root, 'etc', 'm2m'), { recursive: true });
            for (const unit of units) cpSync(join(NET, 'fog-node', unit), join(root, 'etc', 'systemd', 'system', unit));
            for (const file of ['peer.env', 'chaincode.env', 'fog.env']) {
                cpSync(join(NET, 'fog-node', file), join(root, 'etc', 'm2m', file));
            }
            for (const program of [
                'opt/fabric/bin/peer',
                'opt/m2m/chaincode/node_modules/.bin/fabric-chaincode-node',
                'usr/bin/node',
            ]) {
                mkdirSync(dirname(join(root, program)), { recursive: true });
                writeFileSync(join(root, program), '#!/bin/sh\n', { mode: 0o755 });
            }
            const system = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(d));
            if (system !== undefined)
                cpSync(system, join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
            const result = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
            assert.equal(result.status, 0, result.stderr);
            // Unknown keys and bad values are only warnings: none may appear.
            assert.equal(result.stderr, '');
        } finally {
            rmSync(root, { recursive: true, force: true });
        }
    });

    void it('cryptogen and configtxgen accept the configuration (when the Fabric binaries are on PATH)', async (t) => {
        const have = (tool: string): boolean => spawnSync('bash', ['-c', `command -v ${tool}`]).status === 0;
        if (!have('cryptogen') || !have('configtxgen')) {
            t.skip('cryptogen/configtxgen not on PATH (no Fabric binaries here)');
            return;
        }
        const dir = await mkdtemp(join(tmpdir(), 'm2m-configtxgen-'));
        try {
            // Generate crypto material where configtx.yaml expects it, in a copy of fabric-network/config.
            const copy = join(dir, 'fabric-network');
            assert.equal(spawnSync('mkdir', ['-p', copy]).status, 0);
            assert.equal(spawnSync('cp', ['-r', join(NET, 'config'), copy]).status, 0);
            const gen = spawnSync(
                'cryptogen',
                [
                    'generate',
                    `--config=${join(copy, 'config', 'crypto-config.yaml')}`,
                    `--output=${join(copy, 'organizations')}`,
                ],
                {
                    encoding: 'utf8',
                },
            );
            assert.equal(gen.status, 0, gen.stderr);
            const version = spawnSync('configtxgen', ['--version'], { encoding: 'utf8' }).stdout;
            const fabric3 = /Version: v?3\./.test(version);
            for (const [file, profiles] of Object.entries(PROFILES)) {
                if (file.includes('bft') && !fabric3) continue;
                for (const profile of Object.keys(profiles)) {
                    const block = join(dir, `${profile}.block`);
                    const result = spawnSync(
                        'configtxgen',
                        [
                            '-configPath',
                            dirname(join(copy, file)),
                            '-profile',
                            profile,
                            '-channelID',
                            'm2m',
                            '-outputBlock',
                            block,
                        ],
                        { encoding: 'utf8' },
                    );
                    assert.equal(result.status, 0, `${profile}: ${result.stderr}`);
                }
            }
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
});

/** Reads a ustar archive into name → content (regular files only). */
function untar(archive: Buffer): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    let offset = 0;
    while (offset + 512 <= archive.length) {
        const header = archive.subarray(offset, offset + 512);
        if (header.every((b) => b === 0)) break;
        const name = header.subarray(0, 100).toString('ascii').replace(/\0.*$/s, '');
        const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
        const stored = header
            .subarray(148, 156)
            .toString('ascii')
            .replace(/[\0 ].*$/s, '');
        const copy = Buffer.from(header);
        copy.fill(0x20, 148, 156);
        assert.equal(
            copy.reduce((sum, b) => sum + b, 0),
            parseInt(stored, 8),
            `checksum of ${name}`,
        );
        assert.equal(String.fromCharCode(header[156] ?? 0), '0', `${name} is a regular file`);
        files.set(name, archive.subarray(offset + 512, offset + 512 + size));
        offset += 512 + Math.ceil(size / 512) * 512;
    }
    return files;
}
