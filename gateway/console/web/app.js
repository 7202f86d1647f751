// The console page: one view per hash route, rendered with lit-html from the JSON API; charts with
// vega-lite through vega-embed; live blocks and events over server-sent events (/api/events).
import { html, render, nothing } from '/vendor/lit-html.js';

const main = document.getElementById('main');
let me;
let route = '';
/** Blocks announced live while this page is open, newest first. */
const liveBlocks = [];

async function api(path, init) {
    const res = await fetch(path, init);
    const body = await res.json().catch(() => ({ error: 'badResponse', message: res.statusText }));
    if (!res.ok)
        throw Object.assign(new Error(body.message ?? res.statusText), { code: body.error, status: res.status });
    return body;
}

const errorBox = (err) =>
    html`<div class="error" data-error=${err.code ?? 'error'}>
        <strong>${err.status === 403 ? 'Not allowed' : 'Error'}</strong> (${err.code ?? 'error'}): ${err.message}
    </div>`;

// The charting libraries (about 1 MB) load on the first chart, so tables render without them.
let chartLibraries;
function loadChartLibraries() {
    const load = (src) =>
        new Promise((resolve, reject) => {
            const script = document.createElement('script');
            script.src = src;
            script.onload = resolve;
            script.onerror = reject;
            document.head.append(script);
        });
    chartLibraries ??= load('/vendor/vega.min.js')
        .then(() => load('/vendor/vega-lite.min.js'))
        .then(() => load('/vendor/vega-embed.min.js'));
    return chartLibraries;
}

function chart(id, spec) {
    // vegaEmbed is the browser build's global (vega-embed.min.js).
    // After the view's template is rendered (the libraries may already be loaded).
    loadChartLibraries().then(() =>
        requestAnimationFrame(() => {
            const el = document.getElementById(id);
            if (el !== null) globalThis.vegaEmbed(el, spec, { actions: false, renderer: 'svg' }).catch(() => {});
        }),
    );
    return html`<div class="chart" id=${id}></div>`;
}

function nav() {
    const views = me?.views ?? [];
    const label = {
        equipment: 'Equipment',
        sessions: 'Certificates & sessions',
        ledger: 'Ledger',
        services: 'Fogs & CSP',
    };
    render(
        html`${views.map(
            (v) => html`<a href="#/${v}" class=${route.startsWith(v) ? 'active' : ''}>${label[v] ?? v}</a>`,
        )}`,
        document.getElementById('nav'),
    );
}

// ---- equipment ----
async function equipmentList(params) {
    const q = new URLSearchParams(params);
    const page = await api(`/api/equipment?${q}`);
    const next = () => show(`equipment?${new URLSearchParams({ ...params, bookmark: page.bookmark })}`);
    const filter = (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        show(`equipment?${new URLSearchParams({ by: f.get('by'), value: f.get('value') })}`);
    };
    const manufacturer = me.role === 'manufacturer';
    return html`<h2>Equipment (M-EB)</h2>
        <form @submit=${filter}>
            ${
                manufacturer
                    ? html`<input type="hidden" name="by" value="owner" /><input
                              type="hidden"
                              name="value"
                              value=${me.mspId}
                          />
                          Owned by <strong>${me.mspId}</strong>`
                    : html`<select name="by">
                              ${['status', 'owner', 'fogGroup'].map(
                                  (b) => html`<option value=${b} ?selected=${page.by === b}>${b}</option>`,
                              )}
                          </select>
                          <input name="value" .value=${page.value} /> <button>Filter</button>`
            }
        </form>
        <table id="equipment-table">
            <thead>
                <tr>
                    <th>Equipment</th>
                    <th>Status</th>
                    <th>Owner</th>
                    <th>Fog group</th>
                    <th>Kind / model</th>
                    <th>Updated</th>
                </tr>
            </thead>
            <tbody>
                ${page.records.map(
                    (r) =>
                        html`<tr data-id=${r.equipmentId}>
                            <td><a href="#/equipment/${encodeURIComponent(r.equipmentId)}">${r.equipmentId}</a></td>
                            <td>${r.status}</td>
                            <td>${r.owner}</td>
                            <td>${r.fogGroup}</td>
                            <td>${r.kind} / ${r.model}</td>
                            <td>${r.updatedAt}</td>
                        </tr>`,
                )}
            </tbody>
        </table>
        <div class="pager">
            ${params.bookmark ? html`<button @click=${() => history.back()}>Previous</button>` : nothing}
            ${page.bookmark !== '' && page.records.length === page.pageSize ? html`<button id="next" @click=${next}>Next page</button>` : nothing}
            <span>${page.records.length} shown, ${page.pageSize} per page</span>
        </div>
        ${me.actions.includes('register') ? registerForm() : nothing}`;
}

