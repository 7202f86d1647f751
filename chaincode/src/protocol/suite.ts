/**
 * Cryptographic suites (DESIGN.md §2). Every protocol function takes a Suite so a deployment can
 * choose P-256/SHA-256 (default) or P-384/SHA-384 (paper 004's 384-bit case); the suite is
 * recorded on the ledger with Q_c.
 */
import type { WeierstrassPoint, WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';

export type SuiteId = 'P256-SHA256' | 'P384-SHA384';
export type Point = WeierstrassPoint<bigint>;

export interface Suite {
    readonly id: SuiteId;
    /** One-byte wire tag for the suite in canonical encodings (P256 = 1, P384 = 2). */
    readonly tag: number;
    readonly Point: WeierstrassPointCons<bigint>;
    /** Group order n. */
    readonly n: bigint;
    /** Fixed width of a scalar, in bytes (32 / 48). */
    readonly scalarBytes: number;
    /** Length of a SEC1 compressed point (33 / 49). */
    readonly pointBytes: number;
    /** Digest length of the suite's hash (32 / 48). */
    readonly hashBytes: number;
    /** Suite hash (SHA-256 / SHA-384). */
    hash(msg: Uint8Array): Uint8Array;
    /** Name used by WebCrypto / node:crypto for the curve ('P-256' / 'P-384'). */
    readonly webCryptoCurve: 'P-256' | 'P-384';
}

export declare const P256_SHA256: Suite;
export declare const P384_SHA384: Suite;
export declare const DEFAULT_SUITE: Suite;
/** Throws DecodeError('unknownSuite') for anything else. */
export declare function getSuite(id: string): Suite;
/** Throws DecodeError('unknownSuite') for an unknown tag. */
export declare function suiteFromTag(tag: number): Suite;
