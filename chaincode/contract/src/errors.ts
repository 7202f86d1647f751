/**
 * Rejections raised by the contracts. Fabric hands a client only the message string of a failed
 * transaction, so every rejection's message has the wire form `<code>: <detail>`
 * (formatErrorMessage) and the SDK recovers the code with parseErrorCode.
 */
import { ErrorCode, ProtocolError, formatErrorMessage } from '@m2m-fabric/protocol';

/** A rejection whose message already carries its code in the wire form. */
export class ContractError extends ProtocolError {
    readonly detail: string;
    constructor(code: ErrorCode, detail: string, options?: ErrorOptions) {
        super(code, formatErrorMessage(code, detail), options);
        this.name = 'ContractError';
        this.detail = detail;
    }
}

/** Throws a coded rejection; the return type lets callers use it in expressions. */
export function reject(code: ErrorCode, detail: string): never {
    throw new ContractError(code, detail);
}

/**
 * Turns whatever a transaction threw into a coded rejection. Errors from the protocol module carry
 * their code but a bare message; they are re-wrapped so the code leads the message. Anything else
 * is an input the protocol decoders did not anticipate (a library refusing a value), reported as
 * malformed input rather than as an uncoded failure.
 */
export function toContractError(error: unknown): ContractError {
    if (error instanceof ContractError) {
        return error;
    }
    if (error instanceof ProtocolError) {
        return new ContractError(error.code, error.message, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new ContractError(ErrorCode.MalformedInput, message, { cause: error });
}

export { ErrorCode };
