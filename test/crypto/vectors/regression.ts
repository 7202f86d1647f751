/**
 * Regression vectors for this project's own constructions (no external standard defines them):
 * computed once from fixed inputs with the implementation under review and pinned, so any change
 * to a DST, transcript or encoding is caught. The secret key is
 * hashToScalar(suite, 'SchnorrNonce', utf8('regression key')).
 */
export const REGRESSION = {
    'P256-SHA256': {
        secretKey: 'e5bbeb8beb8699d66a7b3bf9a186c6f88336467fc9840229d9604e3eae81c099',
        /** schnorrSign(FogM4, key, utf8('M4 payload'), aux = 32 x 0x01) */
        schnorr:
            'fdad26c5eefe032c69998c53738f8aa0af4a721171c61c631c1564f314dfb621636f615780004f0dbcc7973a89aefa34096c44320a5603b28f7536af17e012fa',
        /** createCounterProof(idCert = key*G, counter 7, nonce 12345) */
        counterProof:
            '028e533b6fa0bf7b4625bb30667c01fb607ef9f8b8a80fef5b300628703187b2a303d3d1b52a013089c9cf399f8d0a1cc7cb1d84f4fbe5958c04ee51f55d38f671f502ba7c81f56b1bb3c69658e5b3285eae053262286a4d683a630e06c041aa391d680226efcebd0ee9e34a669187e18b3a9122b2f733945b649cc9f9f921e9f9dad812d4284af9f6bb23c45e26794d34f1fa4d7158907c5d2a1cd9648549fb904e9e55',
    },
    'P384-SHA384': {
        secretKey: '63d14494101db03ef5d80e5bfefe840f05d614d4f8c5b2b7121c3e1868b13cf6f44249bde9d7f7c4fbc6be2d50edcf64',
        schnorr:
            '3e79757f53191f01efea040be7a20bd69bc6e9e71b3f7f0350983b351ded648523cb022e124583d9eaa3390bb2838a1d469c85bec69919b04b178cdcdffb387c8ed9edc2fd73ad06aacce9a619d83cffda0f6077e4d97ebc92fb374fd7de4761',
        counterProof:
            '02283c1d7365ce4788f29f8ebf234edffead6fe997fbea5ffa2d58cc9dfa7b1c508b05526f55b9ebb2040f05b48fb6d0e102787c1434b363de1bd17838e9be8004a2dc2d4e13d4cc90792ec0483368b5025e446c47f6f890b1c2f8f96451cc58799602de5cf8acab8aa202c7fcddda56f4ec644b81fa27415989af6a5b19b1b3d6501ea2d5d12d2563c26c1e87f22a9f9008a702e86b995e350e4d312a95a6b7d5d8cdcdb4682f588800a1cd6c972e1dcb2a5ac38d90046951b03ccb3b179a89fda88b1b2fcf660d7c27f77242b0c354205b4b33784590929d21b5e6edc5d4d9b98fecc8bcb83a4ad6840f7b2757fdd27f9acd52',
    },
};
