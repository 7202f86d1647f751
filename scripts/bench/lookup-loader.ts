/**
 * Bench-only contract for the lookup benchmark's large sizes (10⁵, 10⁶ certificates), installed
 * next to the chaincode's contracts on the bench ledger (same chaincode, so the same state
 * namespace). Issuing that many certificates through full ECQV is too slow on 2 cores, so this
 * writes Table II records directly — with the chaincode's own key (`certificateKey`) and record
 * encoding (`encodeCertificateRecord`), status `unused`, through ordinary transactions (endorsed,
 * ordered, validated and committed by the embedded ledger). It is not part of the chaincode package.
 */
import fca from 'fabric-contract-api';
import { Context, Contract } from 'fabric-contract-api';

import { BINARY_CID_BYTES, encodeCertificateRecord } from '@m2m-fabric/chaincode/internal';
import { CertificateStatus } from '@m2m-fabric/chaincode';
import { certificateKey, readCspConfig } from '@m2m-fabric/chaincode/internal';
import { fromHex } from '@m2m-fabric/protocol';

const { Returns, Transaction } = fca;

/** MSP allowed to bulk-load (the CSP, which is the only issuer of certificates). */
export const BULK_LOADER_MSP = 'CSPMSP';

export class BulkLoadContract extends Contract {
    constructor() {
        super('benchload');
    }

    /**
     * Writes one Table II record per entry of `records` (hex of IDCert_i ‖ binary CID, fixed width),
     * all with counter commitment `counterCommitment` (hex). Returns the number written.
     */
    @Transaction()
    @Returns('number')
    async loadCertificates(ctx: Context, records: string, counterCommitment: string): Promise<number> {
        if (ctx.clientIdentity.getMSPID() !== BULK_LOADER_MSP) {
            throw new Error(`only ${BULK_LOADER_MSP} may bulk-load certificate records`);
        }
        const { suite } = await readCspConfig(ctx);
        const bytes = fromHex(records);
        const B = fromHex(counterCommitment);
        const width = suite.pointBytes + BINARY_CID_BYTES;
        if (bytes.length === 0 || bytes.length % width !== 0) {
            throw new Error(`records must be a multiple of ${width} bytes`);
        }
        for (let offset = 0; offset < bytes.length; offset += width) {
            const idCert = bytes.subarray(offset, offset + suite.pointBytes);
            const contentAddress = bytes.subarray(offset + suite.pointBytes, offset + width);
            await ctx.stub.putState(
                certificateKey(ctx, idCert),
                encodeCertificateRecord(suite, {
                    status: CertificateStatus.Unused,
                    counterCommitment: B,
                    contentAddress,
                }),
            );
        }
        return bytes.length / width;
    }
}