function registerForm() {
    const submit = async (e) => {
        e.preventDefault();
        const f = Object.fromEntries(new FormData(e.target));
        try {
            await api('/api/equipment', {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ ...f, privilegeLevel: Number(f.privilegeLevel) }),
            });
            show(route);
        } catch (err) {
            render(errorBox(err), document.getElementById('register-result'));
        }
    };
    return html`<h3>Register equipment</h3>
        <form id="register" @submit=${submit}>
            <input name="equipmentId" placeholder="equipment id" required />
            <input name="kind" value="sensor" /> <input name="model" value="rpi-4b" />
            <input name="fogGroup" value="fog-1" /> <input name="privilegeLevel" value="1" size="2" />
            <button>Register</button>
        </form>
        <div id="register-result"></div>`;
}

async function equipmentDetail(id) {
    const d = await api(`/api/equipment/${encodeURIComponent(id)}`);
    const r = d.record;
    const decommission = async () => {
        try {
            await api(`/api/equipment/${encodeURIComponent(id)}/decommission`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: '{}',
            });
            show(route);
        } catch (err) {
            render(errorBox(err), document.getElementById('action-result'));
        }
    };
    const c = d.certificates;
    return html`<h2>${r.equipmentId}</h2>
        <div class="cards">
            <div class="card" id="equipment-record">
                <div>Status <strong>${r.status}</strong></div>
                <div>Owner ${r.owner}</div>
                <div>Fog group ${r.fogGroup}</div>
                <div>
                    ${r.kind} / ${r.model}, privilege ${r.privilegeLevel}, ${r.serviceType}, access ${r.accessTime}
                </div>
                ${r.replaces ? html`<div>Replaces <a href="#/equipment/${r.replaces}">${r.replaces}</a></div>` : nothing}
                ${r.replacedBy ? html`<div>Replaced by <a href="#/equipment/${r.replacedBy}">${r.replacedBy}</a></div>` : nothing}
                <div>Public key <code>${r.publicKey.slice(0, 20)}…</code></div>
            </div>
            ${
                c === null
                    ? nothing
                    : html`<div class="card" id="certificates">
                          <div>Prepaid sessions remaining <strong id="remaining">${c.unused}</strong></div>
                          <div>
                              Certificates bought ${c.purchased}: unused ${c.unused}, used
                              ${c.used}${c.requested ? `, awaiting issuance ${c.requested}` : ''}${c.missing ? `, not on the ledger ${c.missing}` : ''}
                          </div>
                          <div>
                              <small
                                  >Counted from this manufacturer's own device record; the ledger does not link
                                  certificates to equipment.</small
                              >
                          </div>
                      </div>`
            }
        </div>
        ${
            me.actions.includes('decommission') && r.status !== 'decommissioned' && r.status !== 'replaced'
                ? html`<button id="decommission" @click=${decommission}>Decommission</button>`
                : nothing
        }
        <div id="action-result"></div>
        <h3>History</h3>
        <table id="history-table">
            <thead>
                <tr>
                    <th>Time</th>
                    <th>Status</th>
                    <th>Fog group</th>
                    <th>Change</th>
                    <th>Transaction</th>
                </tr>
            </thead>
            <tbody>
                ${d.history.versions.map(
                    (v) =>
                        html`<tr>
                            <td>${v.timestamp}</td>
                            <td>${v.record?.status ?? 'deleted'}</td>
                            <td>${v.record?.fogGroup ?? ''}</td>
                            <td>
                                ${v.record?.replacedBy ? `replaced by ${v.record.replacedBy}` : v.record?.replaces ? `replaces ${v.record.replaces}` : ''}
                            </td>
                            <td><code>${v.txId.slice(0, 16)}…</code></td>
                        </tr>`,
                )}
            </tbody>
        </table>`;
}

