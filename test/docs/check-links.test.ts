/**
 * scripts/check-links.mjs (part of `npm run lint`): a broken relative link, a missing section, a
 * link out of the repository or a citation of a design document outside it fails the check.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** build/test/docs/ -> scripts/check-links.mjs at the repository root. */
const SCRIPT = fileURLToPath(new URL('../../../scripts/check-links.mjs', import.meta.url));
/** Fixtures live inside the repository (under build/, which git ignores), as real pages do. */
const BUILD = fileURLToPath(new URL('../../', import.meta.url));

/** An outside design document's path, spelled in pieces so this file does not cite it itself. */
const OUTSIDE_DESIGN = ['..', 'shared', 'design', 'DESIGN' + '.md'].join('/');

void describe('check-links', () => {
    const dir = mkdtempSync(join(BUILD, 'check-links-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const check = (name: string, text: string): { status: number | null; out: string } => {
        const file = join(dir, name);
        writeFileSync(file, text);
        const run = spawnSync(process.execPath, [SCRIPT, file], { encoding: 'utf8', timeout: 30_000 });
        return { status: run.status, out: run.stdout + run.stderr };
    };

    void it('accepts links to files, folders and headings (GitHub anchors, code spans included)', () => {
        const ok = check(
            'good.md',
            '# Page\n\n## Fabric Gateway endpoint and `m2m peer`\n\n## Page\n\n' +
                '[readme](../../README.md) · [docs](../../docs/) · [design](../../docs/design.md#threat-model)\n' +
                '[here](#fabric-gateway-endpoint-and-m2m-peer) · [second](#page-1) · [web](https://example.com/x.md)\n' +
                '```\n[not a link](nowhere.md)\n```\nand `[code](nowhere.md)`\n',
        );
        assert.equal(ok.status, 0, ok.out);
        assert.match(ok.out, /every relative link resolves/);
    });

    void it('refuses a missing file, a missing section, a link out of the repository, an outside design doc', () => {
        const bad = check(
            'bad.md',
            '# Bad\n\n[gone](../../docs/no-such-page.md)\n[section](../../docs/design.md#no-such-section)\n' +
                `[out](../../../outside.md)\nsee ${OUTSIDE_DESIGN}\n`,
        );
        assert.equal(bad.status, 1, bad.out);
        assert.match(bad.out, /bad\.md:3: \.\.\/\.\.\/docs\/no-such-page\.md does not exist/);
        assert.match(bad.out, /bad\.md:4: .*design\.md#no-such-section: no heading with anchor #no-such-section/);
        assert.match(bad.out, /bad\.md:5: \.\.\/\.\.\/\.\.\/outside\.md leaves the repository/);
        assert.match(bad.out, /bad\.md:6: cites .*shared/);
        assert.match(bad.out, /bad\.md:6: cites .*DESIGN/);
    });
});
