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
        records: 'Records',
        trace: 'Traceability',
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
                              ${c.used}${c.requested ? `, awaiting issuance ${c.requested}` : ''}${c.revoked ? `, revoked ${c.revoked}` : ''}${c.missing ? `, not on the ledger ${c.missing}` : ''}
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

// ---- records ----
async function records(params) {
    const w = await api('/api/records');
    const writer = params.writer ?? w.writers[0]?.writer;
    const page = writer
        ? await api(
              `/api/records/${encodeURIComponent(writer)}?${new URLSearchParams({ bookmark: params.bookmark ?? '' })}`,
          )
        : undefined;
    return html`<h2>Communication records</h2>
        <table id="writers-table">
            <thead>
                <tr>
                    <th>Writer</th>
                    <th>Batches</th>
                    <th>Records anchored</th>
                    <th>Last anchored</th>
                    <th>Records visible to you</th>
                </tr>
            </thead>
            <tbody>
                ${w.writers.map(
                    (h) =>
                        html`<tr data-writer=${h.writer} class=${h.writer === writer ? 'active' : ''}>
                            <td><a href="#/records?writer=${encodeURIComponent(h.writer)}">${h.writer}</a></td>
                            <td>${h.sequence}</td>
                            <td>${h.treeSize}</td>
                            <td>${h.anchoredAt}</td>
                            <td>${h.recordsVisible ? 'yes' : 'batches only'}</td>
                        </tr>`,
                )}
            </tbody>
        </table>
        ${
            page === undefined
                ? html`<p>No batch anchored yet.</p>`
                : html`<h3>Batches of ${writer}</h3>
                      <table id="batches-table">
                          <thead>
                              <tr>
                                  <th>Batch</th>
                                  <th>Tree size</th>
                                  <th>Root</th>
                                  <th>Anchored</th>
                              </tr>
                          </thead>
                          <tbody>
                              ${page.anchors.map(
                                  (a) =>
                                      html`<tr data-batch=${a.sequence}>
                                          <td>
                                              <a href="#/records/${encodeURIComponent(writer)}/${a.sequence}"
                                                  >${a.sequence}</a
                                              >
                                          </td>
                                          <td>${a.treeSize}</td>
                                          <td><code>${a.root.slice(0, 16)}…</code></td>
                                          <td>${a.anchoredAt}</td>
                                      </tr>`,
                              )}
                          </tbody>
                      </table>
                      <div class="pager">
                          ${params.bookmark ? html`<button @click=${() => history.back()}>Previous</button>` : nothing}
                          ${page.bookmark !== '' ? html`<button id="next" @click=${() => show(`records?${new URLSearchParams({ writer, bookmark: page.bookmark })}`)}>Next page</button>` : nothing}
                          <span>${page.anchors.length} shown, ${page.pageSize} per page</span>
                      </div>`
        }
        ${verifyPanel(w.verification)}`;
}

function verifyPanel(enabled) {
    const check = async (file) => {
        const out = document.getElementById('verify-result');
        const bytes = new Uint8Array(await file.arrayBuffer());
        let binary = '';
        for (const b of bytes) binary += String.fromCharCode(b);
        try {
            const r = await api('/api/records/verify', {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ receipt: globalThis.btoa(binary) }),
            });
            render(
                html`<div class="verdict ok" data-valid="true">
                    <strong>Valid</strong>: ${file.name} — record ${r.record.type} from ${r.record.sender.role}
                    <code>${r.record.sender.keyId.slice(0, 12)}…</code> at ${r.record.timestamp}, leaf
                    ${r.placement.leafIndex} of batch ${r.placement.sequence} of ${r.placement.writer}, block
                    ${r.placement.blockNumber}
                </div>`,
                out,
            );
        } catch (err) {
            render(
                html`<div class="verdict bad" data-valid="false" data-error=${err.code ?? 'error'}>
                    <strong>Invalid</strong>: ${file.name} — <code>${err.code ?? 'error'}</code> ${err.message}
                </div>`,
                out,
            );
        }
    };
    const drop = (e) => {
        e.preventDefault();
        e.currentTarget.classList.remove('over');
        const file = e.dataTransfer?.files?.[0];
        if (file) check(file);
    };
    return html`<h3>Verify a receipt</h3>
        ${
            enabled
                ? html`<div
                          id="receipt-drop"
                          class="drop"
                          @dragover=${(e) => {
                              e.preventDefault();
                              e.currentTarget.classList.add('over');
                          }}
                          @dragleave=${(e) => e.currentTarget.classList.remove('over')}
                          @drop=${drop}
                      >
                          Drop a receipt file here, or
                          <input
                              type="file"
                              id="receipt-file"
                              @change=${(e) => e.target.files[0] && check(e.target.files[0])}
                          />
                          <br /><small
                              >Checked on the server with the SDK's ReceiptVerifier (as <code>m2m records verify</code>)
                              against the channel's MSP roots only.</small
                          >
                      </div>
                      <div id="verify-result"></div>`
                : html`<p>No channel trust file configured (<code>--trust</code>).</p>`
        }`;
}

