/**
 * `m2m demo` (what `npm start` runs): its settings are DEMO_SCHEMA (settings.ts), read like every
 * command's — flag, then environment variable, then `--config` file, then default.
 */
import { ConfigError, loadConfig } from '@m2m-fabric/common';
import type { ConsoleAction } from '@m2m-fabric/console';
import type { DemoSummary } from './run.js';
import type { EmbeddedNetwork } from './network.js';
import { flags, overridesFrom, schemaFlags } from '../services.js';
import { DEMO_SCHEMA, settingsHelp } from '../settings.js';

/** Runs `m2m demo`; `usage` is the command list printed with its `--help`. */
export async function runDemoCommand(argv: string[], usage: string): Promise<void> {
    const { values } = flags(argv, { ...schemaFlags(DEMO_SCHEMA), json: { type: 'boolean' } });
    if (values.help === true) {
        console.log(`${usage}\n\nm2m demo [--config file] [--json] [--<key> value ...]\n${settingsHelp('demo')}`);
        return;
    }
    const c = loadConfig(DEMO_SCHEMA, {
        file: values.config as string | undefined,
        overrides: overridesFrom(values, DEMO_SCHEMA),
    });
    const options = {
        dataDir: c['data-dir'] ?? '.data/demo',
        devices: c.devices,
        sessions: c.sessions,
        fogs: c.fogs,
        batchTimeoutMs: Math.round(c['batch-timeout'] * 1000),
        print: (line: string) => console.log(line),
    };
    if (c.scenario === 'spinning') {
        const { formatSpinningSummary, runSpinning } = await import('./spinning.js');
        const summary = await runSpinning({
            dataDir: c['data-dir'] ?? '.data/spinning',
            batchTimeoutMs: options.batchTimeoutMs,
            print: options.print,
        });
        console.log('--- summary ---');
        console.log(formatSpinningSummary(summary));
        if (values.json) console.log(JSON.stringify(summary));
        if (summary.traced === 0 || summary.queries === 0) process.exitCode = 1;
        return;
    }
    const { formatSummary, runDemo } = await import('./run.js');
    const printSummary = (summary: DemoSummary): void => {
        console.log('--- summary ---');
        console.log(formatSummary(summary));
        if (values.json) console.log(JSON.stringify(summary));
    };
    const consolePort = c['console-port'];
    // The console (and with it the ledger's native addon) loads only when it is on.
    const consoleModule = c['no-console'] ? undefined : await import('@m2m-fabric/console');
    const { CONSOLE_ACTIONS = [] } = consoleModule ?? {};
    const actions: ConsoleAction[] = [];
    for (const a of (c['console-enable'] ?? '').split(',').filter((x) => x !== '')) {
        if (!(CONSOLE_ACTIONS as readonly string[]).includes(a))
            throw new ConfigError([`--console-enable: unknown action ${a} (one of ${CONSOLE_ACTIONS.join(', ')})`]);
        actions.push(a as ConsoleAction);
    }
    let printed = false;
    const attach =
        consoleModule === undefined
            ? undefined
            : async (
                  net: EmbeddedNetwork,
              ): Promise<{ hold(s: DemoSummary): Promise<void>; close(): Promise<void> }> => {
                  const served = await consoleModule.startEmbeddedConsole(net, {
                      port: consolePort,
                      host: c['console-host'],
                      actions,
                      organisations: (await import('./network.js')).networkOrganisations(net),
                  });
                  console.log(`console ${served.url} (--no-console to turn it off); log in as:`);
                  for (const l of served.logins) console.log(`  ${l.mspId} (${l.role}): ${l.url}`);
                  return {
                      hold: async (summary) => {
                          printSummary(summary);
                          printed = true;
                          console.log(`console still serving at ${served.url}; Ctrl-C to stop`);
                          await new Promise<void>((resolve) => {
                              process.once('SIGINT', () => resolve());
                              process.once('SIGTERM', () => resolve());
                          });
                      },
                      close: () => served.close(),
                  };
              };
    const summary = await runDemo({ ...options, ...(attach !== undefined ? { attach } : {}) });
    if (!printed) printSummary(summary);
    if (summary.failed > 0 && summary.established === 0) process.exitCode = 1;
}
