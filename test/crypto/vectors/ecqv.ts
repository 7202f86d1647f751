/**
 * SEC 4 ECQV known-answer vector for P-256 / SHA-256, from the US V2X SCMS reference scripts
 * (`implicit.py` and its unit tests).
 *
 * Hn pinned by this set: e = SHA-256(CertU) shifted right by one bit, i.e. the leftmost
 * floor(log2 n) = 255 bits of the digest — exactly SEC 4's Hn, which is what ecqvHn computes.
 *
 * CertU = tbsCert || SEC1-compressed(P_U): the vector's own certificate encoding, supplied to
 * ecqvGenerateCertificate through its `encode` callback.
 */
export const SCMS_P256_ECQV = {
    /** "This is a test!\0" */
    tbsCert: '54686973206973206120746573742100',
    /** CA private key d_CA and public key Q_CA. */
    dCA: '97d1368e8c07a54f66c9dce284ba76caf4178206614f809a4eb43cb3106aa60e',
    QCAx: '3bb8ffd19b25ee1bb939cd4935fbfa8fbaadba64843338a95595a70ed7479b70',
    QCAy: 'eb60ddc790e3cb05e85225f636d8a7c20df3a8135c4b2ae5396367b4e86077f8',
    /** Requester's private key k_U and request point R_U = k_U*G. */
    kU: '1384c31d6982d52bca3bed8a7e60f52fecdab44e5c0ea166815a8159e09ffb42',
    RUx: 'f45a99137b1bb2c150d6d8cf7292ca07da68c003daa766a9af7f67f5ee916828',
    RUy: 'f6a25216f44cb64a96c229ae00b479857b3b81c1319fb2adf0e8db2681769729',
    /** CA ephemeral key k (SEC 4's k, the paper's r_c). */
    k: 'e2f9cbcec3f28f7dfbef044732c41119816c62909fb720b091fb8f380f1b70dc',
    /** Public-key reconstruction point P_U. */
    PUx: '4a1890e30a584208dad3838d0c5cecb1ed6b01d48893c684c59908f5b38e3d82',
    PUy: 'bae8fb2ef2dc080f248f44fcec458b1b35ecdc80f00c959292cbe21be2ff2ea2',
    /** CertU as the KISA vector prints it. */
    certU: '54686973206973206120746573742100024a1890e30a584208dad3838d0c5cecb1ed6b01d48893c684c59908f5b38e3d82',
    /** Private-key reconstruction value r. */
    r: '1fa86893a1aabe8a79f63360f4b6d5617380b4d84b8c260dd8d3d64163c874fd',
    /** Reconstructed private key d_U. */
    dU: 'c8599eca52b58d691b2bb609cdb53ddd9f49c0d635ab652ec79c546914590274',
};

/**
 * The Korean KISA V2X implicit-certificate specification (KCAC.V2X.IMPCERTSCH v1.1) test vector 1
 * uses the same inputs (k_U, k, d_CA, P_U, CertU) but e = SHA-256(CertU) mod n, the full 256-bit
 * digest — the "other" Hn found in public vector sets. Our ecqvHn must NOT reproduce these values;
 * the test checks both facts so a silent switch of Hn would be caught.
 */
export const KISA_P256_ECQV_FULL_HASH = {
    certU: SCMS_P256_ECQV.certU,
    certUHash: '966eccce39e05b541be571055dc63f7df377e79847167e2b8e92f8327fac384d',
    r: '8a7966677b40674389118e269777451174564a3ad57fec31f4eeff07c641b4c8',
    dU: 'ef6095f346d8da2b95b88102c7d50b39fbdc1bd75eb56d556020b1ee0b9fa5a7',
};