// ---- certificates and sessions ----
async function sessions() {
    const s = await api('/api/sessions');
    const counts = (m) =>
        Object.entries(m).map(
            ([k, v]) =>
                html`<tr>
                    <td>${k}</td>
                    <td>${v}</td>
                </tr>`,
        );
    return html`<h2>Certificates and sessions</h2>
        <div class="cards">
            <div class="card">
                <h3>Certificates by account</h3>
                <table id="issued-table">
                    <thead>
                        <tr>
                            <th>Account</th>
                            <th>Requested</th>
                            <th>Issued</th>
                            <th>Equipment registered</th>
                        </tr>
                    </thead>
                    <tbody>
                        ${Object.keys({ ...s.requestedByOwner, ...s.issuedByOwner, ...s.registeredByOwner }).map(
                            (o) =>
                                html`<tr>
                                    <td>${o}</td>
                                    <td>${s.requestedByOwner[o] ?? 0}</td>
                                    <td>${s.issuedByOwner[o] ?? 0}</td>
                                    <td>${s.registeredByOwner[o] ?? 0}</td>
                                </tr>`,
                        )}
                    </tbody>
                </table>
                <small>Per-device counts are on each device's page, for its manufacturer only.</small>
            </div>
            <div class="card">
                <h3>Sessions by fog</h3>
                <table id="fog-sessions-table">
                    <thead>
                        <tr>
                            <th>Fog</th>
                            <th>Activated</th>
                            <th>Synchronised</th>
                        </tr>
                    </thead>
                    <tbody>
                        ${Object.keys({
                            ...Object.fromEntries(s.activations.map((a) => [a.fogId, 1])),
                            ...s.synchronisations,
                        }).map(
                            (f) =>
                                html`<tr>
                                    <td>${f}</td>
                                    <td>
                                        ${s.activations.filter((a) => a.fogId === f).reduce((n, a) => n + a.count, 0)}
                                    </td>
                                    <td>${s.synchronisations[f] ?? 0}</td>
                                </tr>`,
                        )}
                    </tbody>
                </table>
            </div>
            ${
                s.outcomes.length === 0
                    ? nothing
                    : html`<div class="card">
                          <h3>Outcomes by error code</h3>
                          <table id="outcomes-table">
                              <thead>
                                  <tr>
                                      <th>Service</th>
                                      <th>Outcome / code</th>
                                      <th>Count</th>
                                  </tr>
                              </thead>
                              <tbody>
                                  ${s.outcomes.map(
                                      (o) =>
                                          html`<tr>
                                              <td>${o.service}</td>
                                              <td>${o.code}</td>
                                              <td>${o.count}</td>
                                          </tr>`,
                                  )}
                              </tbody>
                          </table>
                      </div>`
            }
            ${
                Object.keys(s.events).length === 0
                    ? nothing
                    : html`<div class="card">
                          <h3>Chaincode events</h3>
                          <table>
                              <tbody>
                                  ${counts(s.events)}
                              </tbody>
                          </table>
                      </div>`
            }
        </div>
        <h3>Activations per fog over time</h3>
        ${
            s.activations.length === 0
                ? html`<p>No activations yet.</p>`
                : chart('activations-chart', {
                      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
                      width: 640,
                      height: 220,
                      data: { values: s.activations },
                      mark: { type: 'bar' },
                      encoding: {
                          x: {
                              field: 'minute',
                              type: 'temporal',
                              timeUnit: 'utcyearmonthdatehoursminutes',
                              title: 'minute (UTC)',
                          },
                          y: { field: 'count', type: 'quantitative', aggregate: 'sum', title: 'activations' },
                          color: { field: 'fogId', type: 'nominal', title: 'fog' },
                      },
                  })
        }`;
}

