import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile, readdir, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, loadConfig, type ConfigSchema } from '@m2m-fabric/common';
import { readJsonFile, writeJsonAtomic } from '@m2m-fabric/common';
import { RateLimiter } from '@m2m-fabric/services';
import { FifoLimiter } from '@m2m-fabric/services';
import { MetricsRegistry } from '@m2m-fabric/services';
import { startMetricsServer } from '@m2m-fabric/services';
import { DurableMap } from '@m2m-fabric/services';
import { TopicLayout } from '@m2m-fabric/common';
import { tempDir } from './helpers/temp-dir.js';

const schema = {
    'mqtt.url': { type: 'string', env: 'T_MQTT_URL', format: 'url', description: 'broker' },
    'fog.id': { type: 'string', env: 'T_FOG_ID', format: 'identifier', required: true, description: 'fog id' },
    'rate.burst': { type: 'integer', env: 'T_BURST', default: 5, min: 1, max: 100, description: 'burst' },
    'metrics.enabled': { type: 'boolean', env: 'T_METRICS', default: true, description: 'metrics' },
    'key.hex': { type: 'string', env: 'T_KEY', format: 'hex', secret: true, description: 'key' },
} as const satisfies ConfigSchema;

void test('config: precedence override > env > file > default, nested file keys', async () => {
    const dir = await tempDir('m2m-services-');
    const file = join(dir, 'c.json');
    await writeFile(
        file,
        JSON.stringify({ mqtt: { url: 'mqtt://127.0.0.1:1' }, fog: { id: 'fog-file' }, rate: { burst: 7 } }),
    );
    const c = loadConfig(schema, { file, env: { T_FOG_ID: 'fog-env' }, overrides: { 'rate.burst': '9' } });
    assert.equal(c['mqtt.url'], 'mqtt://127.0.0.1:1');
    assert.equal(c['fog.id'], 'fog-env');
    assert.equal(c['rate.burst'], 9);
    assert.equal(c['metrics.enabled'], true);
    assert.equal(c['key.hex'], undefined);
});

void test('config: every problem reported at once, secrets never echoed', async () => {
    const dir = await tempDir('m2m-services-');
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ mqtt: { url: 'not a url' }, typo: 1 }));
    assert.throws(
        () => loadConfig(schema, { file, env: { T_BURST: '1000', T_METRICS: 'maybe', T_KEY: 'SECRETXYZ' } }),
        (err: unknown) => {
            assert.ok(err instanceof ConfigError);
            const text = err.message;
            assert.match(text, /unknown key "typo"/);
            assert.match(text, /mqtt\.url .*not a URL/);
            assert.match(text, /fog\.id: required/);
            assert.match(text, /rate\.burst .*<= 100/);
            assert.match(text, /metrics\.enabled .*boolean/);
            assert.match(text, /key\.hex .*<secret>.*hex/);
            assert.doesNotMatch(text, /SECRETXYZ/);
            assert.equal(err.problems.length, 6);
            return true;
        },
    );
    assert.throws(() => loadConfig(schema, { file: join(dir, 'missing.json'), env: { T_FOG_ID: 'a' } }), ConfigError);
    await writeFile(file, '{ not json');
    assert.throws(() => loadConfig(schema, { file, env: { T_FOG_ID: 'a' } }), /not valid JSON/);
});

void test('secure file: atomic JSON write creates 0600 files in a 0700 dir, leaves no temp files', async () => {
    const dir = join(await tempDir('m2m-services-'), 'state');
    const path = join(dir, 'device.json');
    await writeJsonAtomic(path, { counter: 1 });
    await writeJsonAtomic(path, { counter: 2 });
    assert.deepEqual(await readJsonFile(path), { counter: 2 });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(dir), ['device.json']);
    assert.equal(await readJsonFile(join(dir, 'absent.json')), undefined);
});

