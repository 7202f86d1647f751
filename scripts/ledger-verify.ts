/**
 * `npm run ledger:verify -- <dataDir>`: checks the embedded ledger's whole hash chain and prints
 * `OK height <n>` or the first bad block. `<dataDir>` is the demo's (`npm start`, default
 * .data/demo) or `m2m peer`'s data directory, or the ledger's own. Exit status 0 when the chain
 * verifies, 1 when it does not, 2 on a usage or I/O error (e.g. the ledger is open in another
 * process: stop the demo or peer first).
 */
import { verifyLedger } from '@m2m-fabric/embedded-ledger';

const dataDir = process.argv[2];
if (dataDir === undefined || process.argv.length > 3) {
    console.error(
        'usage: npm run ledger:verify -- <dataDir>   (the data directory of npm start / m2m demo or m2m peer, or a ledger directory)',
    );
    process.exit(2);
}
try {
    const result = await verifyLedger(dataDir);
    if (result.ok) {
        console.log(`OK height ${result.height}`);
    } else {
        console.log(`BAD block ${result.firstBadBlock} (height ${result.height}): ${result.reason}`);
        process.exitCode = 1;
    }
} catch (err) {
    console.error(`ledger:verify: ${(err as Error).message}`);
    process.exitCode = 2;
}
