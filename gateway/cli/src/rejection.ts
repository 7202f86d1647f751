/** How the `m2m` subcommands that submit to the chaincode report its rejection. */
import { EndorseError } from '@m2m-fabric/sdk';

/**
 * A chaincode rejection (unknownLot, checkpointNotNewer, ...) is the user's answer, not a crash:
 * print its code and message, set exit code 1 and return true. Anything else: false (rethrow it).
 */
export function reportRejection(error: unknown): boolean {
    if (!(error instanceof EndorseError)) return false;
    console.error(`error ${error.errorCode ?? 'rejected'}: ${error.chaincodeMessage}`);
    process.exitCode = 1;
    return true;
}
