/**
 * RFC 9497 Appendix A VOPRF-mode vectors (A.3.2 P256-SHA256, A.4.2 P384-SHA384), batch size 1.
 * In VOPRF mode the server proves DLEQ(G, pkS, BlindedElement, EvaluationElement) with nonce
 * ProofRandomScalar; Proof = c || s.
 */
export interface VoprfVector {
    skSm: string;
    pkSm: string;
    blindedElement: string;
    evaluationElement: string;
    proof: string;
    proofRandomScalar: string;
}

export const VOPRF_P256_SHA256: VoprfVector[] = [
    {
        skSm: 'ca5d94c8807817669a51b196c34c1b7f8442fde4334a7121ae4736364312fca6',
        pkSm: '03e17e70604bcabe198882c0a1f27a92441e774224ed9c702e51dd17038b102462',
        blindedElement: '02dd05901038bb31a6fae01828fd8d0e49e35a486b5c5d4b4994013648c01277da',
        evaluationElement: '0209f33cab60cf8fe69239b0afbcfcd261af4c1c5632624f2e9ba29b90ae83e4a2',
        proof: 'e7c2b3c5c954c035949f1f74e6bce2ed539a3be267d1481e9ddb178533df4c2664f69d065c604a4fd953e100b856ad83804eb3845189babfa5a702090d6fc5fa',
        proofRandomScalar: 'f9db001266677f62c095021db018cd8cbb55941d4073698ce45c405d1348b7b1',
    },
    {
        skSm: 'ca5d94c8807817669a51b196c34c1b7f8442fde4334a7121ae4736364312fca6',
        pkSm: '03e17e70604bcabe198882c0a1f27a92441e774224ed9c702e51dd17038b102462',
        blindedElement: '03cd0f033e791c4d79dfa9c6ed750f2ac009ec46cd4195ca6fd3800d1e9b887dbd',
        evaluationElement: '030d2985865c693bf7af47ba4d3a3813176576383d19aff003ef7b0784a0d83cf1',
        proof: '2787d729c57e3d9512d3aa9e8708ad226bc48e0f1750b0767aaff73482c44b8d2873d74ec88aebd3504961acea16790a05c542d9fbff4fe269a77510db00abab',
        proofRandomScalar: 'f9db001266677f62c095021db018cd8cbb55941d4073698ce45c405d1348b7b1',
    },
];

export const VOPRF_P384_SHA384: VoprfVector[] = [
    {
        skSm: '051646b9e6e7a71ae27c1e1d0b87b4381db6d3595eeeb1adb41579adbf992f4278f9016eafc944edaa2b43183581779d',
        pkSm: '031d689686c611991b55f1a1d8f4305ccd6cb719446f660a30db61b7aa87b46acf59b7c0d4a9077b3da21c25dd482229a0',
        blindedElement:
            '02d338c05cbecb82de13d6700f09cb61190543a7b7e2c6cd4fca56887e564ea82653b27fdad383995ea6d02cf26d0e24d9',
        evaluationElement:
            '02a7bba589b3e8672aa19e8fd258de2e6aae20101c8d761246de97a6b5ee9cf105febce4327a326255a3c604f63f600ef6',
        proof: 'bfc6cf3859127f5fe25548859856d6b7fa1c7459f0ba5712a806fc091a3000c42d8ba34ff45f32a52e40533efd2a03bc87f3bf4f9f58028297ccb9ccb18ae7182bcd1ef239df77e3be65ef147f3acf8bc9cbfc5524b702263414f043e3b7ca2e',
        proofRandomScalar:
            '803d955f0e073a04aa5d92b3fb739f56f9db001266677f62c095021db018cd8cbb55941d4073698ce45c405d1348b7b1',
    },
];
