/**
 * IEEE 1609.2 / KISA V2X implicit-certificate known answers (P-256 / SHA-256), as published in the
 * unit tests of the open-source `dot2` IEEE 1609.2 security library (author "gyun"; its test file
 * for private-key reconstruction, which cites the Korean KISA specification
 * "01-07.KCAC.V2X.IMPCERTSCH, implicit certificate scheme v1.1", test vectors 1 and 2, and two real
 * RSE pseudonym certificates issued by a Green Hills (GHS) SCMS PCA, "GHS rse-0/1AD2689A387D398D").
 *
 * Both sets use e = SHA-256(CertU) mod n (the full digest, reduced), not SEC 4's leftmost 255 bits.
 * - KISA: CertU = tbsCert || SEC1-compressed(P_U), as in the SEC 4 example.
 * - GHS (IEEE 1609.2-2016 §5.3.2): CertU = SHA-256(ToBeSignedCertificate) || SHA-256(issuer
 *   certificate); the COER certificate is preamble (00), version (03), type implicit (01), issuer
 *   sha256AndDigest (80 || HashedId8), then ToBeSignedCertificate from byte 12 to the end (its last
 *   field is the reconstruction value P_U, 81 82 || x).
 */
export const KISA_P256_VECTOR_2 = {
    kU: '1384c31d6982d52bca3bed8a7e60f52fecdab44e5c0ea166815a8159e09ffb42',
    certU: '5468697320697320612074657374210002237b2d6610da5b67e18aaec0f09c99ee08d4f00852c7ed27c12963120f76a147',
    certUHash: '66f73a02c6e1c4a2cd93ed2d60d8284a9450f5d1c6fd0aeb1e4be7557534e950',
    r: '06a8d6fcdc18ac05f6d9d88ab2c31b462e72c58c60555a3d9df83db6f2e3142b',
    PU: '02237b2d6610da5b67e18aaec0f09c99ee08d4f00852c7ed27c12963120f76a147',
    QCA: '043bb8ffd19b25ee1bb939cd4935fbfa8fbaadba64843338a95595a70ed7479b70eb60ddc790e3cb05e85225f636d8a7c20df3a8135c4b2ae5396367b4e86077f8',
    dU: '49fc4f116692225feb26cc6366bb6d60ca6d6082ddfa980bd12ff7415afd8439',
    QU: '046442a1639e68acf735e3f30bdc02ac4a6ab4f8d7b497d03be1b95f0f563424a0c5871a8f84a728dcd52835635cd53f47017b7fc6be3caf4052ae6d11d7f3d37c',
};

/** The PCA certificate both GHS pseudonym certificates name as issuer (explicit, 215 bytes). */
const GHS_PCA_CERT =
    '80030080b7cbd0f79b969bd459811a7063612e70726570726f642e7632782e697373636d732e636f6de30491000219d8d5dd86000a83010380007c8001e48003480101800123800385000101010081008082b0ff2f290f9e77fe940759c877b8f0516d411e44bc58f612615a26d726a0d79f808082ff9b00ce42b21afff2c1d3b12a387091e4d2c84b3ae253b11225f7725b89f59a808066cb66cdf3ddfbd285521e187de229ea9161c8d24c676b7c837c9fbe12a9cd20b8e45b5e81d5a55737fa17439d2f1fd3d59abbf24987f61abe6f9ffb9f14cfb7';

export interface Ieee1609Vector {
    name: string;
    /** Requester's initial private key k_U (the "init_priv_key" of the download). */
    kU: string;
    /** Private-key reconstruction value r (the ".s" file). */
    r: string;
    /** The whole COER certificate. */
    certificate: string;
    /** Offset of ToBeSignedCertificate in `certificate`. */
    tbsOffset: number;
    /** P_U, uncompressed. */
    PU: string;
    issuerCertificate: string;
    /** SHA-256(issuer certificate); its last 8 bytes are the certificate's HashedId8. */
    issuerHash: string;
    /** The PCA's verification key Q_CA, uncompressed. */
    QCA: string;
    /** Reconstructed private key d_U and public key Q_U (uncompressed). */
    dU: string;
    QU: string;
}

export const GHS_1609_VECTORS: readonly Ieee1609Vector[] = [
    {
        name: 'GHS RSE pseudonym certificate 1',
        kU: '9e31cd518cd86ba8a0e4f8dd9bf35fcbe9e6820332aea19dfa0355878036fc2f',
        r: '8693c4342127b52ac2b07af6a219a2c3ef067a07e12ffd35543266736addba65',
        certificate:
            '000301802480e44bab156fda5083e30491000319e8d56f8400a983010180034801010001878182da96ff5838a904158d726a1ea87d2bb5c019b8417e3785619d4f108897043544',
        tbsOffset: 12,
        PU: '04da96ff5838a904158d726a1ea87d2bb5c019b8417e3785619d4f1088970435449b1175ded9f5ae34d719e99ef9f320807321ad541e628cf38d52c3e33c1272ec',
        issuerCertificate: GHS_PCA_CERT,
        issuerHash: '7d313c1146962d25b7ebd360fc988637534ac7f58f95a4282480e44bab156fda',
        QCA: '04ff9b00ce42b21afff2c1d3b12a387091e4d2c84b3ae253b11225f7725b89f59a58a109d617f786becea4421759829e9c88a9e10146dd3e24abce9d984131341a',
        dU: '58e274349e0d4ced5e4e80e65eb7e9f907bf6a9cd6adec5dab4584bf27ca3538',
        QU: '04af67e87dd9099f988ee514ac0fe836a18c5349dcac4a1df18edd7d39acfea9790c55fdf725663e60645c8994d3963b3036825518b4fe2cb6eafa8e94d484f1c7',
    },
    {
        name: 'GHS RSE pseudonym certificate 2',
        kU: '5f95391cf69468fb91a1f16d435e4531782239385e7e03ede4b0a6a3d82afcff',
        r: '44ac54ee38a3f2f5b100a92448c5285fae29ca00a5a144db0511379001a3abdd',
        certificate:
            '000301802480e44bab156fda5083e30491000319f20ff48400a9830101800348010100018781824079976df871e5d06de6453236060dc49e009c59dc14e539084135f5db97e7c7',
        tbsOffset: 12,
        PU: '044079976df871e5d06de6453236060dc49e009c59dc14e539084135f5db97e7c75ba8ac5f17ecd3b1e7fbd8c4b6df496967a8937173d9521a4ef9cb42acc123da',
        issuerCertificate: GHS_PCA_CERT,
        issuerHash: '7d313c1146962d25b7ebd360fc988637534ac7f58f95a4282480e44bab156fda',
        QCA: '04ff9b00ce42b21afff2c1d3b12a387091e4d2c84b3ae253b11225f7725b89f59a58a109d617f786becea4421759829e9c88a9e10146dd3e24abce9d984131341a',
        dU: 'd47291ace0ca5d337317f38914cfe11ff7753a1e3bf2097a7bd462ef11066417',
        QU: '0464759c5a9947d82bca983c52f296117c352276e62d880dbd04864039d1e149cb8e1b85b142c7fde16b77ec52380233a7be71c7c0f8a67ad68f43f84717db3249',
    },
];
