/**
 * The network scripts run end to end against stand-ins for the Fabric binaries. No Fabric binary
 * or Docker engine exists here, so each of cryptogen, configtxgen, orderer, peer, osnadmin (and
 * curl, npm) is replaced by a small shell script that records how it was called and answers as the
 * real tool does (JSON shapes of `peer lifecycle … -O json`, `osnadmin channel list`, the Raft
 * leader metric). What this checks is the scripts' own logic — every step runs, in order, with the
 * right organisation's identity, ports and files; approvals and commit follow the lifecycle; the
 * native processes start with their own settings and stop again — not Fabric's behaviour.
 *
 * It runs on a copy of fabric-network/ in a temporary directory; every stand-in process is a
 * `sleep` that `network:down` (or the cleanup below) stops.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
    chmodSync,
    cpSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    readdirSync,
    rmSync,
    statSync,
    writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const DOMAIN = 'm2m.example.com';
const ORGS = { csp: 'CSPMSP', foga: 'FogAMSP', fogb: 'FogBMSP', manufacturer: 'ManufacturerMSP' } as const;

/** Stand-ins; each appends `<tool> <args> | MSP=<CORE_PEER_LOCALMSPID>` to $CALLS. */
const STUBS: Record<string, string> = {
    cryptogen: `
out=""; for a in "$@"; do case "$a" in --output=*) out="\${a#--output=}" ;; esac; done
for org in csp foga fogb manufacturer; do
    d="$out/peerOrganizations/$org.${DOMAIN}"
    mkdir -p "$d/peers/peer0.$org.${DOMAIN}/tls" "$d/peers/peer0.$org.${DOMAIN}/msp/keystore" "$d/tlsca"
    echo key > "$d/peers/peer0.$org.${DOMAIN}/msp/keystore/priv_sk"
    echo key > "$d/peers/peer0.$org.${DOMAIN}/tls/server.key"
done
for i in 0 1 2 3; do mkdir -p "$out/ordererOrganizations/${DOMAIN}/orderers/orderer$i.${DOMAIN}/tls"; done`,
    configtxgen: `
while [ $# -gt 0 ]; do [ "$1" = -outputBlock ] && echo block > "$2"; shift; done`,
    orderer: `exec sleep 120`,
    osnadmin: `
case "$2" in
    list) printf 'Status: 200\\n{\\n\\t"name": "m2m",\\n\\t"status": "active"\\n}\\n' ;;
esac`,
    curl: `echo 'consensus_etcdraft_is_leader{channel="m2m"} 1'`,
    npm: `
case " $* " in
    *" --package-lock-only "*) echo '{"lockfileVersion": 3}' > package-lock.json ;;
    *" ci "*) mkdir -p node_modules/.bin && cp "$STUBS/fabric-chaincode-node" node_modules/.bin/ ;;
esac`,
    docker: `
echo "docker-env FABRIC_VERSION=\${FABRIC_VERSION:-} CHAINCODE_ID=\${CHAINCODE_ID:-}" >> "$CALLS"
exit 0`,
    // Stands in for scripts/discovery.mjs (M2M_DISCOVERY_PROBE): converged at once.
    discovery: `exit 0`,
    'fabric-chaincode-node': `
echo "fabric-chaincode-node $* | CHAINCODE_ID=$CHAINCODE_ID" >> "$CALLS"
exec sleep 120`,
    peer: `
S="$STATE"; M="$CORE_PEER_LOCALMSPID"
arg() { while [ $# -gt 0 ]; do [ "$1" = "$FLAG" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2 $3" in
    "node start "*) exec sleep 120 ;;
    "channel join "*) ;;
    "lifecycle chaincode install") pkg="$4"; label="$(basename "$pkg" .tar.gz)"
        echo "$label:$(sha256sum "$pkg" | cut -d' ' -f1)" >> "$S/installed-$M" ;;
    "lifecycle chaincode queryinstalled") printf '{"installed_chaincodes":['; sed 's/.*/{"package_id":"&"},/' "$S/installed-$M" 2>/dev/null | tr -d '\\n'; printf '{}]}\\n' ;;
    "lifecycle chaincode approveformyorg") FLAG=--sequence; seq="$(arg "$@")"; FLAG=--package-id; id="$(arg "$@")"
        grep -qx "$id" "$S/installed-$M" || { echo "package $id not installed on $M" >&2; exit 1; }
        [ -f "$S/lost-$M" ] || touch "$S/approved-$seq-$M" ;;
    "lifecycle chaincode checkcommitreadiness") FLAG=--sequence; seq="$(arg "$@")"; sep=""
        printf '{"approvals":{'
        for m in CSPMSP FogAMSP FogBMSP ManufacturerMSP; do
            if [ -f "$S/approved-$seq-$m" ]; then v=true; else v=false; fi; printf '%s"%s":%s' "$sep" "$m" "$v"; sep=,
        done
        printf '}}\\n' ;;
    "lifecycle chaincode commit") FLAG=--sequence; seq="$(arg "$@")"
        [ "$seq" -gt "$(cat "$S/committed" 2>/dev/null || echo 0)" ] || { echo "sequence $seq already committed" >&2; exit 1; }
        n=$(ls "$S"/approved-"$seq"-* 2>/dev/null | wc -l); [ "$n" -ge 3 ] || { echo "not enough approvals" >&2; exit 1; }
        echo "$seq" > "$S/committed" ;;
    "lifecycle chaincode querycommitted") [ -f "$S/committed" ] || { echo "Error: query failed with status: 404 - namespace m2m is not defined" >&2; exit 1; }
        echo "{\\"sequence\\": $(cat "$S/committed")}" ;;
    "chaincode query "*) [ -f "$S/committed" ] ;;
    *) echo "unexpected: peer $*" >&2; exit 1 ;;
esac`,
};

