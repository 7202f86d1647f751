/**
 * The fuzzer (issue 17): generated inputs against the running services and the chaincode, each of
 * which must be answered with a typed error (or dropped, when it carries no correlation id to
 * answer to), crash nothing and change nothing.
 *
 * Targets:
 *  - device -> fog envelopes, one target per protocol step: M1, M3 (the fog then submits an
 *    activation, which the chaincode must refuse), and session-channel frames (relayed to the CSP);
 *  - fog -> CSP link messages, one target per type: Forward (M4 and what Alg. 3 needs) and FrameUp,
 *    sent with fog-1's broker login; bodies are mutated and then signed with fog-1's key, so the CSP
 *    must parse them, plus mutations of the signed message itself;
 *  - CSP -> fog link messages, Result and FrameDown, likewise signed with the CSP's key, into the
 *    fog's link dispatcher;
 *  - chaincode invocations through the Fabric Gateway endpoint (EmbeddedGatewayServer, reached with
 *    @hyperledger/fabric-gateway over gRPC/TLS): every transaction called by its legitimate role with
 *    one argument or transient entry mutated.
 *
 * Structure-aware generation: a valid message is built for each target, then mutated — every byte
 * position in turn (so every field) gets a bit flip, a boundary value or a random byte; or the
 * message is truncated, extended, has a span replaced or duplicated — plus purely random bytes.
 * The base message itself is never sent. A deterministic PRNG makes a run reproducible (`seed`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
    acceptFsConfirm,
    ByteWriter,
    createM1,
    createM4,
    computePrimaryHash,
    decodeM2,
    decodePoint,
    decodeScalar,
    encodeM1,
    encodeM3,
    encodeM4,
    encodePoint,
    fromHex,
    FrameType,
    prepareActivation,
    processM2,
    P256_SHA256,
    toHex,
} from '@m2m-fabric/protocol';
import {
    decodeTagged,
    encodeTagged,
    ENVELOPE_VERSION,
    EnvelopeKind,
    isKnownErrorCode,
    newCorrelationId,
    ServiceError,
} from '@m2m-fabric/common';
import { MqttConnection } from '@m2m-fabric/common';
import { RequestClient } from '@m2m-fabric/common';
import { TopicLayout } from '@m2m-fabric/common';
import { readDeviceState } from '@m2m-fabric/device';
import { routeIdFor } from '@m2m-fabric/common';
import { loadOrCreateServiceKey, loginToken } from '@m2m-fabric/services';
import {
    decodeDeviceBound,
    encodeDeviceBound,
    encodeForward,
    encodeFrameUp,
    encodeLinkMessage,
    LinkKind,
    parseLinkMessage,
} from '@m2m-fabric/services';
import { EndorseError } from '@m2m-fabric/sdk';
import { EmbeddedGatewayServer, loadOrCreateTlsServer } from '@m2m-fabric/embedded-ledger';
import { FabricLedgerConnector } from '@m2m-fabric/sdk';
import { decodeBlock, summariseBlock } from '@m2m-fabric/embedded-ledger';
import type { LedgerContract } from '@m2m-fabric/sdk';
import { startBed } from './bed.js';
import { CHAINCODE, startNetwork } from '../chaincode/network.js';
import { bootstrap, purchase } from '../chaincode/scenario.js';
import { newDevice } from '../chaincode/actors.js';
import { TRANSACTIONS } from '../chaincode/transactions.js';

/** xorshift32: reproducible, fast, good enough to pick mutations. */
export class Prng {
    private s: number;
    constructor(seed: number) {
        this.s = seed >>> 0 || 0x9e3779b9;
    }
    next(): number {
        let x = this.s;
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.s = x >>> 0;
        return this.s;
    }
    int(n: number): number {
        return this.next() % n;
    }
    bytes(n: number): Uint8Array {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
        return out;
    }
}

const BOUNDARY = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/**
 * The `i`-th mutation of `base` (never equal to it). Positions cycle through the whole message, so
 * every field is hit; `fixed` byte ranges (a correlation id the reply is matched by) are kept.
 */