async function batch(writer, sequence, params) {
    const bookmark = params.bookmark ?? '';
    const b = await api(`/api/records/${encodeURIComponent(writer)}/${sequence}?${new URLSearchParams({ bookmark })}`);
    return html`<h2>Batch ${b.anchor.sequence} of ${writer}</h2>
        <p>
            Leaves ${b.firstLeaf}–${b.anchor.treeSize - 1}, root <code>${b.anchor.root}</code> (the journal reproduces
            it), anchored ${b.anchor.anchoredAt}.
        </p>
        <table id="records-table">
            <thead>
                <tr>
                    <th>Leaf</th>
                    <th>Type</th>
                    <th>Sender</th>
                    <th>Receiver</th>
                    <th>Sequence</th>
                    <th>Time</th>
                    <th>Size</th>
                    <th>Payload digest</th>
                </tr>
            </thead>
            <tbody>
                ${b.records.map(
                    (r) =>
                        html`<tr data-leaf=${r.leafIndex}>
                            <td>${r.leafIndex}</td>
                            <td>${r.type}</td>
                            <td>${r.sender.role} <code>${r.sender.keyId.slice(0, 12)}…</code></td>
                            <td>${r.receiver.role} <code>${r.receiver.keyId.slice(0, 12)}…</code></td>
                            <td>${r.sequence}</td>
                            <td>${r.timestamp}</td>
                            <td>${r.size}</td>
                            <td><code>${r.digest.slice(0, 16)}…</code></td>
                        </tr>`,
                )}
            </tbody>
        </table>
        <div class="pager">
            ${bookmark !== '' ? html`<button @click=${() => history.back()}>Previous</button>` : nothing}
            ${b.bookmark !== '' ? html`<button id="next" @click=${() => show(`records/${encodeURIComponent(writer)}/${sequence}?${new URLSearchParams({ bookmark: b.bookmark })}`)}>Next page</button>` : nothing}
        </div>`;
}