// ---- ledger ----
const codesText = (codes) =>
    Object.entries(codes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');

function blockRow(b, fresh = false) {
    return html`<tr data-block=${b.number} class=${fresh ? 'new' : ''}>
        <td><a href="#/ledger/${b.number}">${b.number}</a></td>
        <td>${b.transactions}</td>
        <td>${codesText(b.codes)}</td>
        <td class=${b.mvccConflicts > 0 ? 'bad' : ''}>${b.mvccConflicts}</td>
        <td>${b.endorsers.join(', ')}</td>
        <td>${b.time}</td>
    </tr>`;
}

async function ledger(params) {
    const before = params.before;
    const page = await api(`/api/ledger${before ? `?before=${before}` : ''}`);
    const firstPage = before === undefined;
    const known = new Set(page.blocks.map((b) => b.number));
    const live = firstPage ? liveBlocks.filter((b) => !known.has(b.number) && b.number >= page.height) : [];
    const oldest = page.blocks[page.blocks.length - 1]?.number ?? 0;
    return html`<h2>Ledger</h2>
        <p>
            Height <strong id="height">${Math.max(page.height, ...live.map((b) => b.number + 1))}</strong>; this page:
            ${page.totals.transactions} transactions, ${page.totals.mvccConflicts} MVCC conflicts.
        </p>
        ${chart('tx-chart', {
            $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
            width: 640,
            height: 140,
            data: {
                values: page.blocks.flatMap((b) =>
                    Object.entries(b.codes).map(([code, n]) => ({ block: b.number, code, n })),
                ),
            },
            mark: 'bar',
            encoding: {
                x: { field: 'block', type: 'ordinal', sort: 'ascending' },
                y: { field: 'n', type: 'quantitative', aggregate: 'sum', title: 'transactions' },
                color: { field: 'code', type: 'nominal', title: 'validation code' },
            },
        })}
        <table id="blocks-table">
            <thead>
                <tr>
                    <th>Block</th>
                    <th>Transactions</th>
                    <th>Validation codes</th>
                    <th>MVCC conflicts</th>
                    <th>Endorsing orgs</th>
                    <th>Time</th>
                </tr>
            </thead>
            <tbody>
                ${live.map((b) => blockRow(b, true))}${page.blocks.map((b) => blockRow(b))}
            </tbody>
        </table>
        <div class="pager">
            ${!firstPage ? html`<button @click=${() => show('ledger')}>Newest</button>` : nothing}
            ${oldest > 0 ? html`<button id="older" @click=${() => show(`ledger?before=${oldest}`)}>Older blocks</button>` : nothing}
        </div>`;
}

async function block(n) {
    const b = await api(`/api/ledger/blocks/${n}`);
    return html`<h2>Block ${b.number}</h2>
        <p>
            ${b.transactions.length} transactions, ${b.bytes} bytes; data hash <code>${b.dataHash}</code>, previous
            <code>${b.previousHash}</code>
        </p>
        <table id="transactions-table">
            <thead>
                <tr>
                    <th>Transaction</th>
                    <th>Type</th>
                    <th>Function</th>
                    <th>Event</th>
                    <th>Creator</th>
                    <th>Endorsers</th>
                    <th>Code</th>
                    <th>Time</th>
                </tr>
            </thead>
            <tbody>
                ${b.transactions.map(
                    (t) =>
                        html`<tr>
                            <td><code>${t.txId.slice(0, 16)}…</code></td>
                            <td>${t.type}</td>
                            <td>${t.function ?? ''}</td>
                            <td>${t.event ?? ''}</td>
                            <td>${t.creatorMsp}</td>
                            <td>${t.endorsers.join(', ')}</td>
                            <td class=${t.code === 'VALID' ? 'ok' : 'bad'}>${t.code}</td>
                            <td>${t.timestamp}</td>
                        </tr>`,
                )}
            </tbody>
        </table>`;
}

// ---- fogs and CSP ----
async function services() {
    const s = await api('/api/services');
    return html`<h2>Fogs and CSP</h2>
        <div class="cards" id="services">
            ${s.services.map(
                (x) =>
                    html`<div class="card" data-service=${x.name}>
                        <h3>${x.name} <small>(${x.kind})</small></h3>
                        <div>
                            Health
                            <strong class=${x.health.status === 'ok' ? 'ok' : 'bad'}>${x.health.status}</strong>
                            ${Object.entries(x.health.checks).map(([k, v]) => html` · ${k} <span class=${v ? 'ok' : 'bad'}>${v ? 'ok' : 'failing'}</span>`)}
                        </div>
                        ${
                            x.error
                                ? errorBox({ message: x.error })
                                : html`<div>
                                          ${x.kind === 'fog' ? 'Outbox depth' : 'Pending synchronisations'}
                                          <strong>${x.outboxDepth}</strong>
                                      </div>
                                      <div>Sessions: ${codesText(x.sessions) || 'none yet'}</div>
                                      <div>Ledger errors: ${codesText(x.ledgerErrors) || 'none'}</div>
                                      <div>
                                          ${x.kind === 'fog' ? 'Activation' : 'Synchronisation'} latency:
                                          ${x.latency.count} observed, mean
                                          ${x.latency.count ? ((x.latency.sum / x.latency.count) * 1000).toFixed(0) : '–'}
                                          ms
                                      </div>
                                      ${chart(`latency-${x.name}`, {
                                          $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
                                          width: 300,
                                          height: 120,
                                          data: {
                                              values: x.latency.buckets.map((b, i, all) => ({
                                                  le: b.le === '+Inf' ? '+Inf' : `≤${Number(b.le) * 1000} ms`,
                                                  order: i,
                                                  count: b.count - (i > 0 ? all[i - 1].count : 0),
                                              })),
                                          },
                                          mark: 'bar',
                                          encoding: {
                                              x: {
                                                  field: 'le',
                                                  type: 'ordinal',
                                                  sort: { field: 'order' },
                                                  title: 'latency bucket',
                                              },
                                              y: { field: 'count', type: 'quantitative', title: 'sessions' },
                                          },
                                      })}`
                        }
                    </div>`,
            )}
        </div>`;
}

// ---- routing ----
async function show(r) {
    if (location.hash !== `#/${r}`) {
        location.hash = `#/${r}`;
        return;
    }
    route = r;
    nav();
    const [path, query] = r.split('?');
    const params = Object.fromEntries(new URLSearchParams(query ?? ''));
    const parts = path.split('/');
    try {
        let view;
        if (parts[0] === 'equipment' && parts[1]) view = await equipmentDetail(decodeURIComponent(parts[1]));
        else if (parts[0] === 'equipment') view = await equipmentList(params);
        else if (parts[0] === 'sessions') view = await sessions();
        else if (parts[0] === 'ledger' && parts[1]) view = await block(Number(parts[1]));
        else if (parts[0] === 'ledger') view = await ledger(params);
        else if (parts[0] === 'services') view = await services();
        else view = html`<p>Unknown view.</p>`;
        if (route === r) render(html`<div data-view=${parts[0]}>${view}</div>`, main);
    } catch (err) {
        if (route === r) render(html`<div data-view=${parts[0]}>${errorBox(err)}</div>`, main);
    }
}

function live() {
    const indicator = document.getElementById('live');
    const source = new EventSource('/api/events');
    source.addEventListener('hello', () => {
        indicator.textContent = '● live';
        indicator.className = 'on';
    });
    source.addEventListener('error', () => {
        indicator.textContent = '○ reconnecting';
        indicator.className = '';
    });
    source.addEventListener('block', (e) => {
        const b = JSON.parse(e.data).block;
        liveBlocks.unshift(b);
        if (liveBlocks.length > 50) liveBlocks.pop();
        if (route === 'ledger') show('ledger');
    });
    source.addEventListener('event', () => {
        if (route === 'sessions') show('sessions');
    });
}

window.addEventListener('hashchange', () => show(location.hash.replace(/^#\//, '') || 'equipment'));

try {
    me = await api('/api/me');
    document.getElementById('who').textContent = `${me.mspId} (${me.role})`;
    live();
    show(location.hash.replace(/^#\//, '') || 'equipment');
} catch (err) {
    render(
        html`${errorBox(err)}
            <p>Open the login link the console printed.</p>`,
        main,
    );
}
