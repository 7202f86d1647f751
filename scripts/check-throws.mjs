#!/usr/bin/env node
/**
 * Lists the public API's functions and methods that throw but whose TSDoc has no `@throws`: every
 * function, and every public method of every class, exported from a package's src/index.ts
 * (followed through `export * from` / `export { … } from`), whose own body has a `throw`
 * statement (or, in the chaincode, a `reject(…)` call, which throws a ContractError). Only the
 * function's own body is read, not what it calls: a function that only passes on a callee's error
 * (`throw err`) is not listed. Exits 1 when it lists any (`--list` only prints them).
 *
 *   node scripts/check-throws.mjs [--list]
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = [
    'chaincode/protocol',
    'chaincode/contract',
    'gateway/common',
    'gateway/sdk',
    'gateway/embedded-ledger',
    'gateway/device',
    'gateway/services',
    'gateway/cli',
    'gateway/console',
];

const parsed = new Map();
function source(file) {
    let sf = parsed.get(file);
    if (sf === undefined) {
        sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
        parsed.set(file, sf);
    }
    return sf;
}

function resolveModule(from, spec) {
    if (!spec.startsWith('.')) return undefined;
    return resolve(dirname(from), spec.replace(/\.js$/, '.ts'));
}

function throwsDirectly(body, chaincode) {
    let found = false;
    const visit = (node) => {
        if (found) return;
        // A nested function's throws are its own (callbacks, closures).
        if (node !== body && (ts.isFunctionLike(node) || ts.isClassLike(node))) return;
        // `throw err` passes on an error caught from a callee: not this function's own.
        if (ts.isThrowStatement(node)) found = !ts.isIdentifier(node.expression);
        else if (chaincode && ts.isCallExpression(node) && node.expression.getText() === 'reject') found = true;
        else ts.forEachChild(node, visit);
    };
    visit(body);
    return found;
}

function hasThrowsTag(node) {
    return ts.getJSDocTags(node).some((t) => t.tagName.text === 'throws');
}

function isPublicMember(member) {
    const mods = ts.getCombinedModifierFlags(member);
    if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
    return member.name === undefined || !ts.isPrivateIdentifier(member.name);
}

const missing = [];
const seen = new Set();
function checkFile(file, names, chaincode) {
    const key = `${file}:${names === undefined ? '*' : [...names].join(',')}`;
    if (seen.has(key)) return;
    seen.add(key);
    const sf = source(file);
    const exported = (node) =>
        ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    const wanted = (name) => names === undefined || names.has(name);
    const where = (node) => `${relative(root, file)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    for (const stmt of sf.statements) {
        if (ts.isExportDeclaration(stmt) && stmt.moduleSpecifier !== undefined && !stmt.isTypeOnly) {
            const target = resolveModule(file, stmt.moduleSpecifier.text);
            if (target === undefined) continue;
            let sub;
            if (stmt.exportClause === undefined) sub = names;
            else if (ts.isNamedExports(stmt.exportClause)) {
                sub = new Set();
                for (const el of stmt.exportClause.elements) {
                    if (el.isTypeOnly || !wanted(el.name.text)) continue;
                    sub.add((el.propertyName ?? el.name).text);
                }
                if (sub.size === 0) continue;
            } else continue;
            checkFile(target, sub, chaincode);
        } else if (ts.isFunctionDeclaration(stmt) && exported(stmt) && stmt.name && wanted(stmt.name.text)) {
            if (stmt.body && throwsDirectly(stmt.body, chaincode) && !hasThrowsTag(stmt))
                missing.push(`${where(stmt)} ${stmt.name.text}()`);
        } else if (ts.isClassDeclaration(stmt) && exported(stmt) && stmt.name && wanted(stmt.name.text)) {
            for (const member of stmt.members) {
                if (!(
                    ts.isMethodDeclaration(member) ||
                    ts.isConstructorDeclaration(member) ||
                    ts.isGetAccessor(member)
                ))
                    continue;
                if (!isPublicMember(member) || member.body === undefined) continue;
                if (throwsDirectly(member.body, chaincode) && !hasThrowsTag(member)) {
                    const name = ts.isConstructorDeclaration(member) ? 'constructor' : member.name.getText();
                    missing.push(`${where(member)} ${stmt.name.text}.${name}()`);
                }
            }
        }
    }
}

for (const pkg of PACKAGES) checkFile(join(root, pkg, 'src', 'index.ts'), undefined, pkg === 'chaincode/contract');

if (missing.length > 0) {
    console.log(`check-throws: ${missing.length} exported function(s)/method(s) throw without @throws:`);
    for (const m of missing) console.log(`  ${m}`);
    if (!process.argv.includes('--list')) process.exitCode = 1;
} else {
    console.log('check-throws: every exported function and method that throws documents it with @throws');
}