// ---- traceability ----
function traceGraph(id, lot, steps) {
    // Lots are nodes, each transformation an edge from each input to each output, labelled with
    // its machine and step; vega's force layout places them, lots pulled to columns by generation.
    const lots = new Map([[lot.lotId, { id: lot.lotId, generation: lot.generation, root: true }]]);
    const edges = [];
    for (const s of steps) {
        for (const i of s.inputs) if (!lots.has(i.lotId)) lots.set(i.lotId, { id: i.lotId });
        for (const o of s.outputs) if (!lots.has(o.lotId)) lots.set(o.lotId, { id: o.lotId });
    }
    const nodes = [...lots.values()];
    const index = new Map(nodes.map((n, k) => [n.id, k]));
    // Column: steps from the traced lot, signed (ancestors left, descendants right).
    const column = new Map([[lot.lotId, 0]]);
    for (const s of [...steps].sort((a, b) => a.distance - b.distance))
        for (const i of s.inputs)
            for (const o of s.outputs) {
                edges.push({
                    source: index.get(i.lotId),
                    target: index.get(o.lotId),
                    label: `${s.equipmentId} · ${s.step}`,
                });
                if (!column.has(i.lotId) && column.has(o.lotId)) column.set(i.lotId, column.get(o.lotId) - 1);
                if (!column.has(o.lotId) && column.has(i.lotId)) column.set(o.lotId, column.get(i.lotId) + 1);
            }
    nodes.forEach((n) => (n.column = column.get(n.id) ?? 0));
    const cols = nodes.map((n) => n.column);
    const span = Math.max(1, Math.max(...cols) - Math.min(...cols));
    const width = Math.max(640, 160 * span);
    const height = Math.max(260, 28 * nodes.length);
    const spec = {
        $schema: 'https://vega.github.io/schema/vega/v6.json',
        width,
        height,
        padding: 10,
        autosize: 'none',
        signals: [
            { name: 'cx', update: 'width / 2' },
            { name: 'cy', update: 'height / 2' },
        ],
        data: [
            { name: 'node-data', values: nodes },
            { name: 'link-data', values: edges },
        ],
        marks: [
            {
                name: 'nodes',
                type: 'symbol',
                zindex: 1,
                from: { data: 'node-data' },
                encode: {
                    enter: {
                        fill: { signal: "datum.root ? '#c0392b' : '#2c7fb8'" },
                        size: { value: 160 },
                        tooltip: { field: 'id' },
                    },
                },
                transform: [
                    {
                        type: 'force',
                        iterations: 300,
                        static: true,
                        forces: [
                            { force: 'collide', radius: 18 },
                            { force: 'nbody', strength: -40 },
                            { force: 'link', links: 'link-data', distance: 60 },
                            { force: 'x', x: 'datum.colx', strength: 1 },
                            { force: 'center', x: { signal: 'cx' }, y: { signal: 'cy' } },
                        ],
                    },
                ],
            },
            {
                type: 'text',
                from: { data: 'nodes' },
                zindex: 2,
                encode: {
                    update: {
                        x: { field: 'x' },
                        y: { field: 'y', offset: -10 },
                        text: { field: 'datum.id' },
                        align: { value: 'center' },
                        fontSize: { value: 10 },
                    },
                },
            },
            {
                type: 'path',
                from: { data: 'link-data' },
                interactive: false,
                encode: { update: { stroke: { value: '#999' }, strokeWidth: { value: 1 } } },
                transform: [
                    {
                        type: 'linkpath',
                        shape: 'line',
                        sourceX: 'datum.source.x',
                        sourceY: 'datum.source.y',
                        targetX: 'datum.target.x',
                        targetY: 'datum.target.y',
                    },
                ],
            },
            {
                type: 'text',
                from: { data: 'link-data' },
                encode: {
                    update: {
                        x: { signal: '(datum.source.x + datum.target.x) / 2' },
                        y: { signal: '(datum.source.y + datum.target.y) / 2', offset: 10 },
                        text: { field: 'label' },
                        align: { value: 'center' },
                        fontSize: { value: 9 },
                        fill: { value: '#555' },
                    },
                },
            },
        ],
    };
    // The x force pulls each lot to its column's position on the x scale.
    spec.data[0].transform = [
        { type: 'formula', as: 'colx', expr: `60 + (datum.column - ${Math.min(...cols)}) * ${(width - 120) / span}` },
    ];
    return chart(id, spec);
}