export function mutate(base: Uint8Array, i: number, rnd: Prng, fixed: [number, number][] = []): Uint8Array {
    const free = (p: number): boolean => !fixed.some(([a, b]) => p >= a && p < b);
    const positions = [...base.keys()].filter(free);
    const pos = positions[i % Math.max(1, positions.length)] ?? 0;
    let out: Uint8Array;
    switch (i % 8) {
        case 0:
        case 1: {
            out = base.slice();
            out[pos] = out[pos]! ^ (1 << rnd.int(8));
            break;
        }
        case 2: {
            out = base.slice();
            out[pos] = BOUNDARY[rnd.int(BOUNDARY.length)]!;
            break;
        }
        case 3: {
            out = base.slice();
            out[pos] = rnd.next() & 0xff;
            break;
        }
        case 4:
            out = base.slice(0, rnd.int(base.length));
            break;
        case 5:
            out = new Uint8Array([...base, ...rnd.bytes(1 + rnd.int(64))]);
            break;
        case 6: {
            out = base.slice();
            const len = 1 + rnd.int(16);
            out.set(rnd.bytes(Math.min(len, out.length - pos)), pos);
            break;
        }
        default:
            out = rnd.bytes(rnd.int(2 * base.length + 1));
    }
    for (const [a, b] of fixed) if (out.length >= b) out.set(base.subarray(a, b), a);
    if (out.length === base.length && out.every((x, k) => x === base[k])) {
        out = new Uint8Array([...base, 0]);
    }
    return out;
}

export type Outcomes = Record<string, number>;

export interface FuzzResult {
    messages: number;
    invocations: number;
    crashes: number;
    stateChanges: number;
    untypedReplies: number;
    /** target -> outcome (error code, `dropped`, `accepted`) -> count. */
    byTarget: Record<string, Outcomes>;
    durationMs: number;
    seed: number;
}

function count(o: Outcomes, key: string): void {
    o[key] = (o[key] ?? 0) + 1;
}

const progress = (what: string): void => {
    if (process.env.M2M_FUZZ_VERBOSE === '1') console.error(`[fuzz ${new Date().toISOString()}] ${what}`);
};