function bash(
    script: string,
    args: string[],
    env: NodeJS.ProcessEnv,
): { status: number | null; stdout: string; stderr: string } {
    return spawnSync('bash', [script, ...args], { encoding: 'utf8', env, timeout: 120_000 });
}

/** A copy of fabric-network/ and the compiled chaincode, and a Fabric release of stand-ins. */
function makeSandbox(): { dir: string; net: string; env: NodeJS.ProcessEnv } {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-scripts-'));
    // A repository copy holding what the scripts touch: fabric-network/ and the compiled chaincode.
    const net = join(dir, 'repo', 'fabric-network');
    for (const sub of ['scripts', 'config', 'chaincode', 'compose', 'connection']) {
        cpSync(join(ROOT, 'fabric-network', sub), join(net, sub), { recursive: true });
    }
    for (const pkg of ['contract', 'protocol']) {
        const from = join(ROOT, 'chaincode', pkg);
        const to = join(dir, 'repo', 'chaincode', pkg);
        cpSync(join(from, 'package.json'), join(to, 'package.json'));
        cpSync(join(from, 'dist'), join(to, 'dist'), { recursive: true });
    }
    // A Fabric release layout: bin/, config/, builders/ccaas/bin/.
    const release = join(dir, 'fabric');
    const stubs = join(dir, 'stubs');
    for (const d of ['bin', 'config', 'builders/ccaas/bin', 'state']) mkdirSync(join(release, d), { recursive: true });
    mkdirSync(stubs);
    writeFileSync(join(release, 'config', 'core.yaml'), 'peer: {}\n');
    writeFileSync(join(release, 'config', 'orderer.yaml'), 'General: {}\n');
    for (const b of ['detect', 'build', 'release']) {
        writeFileSync(join(release, 'builders/ccaas/bin', b), '#!/bin/sh\n', { mode: 0o755 });
    }
    for (const [name, body] of Object.entries(STUBS)) {
        const file = join(name === 'fabric-chaincode-node' ? stubs : join(release, 'bin'), name);
        const record =
            name === 'fabric-chaincode-node' ? '' : `echo "${name} $* | MSP=\${CORE_PEER_LOCALMSPID:-}" >> "$CALLS"\n`;
        writeFileSync(file, `#!/bin/sh\n${record}${body.trim()}\n`);
        chmodSync(file, 0o755);
    }
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${join(release, 'bin')}:${process.env.PATH ?? ''}`,
        CALLS: join(dir, 'calls.log'),
        STATE: join(release, 'state'),
        STUBS: stubs,
        FABRIC_CFG_PATH: '',
        ORDERING_WAIT_SECONDS: '10',
        M2M_DISCOVERY_PROBE: join(release, 'bin', 'discovery'),
    };
    delete env.CORE_PEER_LOCALMSPID;
    writeFileSync(env.CALLS as string, '');
    return { dir, net, env };
}

void describe('network.sh up --native, deploy, upgrade and down (Fabric binaries stood in for)', () => {
    let dir: string;
    let net: string;
    let env: NodeJS.ProcessEnv;
    const calls = (): string[] => readFileSync(join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);
    const pids = (): number[] => {
        const native = join(net, '.native');
        if (!existsSync(native)) return [];
        return readdirSync(native)
            .map((node) => join(native, node, 'node.pid'))
            .filter((file) => existsSync(file))
            .map((file) => Number(readFileSync(file, 'utf8')));
    };
    /** Runs, and is no zombie (this container's init reaps orphans late). */
    const alive = (pid: number): boolean => {
        try {
            process.kill(pid, 0);
        } catch {
            return false;
        }
        const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
        return stat !== '' && !stat.startsWith('Z');
    };

    before(() => {
        ({ dir, net, env } = makeSandbox());
    });

    after(() => {
        bash(join(net, 'scripts', 'network.sh'), ['down'], env);
        for (const pid of pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
    });

    void it('up --native: crypto, channel block, every node with its own settings, orderer and peers joined', () => {
        const result = bash(join(net, 'scripts', 'network.sh'), ['up', '--native'], env);
        assert.equal(result.status, 0, result.stderr);
        const log = calls();
        assert.ok(log.some((l) => l.startsWith(`cryptogen generate --config=${net}/config/crypto-config.yaml`)));
        assert.ok(
            log.some((l) => /^configtxgen -configPath \S+\/config -profile M2MRaftDevLocal -channelID m2m/.test(l)),
        );
        assert.deepEqual(
            log.filter((l) => l.startsWith('osnadmin channel join')).map((l) => /-o (\S+)/.exec(l)?.[1]),
            ['localhost:7053'],
        );
        const joins = log.filter((l) => l.startsWith('peer channel join'));
        assert.deepEqual(
            joins.map((l) => l.slice(l.indexOf('MSP=') + 4)),
            Object.values(ORGS),
        );
        // Then it waits for service discovery: every peer asked, as its organisation's admin.
        const discovery = log.findIndex((l) => l.startsWith('discovery '));
        assert.ok(discovery > log.lastIndexOf(joins.at(-1) ?? ''), 'discovery is awaited after the last join');
        const probe = log[discovery] ?? '';
        assert.match(probe, /--channel m2m --timeout \d+ /);
        assert.doesNotMatch(probe, /--chaincode/);
        assert.deepEqual(
            [...probe.matchAll(/--peer (\w+),(\w+),localhost:(\d+),/g)].map((m) => m.slice(1)),
            [
                ['csp', 'CSPMSP', '7051'],
                ['foga', 'FogAMSP', '8051'],
                ['fogb', 'FogBMSP', '9051'],
                ['manufacturer', 'ManufacturerMSP', '10051'],
            ],
        );
        assert.match(
            probe,
            /,\S+\/users\/Admin@csp\.m2m\.example\.com\/msp,\S+\/users\/Admin@csp\.m2m\.example\.com\/tls /,
        );
        // Private keys made owner-only.
        const key = join(
            net,
            'organizations/peerOrganizations/foga.m2m.example.com/peers/peer0.foga.m2m.example.com/msp/keystore/priv_sk',
        );
        assert.equal(statSync(key).mode & 0o777, 0o600);
        // Five running nodes (1 orderer, 4 peers), each with its own node.env.
        assert.equal(pids().filter(alive).length, 5);
        const fogEnv = readFileSync(join(net, '.native', `peer0.foga.${DOMAIN}`, 'node.env'), 'utf8');
        assert.match(fogEnv, /^CORE_PEER_LISTENADDRESS=127\.0\.0\.1:8051$/m);
        assert.match(fogEnv, /^CORE_PEER_FILESYSTEMPATH=.*\/\.native\/peer0\.foga\.m2m\.example\.com\/data$/m);
        assert.match(fogEnv, /^CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG=\{"ccaddress":"127\.0\.0\.1:9902"\}$/m);
        assert.match(fogEnv, /^CORE_CHAINCODE_EXTERNALBUILDERS=\[\{name: ccaas_builder, path: \S+\/builders\/ccaas, /m);
        const ordererEnv = readFileSync(join(net, '.native', `orderer0.${DOMAIN}`, 'node.env'), 'utf8');
        assert.match(ordererEnv, /^ORDERER_GENERAL_BOOTSTRAPMETHOD=none$/m);
        assert.match(ordererEnv, /^ORDERER_ADMIN_LISTENADDRESS=127\.0\.0\.1:7053$/m);
        // A second up is refused while this one runs.
        const again = bash(join(net, 'scripts', 'network.sh'), ['up', '--native'], env);
        assert.notEqual(again.status, 0);
        assert.match(again.stderr, /a network is already up/);
    });

    void it('deploy: install on every peer, approve per org, readiness, commit with all peers, servers with the package ID', async () => {
        writeFileSync(env.CALLS as string, '');
        const result = bash(join(net, 'scripts', 'network.sh'), ['deploy', '--no-build'], env);
        assert.equal(result.status, 0, result.stderr);
        const packageId = result.stdout.trim().split('\n').at(-1) ?? '';
        assert.match(packageId, /^m2m_1\.0:[0-9a-f]{64}$/);
        // The chaincode servers are background processes: wait until all four have logged their start.
        const serverLines = (): number => calls().filter((l) => l.startsWith('fabric-chaincode-node server')).length;
        for (let i = 0; i < 100 && serverLines() < 4; i++) await sleep(100);
        const log = calls();
        const msps = (prefix: string): string[] =>
            log.filter((l) => l.startsWith(prefix)).map((l) => l.slice(l.indexOf('MSP=') + 4));
        assert.deepEqual(msps('peer lifecycle chaincode install'), Object.values(ORGS));
        assert.deepEqual(msps('peer lifecycle chaincode approveformyorg'), Object.values(ORGS));
        for (const line of log.filter((l) => l.startsWith('peer lifecycle chaincode approveformyorg'))) {
            assert.match(line, new RegExp(`--package-id ${packageId} --sequence 1`));
            assert.match(
                line,
                /-o localhost:7050 --ordererTLSHostnameOverride orderer0\.m2m\.example\.com --tls --cafile /,
            );
        }
        const commit = log.find((l) => l.startsWith('peer lifecycle chaincode commit')) ?? '';
        assert.equal(
            [...commit.matchAll(/--peerAddresses localhost:(\d+)/g)].map((m) => m[1]).join(','),
            '7051,8051,9051,10051',
        );
        // Servers are (re)started after the commit, each with the package ID and its own address.
        const commitIndex = log.indexOf(commit);
        const servers = log.filter((l) => l.startsWith('fabric-chaincode-node server'));
        assert.equal(servers.length, 4);
        assert.ok(log.indexOf(servers[0] ?? '') > commitIndex, 'servers start after the commit');
        // (They log as they start, in any order.)
        assert.deepEqual(
            servers.map((line) => /--chaincode-address=(\S+) --chaincode-id=(\S+)/.exec(line)?.slice(1)).sort(),
            ['9901', '9902', '9903', '9904'].map((port) => [`127.0.0.1:${port}`, packageId]),
        );
        assert.equal(msps('peer chaincode query').length, 4, 'every peer is asked whether its chaincode answers');
        // Deploy reports success only once every peer's discovery lists endorsers of the chaincode.
        const discovery = log.findIndex((l) => l.startsWith('discovery ') && l.includes('--chaincode m2m'));
        assert.ok(discovery > log.findLastIndex((l) => l.startsWith('peer chaincode query')), log.join('\n'));
        assert.match(readFileSync(join(net, 'channel-artifacts', 'chaincode.env'), 'utf8'), /^CHAINCODE_SEQUENCE=1$/m);
        assert.equal(pids().filter(alive).length, 9);
    });

    void it('deploy again: the next sequence and version, already-installed and approved steps skipped on re-run', () => {
        writeFileSync(env.CALLS as string, '');
        const result = bash(join(net, 'scripts', 'network.sh'), ['deploy', '--no-build'], env);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout.trim().split('\n').at(-1) ?? '', /^m2m_2\.0:[0-9a-f]{64}$/);
        assert.equal(calls().filter((l) => l.startsWith('peer lifecycle chaincode approveformyorg')).length, 4);
        assert.ok(
            calls().every(
                (l) => !l.startsWith('peer lifecycle chaincode approveformyorg') || l.includes('--sequence 2'),
            ),
        );
        // Re-running the same sequence (e.g. after a failure) installs and approves nothing twice.
        writeFileSync(env.CALLS as string, '');
        const rerun = bash(
            join(net, 'scripts', 'network.sh'),
            ['deploy', '--no-build', '--sequence', '2', '--version', '2.0'],
            env,
        );
        assert.notEqual(rerun.status, 0, 'committing sequence 2 twice is refused by the stand-in, as by Fabric');
        assert.ok(!calls().some((l) => l.startsWith('peer lifecycle chaincode install')));
        assert.ok(!calls().some((l) => l.startsWith('peer lifecycle chaincode approveformyorg')));
    });

    void it('deploy stops before commit when fewer than a MAJORITY of organisations approved', () => {
        writeFileSync(env.CALLS as string, '');
        // Two organisations' approvals never show in the channel (e.g. they approved another definition).
        for (const msp of ['FogBMSP', 'ManufacturerMSP']) writeFileSync(join(env.STATE as string, `lost-${msp}`), '');
        const result = bash(join(net, 'scripts', 'network.sh'), ['deploy', '--no-build'], env);
        assert.notEqual(result.status, 0);
        assert.match(
            result.stderr,
            /only 2 of 4 organisations approved sequence 3 \(3 needed\); missing: FogBMSP ManufacturerMSP/,
        );
        assert.ok(!calls().some((l) => l.startsWith('peer lifecycle chaincode commit')));
    });

    void it('restart-peer: the one peer restarted with the same settings, its log appended, discovery awaited', () => {
        writeFileSync(env.CALLS as string, '');
        const peerDir = join(net, '.native', `peer0.manufacturer.${DOMAIN}`);
        const before = readFileSync(join(peerDir, 'node.pid'), 'utf8');
        const result = bash(join(net, 'scripts', 'network.sh'), ['restart-peer', 'manufacturer'], env);
        assert.equal(result.status, 0, result.stderr);
        const after = readFileSync(join(peerDir, 'node.pid'), 'utf8');
        assert.notEqual(after, before);
        assert.ok(alive(Number(after)));
        assert.ok(!alive(Number(before)));
        const log = calls();
        assert.deepEqual(
            log.filter((l) => l.startsWith('peer node start')).map((l) => l.slice(l.indexOf('MSP=') + 4)),
            ['ManufacturerMSP'],
            'only the manufacturer peer started again, with its own node.env',
        );
        assert.ok(log.at(-1)?.startsWith('discovery '), 'returns once discovery converged again');
        // Appended: both lives of the peer are in its log.
        assert.equal(
            readFileSync(join(peerDir, 'node.log'), 'utf8').match(/=== peer0\.manufacturer\S* started /g)?.length,
            2,
        );
        const unknown = bash(join(net, 'scripts', 'network.sh'), ['restart-peer', 'nobody'], env);
        assert.notEqual(unknown.status, 0);
        assert.match(unknown.stderr, /restart-peer needs an organisation: csp foga fogb manufacturer/);
    });

    void it('down stops every process it started and removes the generated files', () => {
        const running = pids();
        assert.ok(running.length > 0);
        const result = bash(join(net, 'scripts', 'network.sh'), ['down'], env);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(running.filter(alive), []);
        for (const generated of ['.native', 'organizations', 'channel-artifacts', '.network-state']) {
            assert.ok(!existsSync(join(net, generated)), generated);
        }
    });
    void it('up --native --consensus bft: 4 SmartBFT orderers from config/bft, each joined and active (Fabric 3 only)', () => {
        const script = join(net, 'scripts', 'network.sh');
        const refused = bash(script, ['up', '--native', '--consensus', 'bft'], env);
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /SmartBFT needs Fabric 3\.x/);
        writeFileSync(env.CALLS as string, '');
        const result = bash(script, ['up', '--native', '--consensus', 'bft', '--fabric-version', '3.1'], env);
        assert.equal(result.status, 0, result.stderr);
        const log = calls();
        assert.ok(log.some((l) => /^configtxgen -configPath \S+\/config\/bft -profile M2MSmartBFTLocal /.test(l)));
        assert.deepEqual(
            log.filter((l) => l.startsWith('osnadmin channel join')).map((l) => /-o (\S+)/.exec(l)?.[1]),
            ['localhost:7053', 'localhost:7153', 'localhost:7253', 'localhost:7353'],
        );
        assert.ok(
            log.some((l) => l.startsWith('osnadmin channel list')),
            'waits until every orderer lists the channel',
        );
        assert.equal(pids().filter(alive).length, 8);
        const down = bash(script, ['down'], env);
        assert.equal(down.status, 0, down.stderr);
        assert.deepEqual(pids(), []);
    });
});

void describe('network.sh in Docker Compose mode (docker and the Fabric binaries stood in for)', () => {
    let sandbox: ReturnType<typeof makeSandbox>;
    const calls = (): string[] => readFileSync(join(sandbox.dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);

    before(() => {
        sandbox = makeSandbox();
    });
    after(() => {
        rmSync(sandbox.dir, { recursive: true, force: true });
    });

    void it('up --consensus raft3 --fabric-version 3.1: the raft3 profile of the Compose project, 3 orderers joined', () => {
        const { net, env } = sandbox;
        const result = bash(
            join(net, 'scripts', 'network.sh'),
            ['up', '--consensus', 'raft3', '--fabric-version', '3.1'],
            env,
        );
        assert.equal(result.status, 0, result.stderr);
        const log = calls();
        const upIndex = log.findIndex((l) => l.startsWith('docker compose -p m2m-fabric -f '));
        assert.ok(upIndex >= 0, log.join('\n'));
        assert.match(log[upIndex] ?? '', /compose\/compose\.yaml --profile raft3 up -d \|/);
        assert.match(log[upIndex + 1] ?? '', /^docker-env FABRIC_VERSION=3\.1 /);
        assert.ok(log.some((l) => /^configtxgen -configPath \S+\/config -profile M2MRaft -channelID m2m/.test(l)));
        assert.deepEqual(
            log.filter((l) => l.startsWith('osnadmin channel join')).map((l) => /-o (\S+)/.exec(l)?.[1]),
            ['localhost:7053', 'localhost:7153', 'localhost:7253'],
        );
        assert.equal(log.filter((l) => l.startsWith('peer channel join')).length, 4);
        assert.match(
            readFileSync(join(net, '.network-state'), 'utf8'),
            /^MODE=compose\nCONSENSUS=raft3\nFABRIC_VERSION=3\.1$/m,
        );
    });

    void it('deploy builds the chaincode image and recreates the 4 chaincode containers with the package ID', () => {
        const { net, env } = sandbox;
        writeFileSync(env.CALLS as string, '');
        const result = bash(join(net, 'scripts', 'network.sh'), ['deploy', '--no-build'], env);
        assert.equal(result.status, 0, result.stderr);
        const packageId = result.stdout.trim().split('\n').at(-1) ?? '';
        assert.match(packageId, /^m2m_1\.0:[0-9a-f]{64}$/);
        const log = calls();
        assert.ok(
            log.some((l) =>
                /^docker build -t m2m-chaincode:latest -f \S+\/chaincode\/Dockerfile \S+\/build\/chaincode /.test(l),
            ),
        );
        const upIndex = log.findIndex((l) => l.includes('--profile chaincode up -d --force-recreate'));
        assert.match(
            log[upIndex] ?? '',
            /^docker compose -p m2m-fabric -f \S+ --profile chaincode up -d --force-recreate cc\.csp\.m2m\.example\.com cc\.foga\.m2m\.example\.com cc\.fogb\.m2m\.example\.com cc\.manufacturer\.m2m\.example\.com /,
        );
        assert.equal(log[upIndex + 1], `docker-env FABRIC_VERSION=3.1 CHAINCODE_ID=${packageId}`);
        assert.ok(upIndex > log.findIndex((l) => l.startsWith('peer lifecycle chaincode commit')));
    });

    void it("down removes every profile's containers and volumes, and the generated files", () => {
        const { net, env } = sandbox;
        writeFileSync(env.CALLS as string, '');
        const result = bash(join(net, 'scripts', 'network.sh'), ['down'], env);
        assert.equal(result.status, 0, result.stderr);
        assert.ok(
            calls().some((l) =>
                /^docker compose -p m2m-fabric -f \S+ --profile raft3 --profile bft --profile chaincode down --volumes --remove-orphans /.test(
                    l,
                ),
            ),
        );
        for (const generated of ['organizations', 'channel-artifacts', '.network-state', 'build']) {
            assert.ok(!existsSync(join(net, generated)), generated);
        }
    });
});
