/**
 * The traceability view's API (docs/traceability.md): one page of a lot's backward or forward
 * trace through the materials contract's paged queries, and the transformations a machine
 * recorded between two times. Every member role may read lots (the material chain is shared so
 * a recall reaches every downstream party), so the chaincode's role check is the only gate.
 */
import type { Context, Hono } from 'hono';
import { MaterialsClient } from '@m2m-fabric/sdk';
import type { ConsoleEnv, ConsoleIdentity } from './identity.js';

const TRACE_PAGE = 50;

type Fail = (c: Context, err: unknown) => Response;

/** Adds the traceability routes to the console's app. */
export function addTraceRoutes(app: Hono<ConsoleEnv>, chaincodeName: string, failure: Fail): void {
    const materials = (i: ConsoleIdentity): MaterialsClient =>
        new MaterialsClient(i.client.connection, chaincodeName, i.client.deadlineMs);

    app.get('/api/lots/:id/trace', async (c) => {
        const i = c.get('identity');
        const direction = c.req.query('direction') === 'forward' ? 'forward' : 'backward';
        try {
            const page = await materials(i).tracePage(direction, c.req.param('id'), {
                pageSize: TRACE_PAGE,
                bookmark: c.req.query('bookmark') ?? '',
            });
            return c.json({ ...page, pageSize: TRACE_PAGE });
        } catch (err) {
            return failure(c, err);
        }
    });

    app.get('/api/machines/:id/steps', async (c) => {
        const i = c.get('identity');
        const from = new Date(c.req.query('from') ?? '');
        const until = new Date(c.req.query('until') ?? '');
        if (Number.isNaN(from.getTime()) || Number.isNaN(until.getTime()))
            return c.json({ error: 'malformedInput', message: 'from and until must be ISO times' }, 400);
        try {
            const steps = await materials(i).machineSteps(c.req.param('id'), from, until);
            const lots = [...new Set(steps.flatMap((s) => [...s.inputs, ...s.outputs].map((l) => l.lotId)))];
            return c.json({ equipmentId: c.req.param('id'), from, until, steps, lots });
        } catch (err) {
            return failure(c, err);
        }
    });
}