/** Runs `n` tasks with at most `width` in flight. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
        Array.from({ length: Math.min(width, n) }, async () => {
            while (next < n) await task(next++);
        }),
    );
}

/** Fuzzes the fog and the CSP over MQTT; `perTarget` messages for each target. */
async function fuzzServices(perTarget: number, rnd: Prng, result: FuzzResult): Promise<void> {
    const layout = new TopicLayout();
    // Limits high enough that the fuzzer reaches the decoders (rate limits are tested elsewhere).
    const bed = await startBed({
        fogOptions: {
            perClientLimit: { ratePerSecond: 1e6, burst: 1e6 },
            perCertificateLimit: { ratePerSecond: 1e6, burst: 1e6 },
            ledgerReadLimit: { ratePerSecond: 1e6, burst: 1e6 },
            perRouteFrameLimit: { ratePerSecond: 1e6, burst: 1e6 },
            globalFrameLimit: { ratePerSecond: 1e6, burst: 1e6 },
            globalLimit: { ratePerSecond: 1e6, burst: 1e6 },
        },
    });
    try {
        await bed.provision('fuzz-0001', 4);
        const state = (await readDeviceState(bed.statePath('fuzz-0001')))!;
        const suite = bed.net.suite;
        const secrets = { w: decodeScalar(suite, fromHex(state.w)), equipmentId: state.equipmentId };
        const Qf = decodePoint(suite, fromHex(state.fog.publicKey));
        const Qc = decodePoint(suite, fromHex(state.cspPublicKey));
        const clientId = 'dev-fuzz0001';
        const conn = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, { clientId });
        const rc = await RequestClient.create(
            conn,
            layout.fogRequest('fog-1', clientId),
            layout.fogReply('fog-1', clientId),
        );
        rc.onUnsolicited(() => undefined);

        // One real session (counter 1) for valid frames, M4 and the Forward body.
        const s1 = await createM1(suite, secrets, 1n, 'fog-1', Qf, Qc);
        const m2 = await rc.request(EnvelopeKind.M1, encodeM1(s1.m1), 10_000);
        const h = decodeTagged(m2.body);
        const certificateObject = decodeM2(suite, h.payload).certificateObject;
        const p1 = processM2(s1.session, certificateObject, Qc, 'fog-1');
        const done = await rc.request(EnvelopeKind.M3, encodeTagged(h.tag, encodeM3(p1.m3)), 20_000);
        const routeId = routeIdFor(suite, s1.session.idCert);
        const { channel } = await acceptFsConfirm(
            suite,
            s1.session.ephemeral,
            p1.symKey,
            s1.session.idCert,
            routeId,
            decodeTagged(done.body).payload,
        );
        const frameBase = encodeTagged(routeId, await channel.seal(FrameType.Upload, new TextEncoder().encode('{}')));
        const fogKey = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'fog-1.json'), suite);
        const activation = prepareActivation(suite, fogKey.privateKey, certificateObject);
        const m4 = await createM4(
            suite,
            'fog-1',
            fogKey.privateKey,
            s1.m1,
            computePrimaryHash(suite, activation.P),
            Qc,
            s1.session.idCert,
        );
        // clientId "fuzz" (where a mutation leaves it) tells the CSP's answers to these apart.
        const forwardBase = encodeForward({
            correlationId: newCorrelationId(),
            clientId: 'fuzz',
            routeId,
            m4: encodeM4(m4),
            devicePublicKey: encodePoint(suite, p1.m3.publicKey),
        });
        const frameUpBase = encodeFrameUp({
            correlationId: newCorrelationId(),
            clientId: 'fuzz',
            routeId,
            frame: decodeTagged(frameBase).payload,
        });
        // Counter 2's M1 (never used: its certificate stays unused) for the M1 and M3 targets.
        const s2 = await createM1(suite, secrets, 2n, 'fog-1', Qf, Qc);
        const m1Base = encodeM1(s2.m1);
        let m3Base: Uint8Array = new Uint8Array();
        const refreshHandle = async (): Promise<void> => {
            const r = await rc.request(EnvelopeKind.M1, m1Base, 10_000);
            const t = decodeTagged(r.body);
            const p = processM2(s2.session, decodeM2(suite, t.payload).certificateObject, Qc, 'fog-1');
            m3Base = encodeTagged(t.tag, encodeM3(p.m3));
        };
        await refreshHandle();

        // The base frame goes through once for real, so every later copy of it is a replay.
        await rc.request(EnvelopeKind.Frame, frameBase, 10_000);
        const snapshot = async (): Promise<string> =>
            JSON.stringify({
                ledger: await bed.net.ledgerTotals(),
                sessions: bed.net.csp.listSessions().length,
                telemetry: bed.net.csp.readTelemetry({}).length,
                outbox: bed.net.fogs[0]!.outboxDepth,
            });
        const before = await snapshot();

        // Device -> fog: the envelope (version, kind, body length, body) is mutated around a fixed
        // correlation id, so a reply can be matched; one without a valid header is dropped.
        const deviceTarget = async (name: string, kind: number, base: () => Uint8Array): Promise<void> => {
            const outcomes: Outcomes = (result.byTarget[name] = {});
            progress(name);
            await pool(perTarget, 64, async (i) => {
                const corr = newCorrelationId();
                const env = new ByteWriter().u8(ENVELOPE_VERSION).u8(kind).raw(corr).bytes32(base()).finish();
                // Mostly the body; every 10th mutation may hit the header instead.
                const fixed: [number, number][] = i % 10 === 0 ? [[2, 18]] : [[0, 22]];
                const payload = mutate(env, i, rnd, fixed);
                try {
                    const reply = await rc.requestRaw(payload, corr, 4_000);
                    count(outcomes, reply.kind === EnvelopeKind.Error ? 'error' : `accepted:${reply.kind}`);
                    if (process.env.M2M_FUZZ_VERBOSE === '1' && reply.kind !== EnvelopeKind.Error)
                        console.error(`accepted ${name} #${i} (${i % 8}) ${toHex(payload)} vs ${toHex(env)}`);
                } catch (err) {
                    if (err instanceof ServiceError) {
                        if (err.code === 'timeout') count(outcomes, 'dropped');
                        else if (isKnownErrorCode(err.code)) count(outcomes, err.code);
                        else {
                            count(outcomes, 'untyped');
                            result.untypedReplies++;
                        }
                    } else {
                        count(outcomes, 'untyped');
                        result.untypedReplies++;
                    }
                }
                result.messages++;
                if (name === 'M3' && i % 500 === 499) await refreshHandle().catch(() => undefined);
            });
        };
        const alive = async (after: string): Promise<void> => {
            try {
                await rc.request(EnvelopeKind.Hello, new Uint8Array(), 10_000);
                return;
            } catch (err) {
                console.error(`no Hello reply after ${after} on the fuzzing connection: ${(err as Error).message}`);
            }
            // A fresh client: is the fog down, or only this connection?
            const fresh = await MqttConnection.connect(bed.net.fogs[0]!.deviceBrokerUrl, {
                clientId: 'dev-fuzz-probe',
            });
            try {
                const frc = await RequestClient.create(
                    fresh,
                    layout.fogRequest('fog-1', 'dev-fuzz-probe'),
                    layout.fogReply('fog-1', 'dev-fuzz-probe'),
                );
                await frc.request(EnvelopeKind.Hello, new Uint8Array(), 10_000);
                console.error(`the fog answers a fresh client after ${after}`);
            } catch (err) {
                result.crashes++;
                console.error(`the fog stopped answering after ${after}: ${(err as Error).message}`);
            } finally {
                await fresh.close();
            }
        };
        progress('setup done');
        await deviceTarget('device:M1', EnvelopeKind.M1, () => m1Base);
        await alive('device:M1');
        await deviceTarget('device:M3', EnvelopeKind.M3, () => m3Base);
        await alive('device:M3');
        await deviceTarget('device:Frame', EnvelopeKind.Frame, () => frameBase);

        // Fog -> CSP: signed with fog-1's key after mutating the body (the CSP must parse it), or the
        // signed message mutated. Outcomes: the CSP's answers on the fog's outbound topic, and its
        // refusal counter for messages it cannot answer.
        const url = bed.net.csp.brokerUrl;
        const probe = await MqttConnection.connect(url, {
            clientId: 'fog-1-fuzz',
            username: 'fog-1',
            password: () => loginToken(fogKey, 'fog-1', 'fog-1-fuzz'),
        });
        const replies: Outcomes = {};
        await probe.subscribe(layout.cspOutbound('fog-1'), (_t, payload) => {
            try {
                const body = decodeDeviceBound(parseLinkMessage(new Uint8Array(payload)).message.body);
                if (body.clientId !== 'fuzz') return;
                const code = body.outcome.ok ? 'accepted' : body.outcome.code;
                if (!body.outcome.ok && !isKnownErrorCode(body.outcome.code)) result.untypedReplies++;
                count(replies, code);
            } catch {
                count(replies, 'unparsable');
                result.untypedReplies++;
            }
        });
        const refused = (): Record<string, number> => {
            const out: Record<string, number> = {};
            for (const m of bed.net.csp.metrics
                .render()
                .matchAll(/m2m_csp_link_refused_total\{code="([^"]+)"\} (\d+)/g))
                out[m[1]!] = Number(m[2]);
            return out;
        };
        const linkTarget = async (name: string, kind: LinkKind, base: Uint8Array): Promise<void> => {
            for (const k of Object.keys(replies)) delete replies[k];
            progress(name);
            const refusedBefore = refused();
            for (let i = 0; i < perTarget; i++) {
                const bytes =
                    i % 3 === 2
                        ? mutate(encodeLinkMessage(fogKey, kind, 'fog-1', base), i, rnd)
                        : encodeLinkMessage(fogKey, kind, 'fog-1', mutate(base, i, rnd, [[0, 16]]));
                await probe.publish(layout.cspInbound('fog-1'), bytes);
                result.messages++;
                if (i % 200 === 199) await new Promise((r) => setTimeout(r, 5));
            }
            await new Promise((r) => setTimeout(r, 1_500));
            const outcomes: Outcomes = { ...replies };
            const after = refused();
            for (const [code, n] of Object.entries(after)) {
                const d = n - (refusedBefore[code] ?? 0);
                if (d > 0) outcomes[`refused:${code}`] = d;
            }
            const seen = Object.values(outcomes).reduce((a, b) => a + b, 0);
            // Answers to a mutated clientId go to that client (not observed here): counted as answered elsewhere.
            if (seen < perTarget) outcomes['answeredElsewhereOrDropped'] = perTarget - seen;
            result.byTarget[name] = outcomes;
        };
        await alive('device:Frame');
        await linkTarget('link:Forward', LinkKind.Forward, forwardBase);
        await alive('link:Forward');
        await linkTarget('link:FrameUp', LinkKind.FrameUp, frameUpBase);
        await probe.close();

        // CSP -> fog: Result and FrameDown, signed with the CSP's key (body mutated, then signed) or the
        // signed message mutated, handed to the fog's link dispatcher as its CSP subscription does
        // (the CSP's broker lets only the CSP publish there). Outcomes: refused by the link checks
        // (the fog's drop counter) or dispatched to the handler, which must change nothing.
        const cspKey = await loadOrCreateServiceKey(join(bed.dataDir, 'keys', 'csp.json'), suite);
        const fogGateway = bed.net.fogs[0]! as unknown as { onCspMessage(payload: Buffer): void };
        const fogLinkDropped = (): number =>
            Number(/m2m_fog_dropped_total\{reason="link"\} (\d+)/.exec(bed.net.fogs[0]!.metrics.render())?.[1] ?? 0);
        const toFogTarget = async (name: string, kind: LinkKind, base: Uint8Array): Promise<void> => {
            progress(name);
            const droppedBefore = fogLinkDropped();
            for (let i = 0; i < perTarget; i++) {
                const bytes =
                    i % 3 === 2
                        ? mutate(encodeLinkMessage(cspKey, kind, 'csp', base), i, rnd)
                        : encodeLinkMessage(cspKey, kind, 'csp', mutate(base, i, rnd, [[0, 16]]));
                fogGateway.onCspMessage(Buffer.from(bytes));
                result.messages++;
                if (i % 200 === 199) await new Promise((r) => setTimeout(r, 5));
            }
            await new Promise((r) => setTimeout(r, 1_000));
            const dropped = fogLinkDropped() - droppedBefore;
            result.byTarget[name] = { 'refused:link': dropped, dispatched: perTarget - dropped };
        };
        await toFogTarget(
            'link:Result',
            LinkKind.Result,
            encodeDeviceBound({
                correlationId: newCorrelationId(),
                clientId: 'fuzz',
                routeId,
                outcome: { ok: false, code: 'timeout', detail: 'fuzz' },
            }),
        );
        await alive('link:Result');
        await toFogTarget(
            'link:FrameDown',
            LinkKind.FrameDown,
            encodeDeviceBound({
                correlationId: newCorrelationId(),
                clientId: 'fuzz',
                routeId,
                outcome: { ok: true, frame: decodeTagged(frameBase).payload },
            }),
        );

        // Still serving: a Hello is answered.
        await alive('end');
        const after = await snapshot();
        if (after !== before) {
            result.stateChanges++;
            console.error(`state changed:\n  before ${before}\n  after  ${after}`);
        }
        await conn.close();
    } finally {
        await bed.close();
    }
}

