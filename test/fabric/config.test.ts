/**
 * Validation of Fabric connection settings: files, environment, precedence and every refusal.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
    DEFAULT_TIMEOUTS,
    FabricConfigError,
    fabricIdentity,
    loadFabricConfig,
    parseEnvFile,
    resolveFabricConfig,
} from '@m2m-fabric/sdk';
import { publicKeyOf, verifyLowS } from '@m2m-fabric/sdk';

import { makeTestPki, type TestPki } from './pki-fixtures.js';

function problemsOf(run: () => unknown): readonly string[] {
    try {
        run();
    } catch (err) {
        assert.ok(err instanceof FabricConfigError, `expected FabricConfigError, got ${String(err)}`);
        return err.problems;
    }
    assert.fail('expected the settings to be refused');
}

void describe('Fabric connection settings', () => {
    let pki: TestPki;
    before(async () => {
        pki = await makeTestPki();
    });
    after(async () => {
        await rm(pki.dir, { recursive: true, force: true });
    });

    const valid = (): Record<string, string> => ({
        peerEndpoint: 'localhost:8051',
        hostAlias: 'peer0.foga.m2m.example.com',
        tlsCaCertPath: pki.tlsCaPath,
        mspId: 'FogAMSP',
        certPath: pki.certPath,
        keyPath: pki.keystoreDir,
        channelName: 'm2m',
        chaincodeName: 'm2m',
    });

    void it('reads a .env connection file with paths relative to the file and a keystore directory', async () => {
        const file = join(pki.dir, 'fog-a.env');
        await writeFile(
            file,
            [
                '# fog A',
                'FABRIC_PEER_ENDPOINT=localhost:8051',
                'export FABRIC_PEER_HOST_ALIAS="peer0.foga.m2m.example.com"',
                `FABRIC_TLS_CA_CERT=${relative(pki.dir, pki.tlsCaPath)}`,
                "FABRIC_MSP_ID='FogAMSP'",
                `FABRIC_CERT=${relative(pki.dir, pki.certPath)}`,
                `FABRIC_KEY=${relative(pki.dir, pki.keystoreDir)}`,
                'FABRIC_CHANNEL=m2m',
                'FABRIC_CHAINCODE=m2m',
                '',
            ].join('\n'),
        );
        const config = loadFabricConfig({ file, env: {} });
        assert.equal(config.peerEndpoint, 'localhost:8051');
        assert.equal(config.hostAlias, 'peer0.foga.m2m.example.com');
        assert.equal(config.mspId, 'FogAMSP');
        assert.equal(config.channelName, 'm2m');
        assert.equal(config.chaincodeName, 'm2m');
        assert.equal(config.contractName, undefined);
        assert.deepEqual(config.timeouts, DEFAULT_TIMEOUTS);
        assert.equal(config.endorsementPolicy, 'MAJORITY Endorsement');
        assert.equal(config.certificate.toString(), pki.certificatePem);
        assert.equal(config.privateKey.asymmetricKeyType, 'ec');
    });

    void it('lets the environment override the file, and FABRIC_CONNECTION name the file', async () => {
        const file = join(pki.dir, 'override.json');
        await writeFile(file, JSON.stringify({ ...valid(), peerEndpoint: 'localhost:7051', evaluateTimeoutMs: 1000 }));
        const config = loadFabricConfig({
            env: {
                FABRIC_CONNECTION: file,
                FABRIC_PEER_ENDPOINT: 'localhost:9051',
                FABRIC_COMMIT_STATUS_TIMEOUT_MS: '5',
            },
        });
        assert.equal(config.peerEndpoint, 'localhost:9051');
        assert.equal(config.timeouts.evaluateMs, 1000);
        assert.equal(config.timeouts.commitStatusMs, 5);
        assert.equal(config.timeouts.endorseMs, DEFAULT_TIMEOUTS.endorseMs);
    });

    void it('works from the environment alone', () => {
        const env: NodeJS.ProcessEnv = {
            FABRIC_PEER_ENDPOINT: '127.0.0.1:7051',
            FABRIC_TLS_CA_CERT: pki.tlsCaPath,
            FABRIC_MSP_ID: 'CSPMSP',
            FABRIC_CERT: pki.certPath,
            FABRIC_KEY: pki.keyPath,
            FABRIC_CHANNEL: 'm2m',
            FABRIC_CHAINCODE: 'm2m',
            FABRIC_CONTRACT: 'SessionContract',
        };
        const config = loadFabricConfig({ env });
        assert.equal(config.hostAlias, undefined);
        assert.equal(config.contractName, 'SessionContract');
    });

    void it('names every missing setting by its variable', () => {
        const problems = problemsOf(() => loadFabricConfig({ env: {} }));
        for (const name of [
            'FABRIC_PEER_ENDPOINT',
            'FABRIC_TLS_CA_CERT',
            'FABRIC_MSP_ID',
            'FABRIC_CERT',
            'FABRIC_KEY',
            'FABRIC_CHANNEL',
            'FABRIC_CHAINCODE',
        ]) {
            assert.ok(
                problems.some((p) => p.startsWith(name) && p.endsWith('is required')),
                `${name} missing from ${problems.join(' | ')}`,
            );
        }
        assert.equal(problems.length, 7);
    });

    void it('refuses malformed values, each with its own message', () => {
        const problems = problemsOf(() =>
            resolveFabricConfig({
                ...valid(),
                peerEndpoint: 'localhost',
                hostAlias: 'bad host',
                mspId: 'Fog A',
                channelName: 'M2M_channel',
                chaincodeName: 'm2m chaincode',
                endorseTimeoutMs: '-3',
                submitTimeoutMs: '2.5',
            }),
        );
        const expect = [
            /FABRIC_PEER_ENDPOINT .*must be host:port/,
            /FABRIC_PEER_HOST_ALIAS .*must be a host name/,
            /FABRIC_MSP_ID .*not a valid MSP ID/,
            /FABRIC_CHANNEL .*lowercase/,
            /FABRIC_CHAINCODE .*not a valid chaincode name/,
            /FABRIC_ENDORSE_TIMEOUT_MS .*positive whole number/,
            /FABRIC_SUBMIT_TIMEOUT_MS .*positive whole number/,
        ];
        for (const pattern of expect)
            assert.ok(
                problems.some((p) => pattern.test(p)),
                `${pattern} not in ${problems.join(' | ')}`,
            );
        assert.equal(problems.length, expect.length);
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), peerEndpoint: 'host:70000' }))[0] ?? '',
            /host:port/,
        );
    });

    void it('refuses missing files, non-PEM content, a foreign key and a non-EC key', async () => {
        const notPem = join(pki.dir, 'not-a-cert.txt');
        await writeFile(notPem, 'hello');
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), tlsCaCertPath: join(pki.dir, 'missing.pem') }))[0] ?? '',
            /FABRIC_TLS_CA_CERT .*does not exist/,
        );
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), certPath: notPem }))[0] ?? '',
            /FABRIC_CERT .*not a PEM X.509 certificate/,
        );
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), keyPath: notPem }))[0] ?? '',
            /FABRIC_KEY .*not a PEM private key/,
        );
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), keyPath: pki.otherKeyPath }))[0] ?? '',
            /FABRIC_KEY .*does not belong to the certificate/,
        );
        const rsa = problemsOf(() => resolveFabricConfig({ ...valid(), keyPath: pki.rsaKeyPath }));
        assert.ok(rsa.some((p) => /ECDSA P-256 or P-384 keys, this one is rsa/.test(p)));
        assert.match(
            problemsOf(() => resolveFabricConfig({ ...valid(), keyPath: pki.dir }))[0] ?? '',
            /must hold exactly one key file/,
        );
    });

    void it('refuses unknown keys and malformed files', async () => {
        const json = join(pki.dir, 'unknown.json');
        await writeFile(json, JSON.stringify({ ...valid(), peer: 'x' }));
        assert.match(problemsOf(() => loadFabricConfig({ file: json, env: {} }))[0] ?? '', /unknown key "peer"/);
        const env = join(pki.dir, 'unknown.env');
        await writeFile(env, 'FABRIC_PEER=localhost:7051\n');
        assert.match(
            problemsOf(() => loadFabricConfig({ file: env, env: {} }))[0] ?? '',
            /unknown variable FABRIC_PEER/,
        );
        const broken = join(pki.dir, 'broken.json');
        await writeFile(broken, '{');
        assert.match(problemsOf(() => loadFabricConfig({ file: broken, env: {} }))[0] ?? '', /not valid JSON/);
        assert.match(
            problemsOf(() => loadFabricConfig({ file: join(pki.dir, 'nope.env'), env: {} }))[0] ?? '',
            /cannot read connection file/,
        );
        assert.throws(() => parseEnvFile('JUST TEXT', 'x.env'), /line 1 is not KEY=VALUE/);
    });

    void it('builds a signer whose signatures verify against the certificate, as Fabric checks them', async () => {
        const config = resolveFabricConfig(valid());
        const { identity, signer } = fabricIdentity(config);
        assert.equal(identity.mspId, 'FogAMSP');
        assert.equal(Buffer.from(identity.credentials).toString(), pki.certificatePem);
        const message = new TextEncoder().encode('serialized proposal');
        const signature = await signer(message);
        const publicKey = publicKeyOf(pki.certificatePem);
        assert.equal(verifyLowS(publicKey, message, signature), true);
        assert.equal(verifyLowS(publicKey, new TextEncoder().encode('other proposal'), signature), false);
    });
});
