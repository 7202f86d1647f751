/**
 * RFC 9380 Appendix J known-answer vectors for the two hash_to_curve suites the protocol uses
 * (J.1.1 P256_XMD:SHA-256_SSWU_RO_, J.2.1 P384_XMD:SHA-384_SSWU_RO_). u0/u1 are the
 * hash_to_field(msg, 2) outputs over GF(p); P is the resulting point.
 */
export interface HashToCurveVector {
    msg: string;
    px: string;
    py: string;
    u0: string;
    u1: string;
}

export const P256_XMD_SHA256_SSWU_RO = {
    dst: 'QUUX-V01-CS02-with-P256_XMD:SHA-256_SSWU_RO_',
    vectors: [
        {
            msg: '',
            px: '2c15230b26dbc6fc9a37051158c95b79656e17a1a920b11394ca91c44247d3e4',
            py: '8a7a74985cc5c776cdfe4b1f19884970453912e9d31528c060be9ab5c43e8415',
            u0: 'ad5342c66a6dd0ff080df1da0ea1c04b96e0330dd89406465eeba11582515009',
            u1: '8c0f1d43204bd6f6ea70ae8013070a1518b43873bcd850aafa0a9e220e2eea5a',
        },
        {
            msg: 'abc',
            px: '0bb8b87485551aa43ed54f009230450b492fead5f1cc91658775dac4a3388a0f',
            py: '5c41b3d0731a27a7b14bc0bf0ccded2d8751f83493404c84a88e71ffd424212e',
            u0: 'afe47f2ea2b10465cc26ac403194dfb68b7f5ee865cda61e9f3e07a537220af1',
            u1: '379a27833b0bfe6f7bdca08e1e83c760bf9a338ab335542704edcd69ce9e46e0',
        },
        {
            msg: 'abcdef0123456789',
            px: '65038ac8f2b1def042a5df0b33b1f4eca6bff7cb0f9c6c1526811864e544ed80',
            py: 'cad44d40a656e7aff4002a8de287abc8ae0482b5ae825822bb870d6df9b56ca3',
            u0: '0fad9d125a9477d55cf9357105b0eb3a5c4259809bf87180aa01d651f53d312c',
            u1: 'b68597377392cd3419d8fcc7d7660948c8403b19ea78bbca4b133c9d2196c0fb',
        },
    ] satisfies HashToCurveVector[],
};

export const P384_XMD_SHA384_SSWU_RO = {
    dst: 'QUUX-V01-CS02-with-P384_XMD:SHA-384_SSWU_RO_',
    vectors: [
        {
            msg: '',
            px: 'eb9fe1b4f4e14e7140803c1d99d0a93cd823d2b024040f9c067a8eca1f5a2eeac9ad604973527a356f3fa3aeff0e4d83',
            py: '0c21708cff382b7f4643c07b105c2eaec2cead93a917d825601e63c8f21f6abd9abc22c93c2bed6f235954b25048bb1a',
            u0: '25c8d7dc1acd4ee617766693f7f8829396065d1b447eedb155871feffd9c6653279ac7e5c46edb7010a0e4ff64c9f3b4',
            u1: '59428be4ed69131df59a0c6a8e188d2d4ece3f1b2a3a02602962b47efa4d7905945b1e2cc80b36aa35c99451073521ac',
        },
        {
            msg: 'abcdef0123456789',
            px: 'bdecc1c1d870624965f19505be50459d363c71a699a496ab672f9a5d6b78676400926fbceee6fcd1780fe86e62b2aa89',
            py: '57cf1f99b5ee00f3c201139b3bfe4dd30a653193778d89a0accc5e0f47e46e4e4b85a0595da29c9494c1814acafe183c',
            u0: 'aab7fb87238cf6b2ab56cdcca7e028959bb2ea599d34f68484139dde85ec6548a6e48771d17956421bdb7790598ea52e',
            u1: '26e8d833552d7844d167833ca5a87c35bcfaa5a0d86023479fb28e5cd6075c18b168bf1f5d2a0ea146d057971336d8d1',
        },
    ] satisfies HashToCurveVector[],
};