async function trace(params) {
    const search = (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        show(`trace?${new URLSearchParams({ lot: f.get('lot'), direction: f.get('direction') })}`);
    };
    const machineWindow = (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        show(`trace?${new URLSearchParams({ machine: f.get('machine'), from: f.get('from'), until: f.get('until') })}`);
    };
    const direction = params.direction === 'forward' ? 'forward' : 'backward';
    let result = nothing;
    if (params.lot) {
        const t = await api(
            `/api/lots/${encodeURIComponent(params.lot)}/trace?${new URLSearchParams({ direction, bookmark: params.bookmark ?? '' })}`,
        );
        result = html`<h3>${direction === 'backward' ? 'Ancestors of' : 'Descendants of'} ${t.lot.lotId}</h3>
            <p>
                ${t.lot.kind}, ${t.lot.quantity} ${t.lot.unit} (${t.lot.consumed} consumed), owner ${t.lot.owner},
                generation ${t.lot.generation}; ${t.count} transformations on this page.
            </p>
            ${t.steps.length > 0 ? traceGraph('trace-graph', t.lot, t.steps) : nothing}
            ${stepsTable('trace-table', t.steps, true)}
            <div class="pager">
                ${params.bookmark ? html`<button @click=${() => history.back()}>Previous</button>` : nothing}
                ${t.bookmark !== '' ? html`<button id="next" @click=${() => show(`trace?${new URLSearchParams({ lot: params.lot, direction, bookmark: t.bookmark })}`)}>Next page</button>` : nothing}
            </div>`;
    } else if (params.machine) {
        const m = await api(
            `/api/machines/${encodeURIComponent(params.machine)}/steps?${new URLSearchParams({ from: new Date(params.from).toISOString(), until: new Date(params.until).toISOString() })}`,
        );
        result = html`<h3>What ${m.equipmentId} processed from ${m.from} to ${m.until}</h3>
            <p id="machine-lots">
                ${m.lots.length} lots:
                ${m.lots.map((l) => html`<a href="#/trace?lot=${encodeURIComponent(l)}&direction=forward">${l}</a> `)}
            </p>
            ${stepsTable('machine-table', m.steps, false)}`;
    }
    const now = new Date();
    const dayAgo = new Date(now.getTime() - 86_400_000);
    const local = (d) => d.toISOString().slice(0, 16);
    return html`<h2>Material traceability</h2>
        <form id="trace-search" @submit=${search}>
            Lot <input name="lot" .value=${params.lot ?? ''} placeholder="lot id" required />
            <select name="direction">
                <option value="backward" ?selected=${direction === 'backward'}>backward (where it came from)</option>
                <option value="forward" ?selected=${direction === 'forward'}>forward (recall: where it went)</option>
            </select>
            <button>Trace</button>
        </form>
        <form id="machine-search" @submit=${machineWindow}>
            Machine <input name="machine" .value=${params.machine ?? ''} placeholder="equipment id" required /> from
            <input name="from" type="datetime-local" .value=${params.from ?? local(dayAgo)} /> until
            <input name="until" type="datetime-local" .value=${params.until ?? local(now)} /> (UTC)
            <button>Lots processed</button>
        </form>
        ${result}`;
}

function stepsTable(id, steps, withDistance) {
    return html`<table id=${id}>
        <thead>
            <tr>
                ${withDistance ? html`<th>Distance</th>` : nothing}
                <th>Transformation</th>
                <th>Kind</th>
                <th>Machine</th>
                <th>Step</th>
                <th>Inputs</th>
                <th>Outputs</th>
                <th>Recorded</th>
            </tr>
        </thead>
        <tbody>
            ${steps.map(
                (s) =>
                    html`<tr data-transformation=${s.transformationId}>
                        ${withDistance ? html`<td>${s.distance}</td>` : nothing}
                        <td>${s.transformationId}</td>
                        <td>${s.kind}</td>
                        <td><a href="#/equipment/${encodeURIComponent(s.equipmentId)}">${s.equipmentId}</a></td>
                        <td>${s.step}</td>
                        <td>
                            ${s.inputs.map((i) => html`<a href="#/trace?lot=${encodeURIComponent(i.lotId)}&direction=backward">${i.lotId}</a> (${i.quantity}) `)}
                        </td>
                        <td>
                            ${s.outputs.map((o) => html`<a href="#/trace?lot=${encodeURIComponent(o.lotId)}&direction=forward">${o.lotId}</a> (${o.quantity}) `)}
                        </td>
                        <td>${s.recordedAt} by ${s.recordedBy}</td>
                    </tr>`,
            )}
        </tbody>
    </table>`;
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
        else if (parts[0] === 'records' && parts[2])
            view = await batch(decodeURIComponent(parts[1]), Number(parts[2]), params);
        else if (parts[0] === 'records') view = await records(params);
        else if (parts[0] === 'trace') view = await trace(params);
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
