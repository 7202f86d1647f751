/**
 * `m2m material ...`: material traceability on the ledger (docs/traceability.md) through the
 * Fabric client path (FABRIC_CONNECTION / FABRIC_* — a real network, or `m2m peer`'s embedded
 * Gateway endpoints). Prints JSON.
 */
import { readFile } from 'node:fs/promises';

import { decodeScalar, fromHex, getSuite } from '@m2m-fabric/protocol';
import { MaterialsClient, type TransformationSpec } from '@m2m-fabric/sdk';

import { loadConfig } from '@m2m-fabric/common';

import { fabricClient, flags, overridesFrom, schemaFlags } from './services.js';
import { MATERIAL_SCHEMA, settingsHelp } from './settings.js';
import { reportRejection } from './rejection.js';

const USAGE = `m2m material <action> ...   (ledger: FABRIC_CONNECTION / FABRIC_*)
  register-lot <lotId> --kind K --quantity N --unit U --origin O   a raw lot (a bale); manufacturer role
  record <transformation.json> [--equipment-key-file F]          a transformation; with the machine's
                                  static secret (hex in F) it is signed by the machine itself
  lot <lotId> | transformation <id>
  trace <lotId> [--forward] [--depth N]                           backward (ancestors) or forward (recall)
  machine <equipmentId> --since ISO --until ISO                   what a machine processed in a window
  grant|revoke|check <targetId> <askerId>                         the record-query access rule (step 5)`;

export async function runMaterial(argv: string[]): Promise<void> {
    const { values, positionals } = flags(argv, {
        ...schemaFlags(MATERIAL_SCHEMA),
        kind: { type: 'string' },
        quantity: { type: 'string' },
        unit: { type: 'string' },
        origin: { type: 'string' },
        'equipment-key-file': { type: 'string' },
        forward: { type: 'boolean' },
        depth: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
    });
    const [action, first, second] = positionals;
    if (values.help === true || action === undefined) {
        console.log(`${USAGE}\n${settingsHelp('material')}`);
        return;
    }
    const c = loadConfig(MATERIAL_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, MATERIAL_SCHEMA),
    });
    const need = (v: string | boolean | undefined, what: string): string => {
        if (typeof v !== 'string' || v === '') throw new Error(`${action} needs ${what}\n${USAGE}`);
        return v;
    };
    const client = await fabricClient();
    const materials = new MaterialsClient(client.connection, client.registry.chaincodeName);
    let out: unknown;
    try {
        switch (action) {
            case 'register-lot':
                out = await materials.registerLot({
                    lotId: need(first, 'a lot id'),
                    kind: need(values.kind, '--kind'),
                    quantity: Number(need(values.quantity, '--quantity')),
                    unit: need(values.unit, '--unit'),
                    origin: need(values.origin, '--origin'),
                });
                break;
            case 'record': {
                const spec = JSON.parse(
                    await readFile(need(first, 'a transformation JSON file'), 'utf8'),
                ) as TransformationSpec;
                const keyFile = values['equipment-key-file'];
                if (typeof keyFile === 'string') {
                    const suite = getSuite(c.suite);
                    const secretKey = decodeScalar(suite, fromHex((await readFile(keyFile, 'utf8')).trim()));
                    out = await materials.recordTransformation(spec, { suite, secretKey });
                } else {
                    out = await materials.recordTransformation(spec);
                }
                break;
            }
            case 'lot':
                out = await materials.getLot(need(first, 'a lot id'));
                break;
            case 'transformation':
                out = await materials.getTransformation(need(first, 'a transformation id'));
                break;
            case 'trace': {
                const depth = values.depth === undefined ? undefined : Number(values.depth);
                const lot = need(first, 'a lot id');
                out =
                    values.forward === true
                        ? await materials.traceForward(lot, depth)
                        : await materials.traceBackward(lot, depth);
                break;
            }
            case 'machine':
                out = await materials.machineSteps(
                    need(first, 'an equipment id'),
                    new Date(need(values.since, '--since')),
                    new Date(need(values.until, '--until')),
                );
                break;
            case 'grant':
                out = await materials.grantQueryAccess(need(first, 'a target id'), need(second, 'an asker id'));
                break;
            case 'revoke':
                out = await materials.revokeQueryAccess(need(first, 'a target id'), need(second, 'an asker id'));
                break;
            case 'check':
                out = await materials.checkQueryAccess(need(first, 'a target id'), need(second, 'an asker id'));
                break;
            default:
                throw new Error(`unknown action ${action}\n${USAGE}`);
        }
    } catch (error) {
        if (reportRejection(error)) return;
        throw error;
    } finally {
        client.connection.close();
    }
    console.log(JSON.stringify(out, null, 2));
}