/** Fuzzes the chaincode through the Gateway endpoint: `n` invocations with mutated arguments. */
async function fuzzChaincode(n: number, rnd: Prng, result: FuzzResult): Promise<void> {
    const net = await startNetwork(P256_SHA256);
    const outcomes: Outcomes = (result.byTarget['chaincode'] = {});
    try {
        await bootstrap(net, 5);
        const device = newDevice('fuzz-robot', net.suite);
        const { request } = await purchase(net, device, 1n, 1);
        const tlsDir = mkdtempSync(join(tmpdir(), 'm2m-fuzz-tls-'));
        const tls = await loadOrCreateTlsServer(tlsDir, 'CSPMSP', ['127.0.0.1']);
        const server = await EmbeddedGatewayServer.start(net.ledger, { mspId: 'CSPMSP', tls });
        const roles = { csp: 'CSPMSP', fog: 'FogAMSP', manufacturer: 'ManufacturerMSP' } as const;
        const contracts: Record<string, (name: string) => LedgerContract> = {};
        const connections = [];
        for (const [role, mspId] of Object.entries(roles)) {
            const user = await net.ledger.loadOrEnrol(mspId, `fuzz-${role}`, { attributes: { 'm2m.role': role } });
            const connector = new FabricLedgerConnector({
                peerEndpoint: server.endpoint,
                hostAlias: undefined,
                tlsCaCert: Buffer.from(tls.caCertificatePem),
                channelName: net.ledger.channelName,
            });
            const c = await connector.connect({ identity: user.identity, signer: user.signer });
            connections.push(c);
            contracts[role] = (name) => c.getContract(CHAINCODE, name);
        }
        // Plausible values per parameter name, from the bootstrapped state.
        const plausible: Record<string, string> = {
            suiteId: net.suite.id,
            caPublicKey: net.csp.publicKeyHex,
            fogId: net.fogA.id,
            publicKey: net.fogA.publicKeyHex,
            address: net.fogA.addressHex,
            account: 'ManufacturerMSP',
            amount: '1',
            equipmentId: 'fuzz-robot',
            oldEquipmentId: 'fuzz-robot',
            kind: 'sensor',
            model: 'rpi',
            fogGroup: net.fogA.id,
            privilegeLevel: '1',
            serviceType: 'upload-download',
            accessTime: 'always',
            status: 'active',
            owner: 'ManufacturerMSP',
            pageSize: '10',
            bookmark: '',
            n: '1',
            requestCid: request.cid,
            requestId: request.cid,
            idCert: '02' + '11'.repeat(32),
            primaryHash: '22'.repeat(32),
        };
        const TRANSIENT: Record<string, string> = {
            requestSessions: 'request',
            issueCertificates: 'issuance',
            activateSession: 'activation',
            synchroniseSession: 'synchronisation',
        };
        const all = Object.entries(TRANSACTIONS).flatMap(([contract, txs]) =>
            Object.entries(txs).map(([name, spec]) => ({ contract, name, spec })),
        );
        // Every transaction on the chain, valid or not: a refused invocation must add none.
        const txCount = async (): Promise<number> => {
            let txs = 0;
            for (let b = 0n; b < net.ledger.height; b++) {
                const bytes = await net.ledger.getBlock(b);
                if (bytes !== undefined) txs += summariseBlock(decodeBlock(bytes)).length;
            }
            return txs;
        };
        const txBefore = await txCount();
        let acceptedSubmits = 0;
        const enc = new TextEncoder();
        for (let i = 0; i < n; i++) {
            const { contract, name, spec } = all[i % all.length]!;
            const role = spec.roles[0]!;
            const args = spec.parameters.map((p) => plausible[p] ?? 'x');
            const transientKey = TRANSIENT[name];
            const transient: Record<string, Uint8Array> = {};
            if (transientKey !== undefined) transient[transientKey] = mutate(rnd.bytes(64), i, rnd);
            // Mutate one argument (as bytes of its UTF-8 text), or the transient entry when there are none.
            if (args.length > 0 && (transientKey === undefined || i % 2 === 0)) {
                const k = rnd.int(args.length);
                args[k] = Buffer.from(mutate(enc.encode(args[k]), i, rnd)).toString('latin1');
            }
            try {
                const c = contracts[role]!(contract);
                if (spec.evaluate === true) await c.evaluate(name, { arguments: args, transientData: transient });
                else {
                    await c.submit(name, { arguments: args, transientData: transient });
                    acceptedSubmits++;
                }
                count(outcomes, 'accepted');
            } catch (err) {
                if (err instanceof EndorseError && err.errorCode !== undefined) count(outcomes, err.errorCode);
                else {
                    count(outcomes, `untyped`);
                    result.untypedReplies++;
                    if (result.untypedReplies <= 5)
                        console.error(`untyped reply to ${contract}:${name}: ${String(err)}`);
                }
            }
            result.invocations++;
        }
        // A mutated invocation that was accepted may legitimately write (a valid-looking new equipment
        // id); the state may change only then.
        const added = (await txCount()) - txBefore;
        if (added !== acceptedSubmits) {
            result.stateChanges += Math.abs(added - acceptedSubmits);
            console.error(`chaincode fuzz: ${added} transactions committed for ${acceptedSubmits} accepted submits`);
        }
        outcomes['acceptedSubmits'] = acceptedSubmits;
        for (const c of connections) c.close();
        await server.close();
        rmSync(tlsDir, { recursive: true, force: true });
    } finally {
        await net.close();
    }
}

/** Runs the fuzzer: `perTarget` messages per service target and `invocations` chaincode calls. */
export async function runFuzz(options: { perTarget: number; invocations: number; seed?: number }): Promise<FuzzResult> {
    const started = performance.now();
    const seed = options.seed ?? 17;
    const rnd = new Prng(seed);
    const result: FuzzResult = {
        messages: 0,
        invocations: 0,
        crashes: 0,
        stateChanges: 0,
        untypedReplies: 0,
        byTarget: {},
        durationMs: 0,
        seed,
    };
    const crash = (err: unknown): void => {
        result.crashes++;
        console.error(`crash: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    };
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);
    try {
        await fuzzServices(options.perTarget, rnd, result);
        await fuzzChaincode(options.invocations, rnd, result);
    } finally {
        process.off('uncaughtException', crash);
        process.off('unhandledRejection', crash);
    }
    result.durationMs = Math.round(performance.now() - started);
    return result;
}
