#!/usr/bin/env node
// Checks the repository's Markdown: every relative link resolves to a file or folder in the
// repository (and a `#section` to a heading of the target page, with GitHub's anchor rules), no
// link leaves the repository, and nothing cites a design document outside it. Part of
// `npm run lint`, so a moved file breaks the lint instead of a reader's click.
// Usage: node scripts/check-links.mjs [file.md ...]   (default: every .md in the repository)
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', 'build', 'dist', '.data', '.fabric', '.git', 'organizations']);
/** Text that points outside the repository: a clone has neither. */
const FORBIDDEN = [/\.\.\/shared\//, /\bDESIGN\.md\b/, /\bTOOLCHAIN\.md\b/];
/** Sources whose comments must not cite outside documents either. */
const SOURCE_DIRS = ['chaincode', 'gateway', 'scripts', 'test', 'fabric-network'];
const SOURCE_EXT = /\.(ts|mjs|js|sh|ya?ml)$/;

function walk(dir, accept) {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        if (SKIP_DIRS.has(entry.name)) return [];
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return walk(path, accept);
        return accept(entry.name) ? [path] : [];
    });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown) {
    const anchors = new Set();
    const seen = new Map();
    for (const line of stripCode(markdown, { keepInline: true }).split('\n')) {
        const match = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
        if (!match) continue;
        const text = match[1]
            .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links keep their text
            .replace(/<[^>]+>/g, '');
        const base = text
            .toLowerCase()
            .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
            .replace(/\s/g, '-');
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    return anchors;
}

/** Blanks fenced code blocks and (unless keepInline) inline code spans, keeping line numbers. */
function stripCode(markdown, { keepInline = false } = {}) {
    let inFence = false;
    return markdown
        .split('\n')
        .map((line) => {
            if (/^\s*(```|~~~)/.test(line)) {
                inFence = !inFence;
                return '';
            }
            if (inFence) return '';
            if (keepInline) return line;
            return line.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length));
        })
        .join('\n');
}

function links(markdown) {
    const found = [];
    const lines = stripCode(markdown).split('\n');
    lines.forEach((line, index) => {
        // [text](target) and [text](target "title"); reference definitions [x]: target
        for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push([index + 1, m[1]]);
        const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
        if (def) found.push([index + 1, def[1]]);
    });
    return found;
}

const anchorCache = new Map();
function anchorsOf(file) {
    if (!anchorCache.has(file)) anchorCache.set(file, headingAnchors(readFileSync(file, 'utf8')));
    return anchorCache.get(file);
}

function checkFile(file) {
    const problems = [];
    const text = readFileSync(file, 'utf8');
    const where = (line) => `${relative(ROOT, file)}:${line}`;
    text.split('\n').forEach((line, index) => {
        for (const pattern of FORBIDDEN) {
            if (pattern.test(line))
                problems.push(`${where(index + 1)}: cites ${pattern.source} (outside the repository)`);
        }
    });
    for (const [line, target] of links(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
        const [pathPart, anchor] = target.split('#', 2);
        const path = decodeURIComponent(pathPart);
        const resolved = path === '' ? file : resolve(dirname(file), path);
        if (resolved !== ROOT && !resolved.startsWith(ROOT + sep)) {
            problems.push(`${where(line)}: ${target} leaves the repository`);
            continue;
        }
        if (!existsSync(resolved)) {
            problems.push(`${where(line)}: ${target} does not exist`);
            continue;
        }
        if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md') && statSync(resolved).isFile()) {
            if (!anchorsOf(resolved).has(anchor)) {
                problems.push(`${where(line)}: ${target}: no heading with anchor #${anchor}`);
            }
        }
    }
    return problems;
}

function checkSources() {
    const problems = [];
    for (const dir of SOURCE_DIRS) {
        const abs = join(ROOT, dir);
        if (!existsSync(abs)) continue;
        for (const file of walk(abs, (name) => SOURCE_EXT.test(name))) {
            readFileSync(file, 'utf8')
                .split('\n')
                .forEach((line, index) => {
                    for (const pattern of FORBIDDEN) {
                        if (pattern.test(line)) {
                            problems.push(
                                `${relative(ROOT, file)}:${index + 1}: cites ${pattern.source} (use docs/design.md)`,
                            );
                        }
                    }
                });
        }
    }
    return problems;
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args.map((f) => resolve(f)) : walk(ROOT, (name) => name.endsWith('.md'));
const problems = files.flatMap(checkFile);
if (args.length === 0) problems.push(...checkSources());
if (problems.length > 0) {
    console.error(problems.join('\n'));
    console.error(`check-links: ${problems.length} problem(s) in ${files.length} Markdown file(s)`);
    process.exit(1);
}
console.log(`check-links: ${files.length} Markdown file(s), every relative link resolves`);