void test('rate limiter: per-key burst, refill over time, global cap, bounded keys', () => {
    let now = 0;
    const rl = new RateLimiter({ ratePerSecond: 1, burst: 2 }, { ratePerSecond: 0.5, burst: 5 }, 3, () => now);
    assert.equal(rl.allow('a'), true);
    assert.equal(rl.allow('a'), true);
    assert.equal(rl.allow('a'), false, 'per-key burst exhausted');
    now += 1000;
    assert.equal(rl.allow('a'), true, 'refilled one token after 1 s');
    assert.equal(rl.allow('b'), true);
    assert.equal(rl.allow('c'), true);
    assert.equal(rl.allow('d'), false, 'global bucket (5) exhausted although d is new');
    assert.ok(rl.trackedKeys <= 3);
});

void test('fifo limiter: at most N at once, the rest start in arrival order, a failed task frees its slot', async () => {
    assert.throws(() => new FifoLimiter(0), RangeError);
    const limiter = new FifoLimiter(2);
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const tasks = [0, 1, 2, 3, 4].map((i) =>
        limiter.run(async () => {
            started.push(i);
            if (i === 1) throw new Error('task 1 fails');
            await new Promise<void>((resolve) => gates.push(resolve));
            return i;
        }),
    );
    const failed = assert.rejects(tasks[1]!, /task 1 fails/);
    await new Promise((r) => setImmediate(r));
    // 0 runs; 1 ran and failed, handing its slot to 2; 3 and 4 wait.
    assert.deepEqual(started, [0, 1, 2]);
    assert.equal(limiter.running, 2);
    assert.equal(limiter.waiting, 2);
    await failed;
    gates.shift()!(); // 0 finishes -> 3 starts
    assert.equal(await tasks[0], 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2, 3]);
    // A slot given back early (acquire/release) is given back once, however often release is called.
    const release = await new FifoLimiter(1).acquire();
    release();
    release();
    for (const open of gates.splice(0)) open();
    await new Promise((r) => setImmediate(r));
    for (const open of gates.splice(0)) open();
    assert.deepEqual(await Promise.all([tasks[2], tasks[3], tasks[4]]), [2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(limiter.running, 0);
    assert.equal(limiter.waiting, 0);
});

void test('metrics: Prometheus text exposition with labels and histograms; HTTP /metrics and /healthz', async () => {
    const reg = new MetricsRegistry();
    const c = reg.counter('m2m_sessions_total', 'Sessions by outcome');
    c.inc({ outcome: 'established' });
    c.inc({ outcome: 'failed', code: 'failedChallenge' }, 2);
    const g = reg.gauge('m2m_outbox_depth', 'Outbox depth');
    let depth = 3;
    g.onCollect(() => g.set(depth));
    const h = reg.histogram('m2m_session_seconds', 'Latency', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    assert.throws(() => reg.counter('m2m_sessions_total', 'dup'), /twice/);
    assert.throws(() => c.inc({}, -1), /cannot decrease/);
    const text = reg.render();
    assert.match(text, /# TYPE m2m_sessions_total counter/);
    assert.match(text, /m2m_sessions_total\{outcome="established"\} 1/);
    assert.match(text, /m2m_sessions_total\{code="failedChallenge",outcome="failed"\} 2/);
    assert.match(text, /m2m_outbox_depth 3/);
    assert.match(text, /m2m_session_seconds_bucket\{le="0.1"\} 1/);
    assert.match(text, /m2m_session_seconds_bucket\{le="1"\} 2/);
    assert.match(text, /m2m_session_seconds_bucket\{le="\+Inf"\} 3/);
    assert.match(text, /m2m_session_seconds_count 3/);
    let healthy = true;
    const server = await startMetricsServer(reg, () => ({ ledger: healthy }), 0);
    try {
        depth = 4;
        const res = await fetch(`${server.url}/metrics`);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /m2m_outbox_depth 4/);
        assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
        healthy = false;
        const bad = await fetch(`${server.url}/healthz`);
        assert.equal(bad.status, 503);
        assert.deepEqual(await bad.json(), { status: 'degraded', checks: { ledger: false } });
        assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    } finally {
        await server.close();
    }
});

void test('durable map: survives reopen, deletes, torn final line; file is 0600', async () => {
    const path = join(await tempDir('m2m-services-'), 'db', 'outbox.jsonl');
    const m = await DurableMap.open<{ n: number }>(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => m.set(`k${i}`, { n: i })));
    await m.delete('k3');
    await m.delete('absent');
    await m.close();
    await appendFile(path, '{"k":"torn","v":{"n"'); // crash mid-append
    const m2 = await DurableMap.open<{ n: number }>(path);
    assert.equal(m2.size, 49);
    assert.deepEqual(m2.get('k7'), { n: 7 });
    assert.equal(m2.has('k3'), false);
    assert.equal(m2.has('torn'), false);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await m2.close();
    const text = await readFile(path, 'utf8');
    assert.equal(text.trim().split('\n').length, 49, 'compacted on open');
    await assert.rejects(m2.set('x', { n: 1 }), /closed/);
});

void test('topics: devices reach only their own request/reply topics; services their own namespaces', () => {
    const t = new TopicLayout('m2m/v1');
    const dev = { kind: 'device', clientId: 'dev-abc123' } as const;
    assert.equal(t.isAllowed(dev, 'publish', 'm2m/v1/fog/fog-1/req/dev-abc123'), true);
    assert.equal(t.isAllowed(dev, 'publish', 'm2m/v1/fog/fog-1/req/other'), false);
    assert.equal(t.isAllowed(dev, 'publish', 'm2m/v1/fog/fog-1/rep/dev-abc123'), false);
    assert.equal(t.isAllowed(dev, 'publish', 'm2m/v1/csp/in/fog-1'), false);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/fog/fog-1/rep/dev-abc123'), true);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/fog/fog-1/rep/+'), false);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/fog/fog-1/rep/#'), false);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/#'), false);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/fog/fog-1/info'), true);
    assert.equal(t.isAllowed(dev, 'subscribe', 'm2m/v1/fog/fog-1/req/dev-abc123'), false);
    const fog = { kind: 'fog', fogId: 'fog-1', clientId: 'fog-1-svc' } as const;
    assert.equal(t.isAllowed(fog, 'subscribe', 'm2m/v1/fog/fog-1/req/+'), true);
    assert.equal(t.isAllowed(fog, 'subscribe', 'm2m/v1/fog/fog-2/req/+'), false);
    assert.equal(t.isAllowed(fog, 'publish', 'm2m/v1/fog/fog-1/rep/dev-abc123'), true);
    assert.equal(t.isAllowed(fog, 'publish', 'm2m/v1/csp/in/fog-1'), true);
    assert.equal(t.isAllowed(fog, 'publish', 'm2m/v1/csp/in/fog-2'), false);
    assert.equal(t.isAllowed(fog, 'publish', 'm2m/v1/csp/out/fog-1'), false);
    assert.equal(t.isAllowed(fog, 'subscribe', 'm2m/v1/csp/out/fog-1'), true);
    const csp = { kind: 'csp', clientId: 'csp' } as const;
    assert.equal(t.isAllowed(csp, 'subscribe', 'm2m/v1/csp/in/+'), true);
    assert.equal(t.isAllowed(csp, 'publish', 'm2m/v1/csp/out/fog-2'), true);
    assert.equal(t.isAllowed(csp, 'publish', 'm2m/v1/fog/fog-1/rep/x'), false);
    assert.deepEqual(t.parseFogRequest('m2m/v1/fog/fog-1/req/dev-abc123'), { fogId: 'fog-1', clientId: 'dev-abc123' });
    assert.equal(t.parseFogRequest('m2m/v1/fog/fog-1/req/a/b'), undefined);
    assert.equal(t.parseFogRequest('other/fog/fog-1/req/a'), undefined);
    const acl = t.mosquittoAcl(['fog-1']);
    assert.match(acl, /pattern write m2m\/v1\/fog\/\+\/req\/%c/);
    assert.match(acl, /user fog-1\ntopic read m2m\/v1\/fog\/fog-1\/req\/\+/);
    assert.throws(() => new TopicLayout('a/#'), RangeError);
});
