#!/usr/bin/env node
// Builds the chaincode-as-a-service package that every peer installs, and prints its package ID.
//
// A Fabric chaincode package is a gzipped tar holding metadata.json ({"type":"ccaas","label":...})
// and code.tar.gz; for CCaaS, code.tar.gz holds only connection.json (where the peer dials the
// chaincode server). The package ID is `<label>:<sha256 of the package file>`. The tar files are
// written here byte for byte (fixed mtime, owner and mode), so the same inputs give the same
// package ID on every machine and the chaincode servers can be started with it before install.
//
// Usage: node fabric-network/scripts/package-ccaas.mjs --label m2m_1.0 --out FILE [--connection FILE]
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const networkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name) => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
};

const label = option('--label') ?? 'm2m_1.0';
// Fabric's rule for package labels.
if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(label)) {
    console.error(`[package-ccaas] invalid label ${JSON.stringify(label)}: letters, digits and _.+- only`);
    process.exit(2);
}
const out = resolve(option('--out') ?? join(networkDir, 'channel-artifacts', `${label}.tar.gz`));
const connectionPath = resolve(option('--connection') ?? join(networkDir, 'chaincode', 'connection.json'));

/** One ustar header + content, padded to 512-byte blocks. */
function tarEntry(name, content) {
    const header = Buffer.alloc(512, 0);
    const field = (offset, length, value) => header.write(value, offset, length, 'ascii');
    const octal = (offset, length, value) => field(offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
    field(0, 100, name);
    octal(100, 8, 0o644); // mode
    octal(108, 8, 0); // uid
    octal(116, 8, 0); // gid
    octal(124, 12, content.length); // size
    octal(136, 12, 0); // mtime: fixed, for reproducible package IDs
    field(148, 8, '        '); // checksum placeholder (spaces) while summing
    field(156, 1, '0'); // regular file
    field(257, 6, 'ustar\0');
    field(263, 2, '00');
    let sum = 0;
    for (const byte of header) sum += byte;
    field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    const padding = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
    return Buffer.concat([header, content, padding]);
}

function tarGz(entries) {
    const blocks = entries.map(([name, content]) => tarEntry(name, content));
    // Two zero blocks end the archive; level 9 and no name/mtime in the gzip header (node writes none).
    return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024, 0)]), { level: 9 });
}

const connection = JSON.parse(readFileSync(connectionPath, 'utf8'));
if (typeof connection.address !== 'string' || connection.address === '') {
    console.error(`[package-ccaas] ${connectionPath} has no "address"`);
    process.exit(2);
}
const metadata = { type: 'ccaas', label };
const code = tarGz([['connection.json', Buffer.from(`${JSON.stringify(connection, null, 4)}\n`)]]);
const pkg = tarGz([
    ['metadata.json', Buffer.from(JSON.stringify(metadata))],
    ['code.tar.gz', code],
]);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, pkg);
const packageId = `${label}:${createHash('sha256').update(pkg).digest('hex')}`;
if (args.includes('--json')) {
    console.log(JSON.stringify({ packageId, file: out }));
} else {
    console.log(packageId);
}
