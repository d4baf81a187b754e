import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { errorCodes, errorCodesMarkdown } from '../../harness/error-codes.ts';

const root = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Codes as the harness writes them: `code: 'X'`, a default `code = 'X'`, a fallback `code ?? 'X'`, a guest's bootError('X'). */
function usedCodes(): Map<string, string> {
  const used = new Map<string, string>();
  for (const file of sources(join(root, 'harness'))) {
    if (file.endsWith('error-codes.ts')) continue;
    const text = readFileSync(file, 'utf8');
    const patterns = [/\bcode(?:\s*:|\s*=(?!=)|\s*\?\?)[^,;\n]*?'([A-Z][A-Z0-9_]+)'/g, /\bbootError\('([A-Z][A-Z0-9_]+)'/g];
    for (const pattern of patterns) for (const m of text.matchAll(pattern)) used.set(m[1]!, file.slice(root.length + 1));
  }
  return used;
}

t.test('every error code the harness uses is in the catalogue', async (t) => {
  const listed = new Set(Object.keys(errorCodes));
  for (const [code, file] of usedCodes()) t.ok(listed.has(code), `${code} (${file}) is listed in harness/error-codes.ts`);
});

t.test('every catalogued code is used somewhere (no stale entries)', async (t) => {
  const used = usedCodes();
  for (const code of Object.keys(errorCodes)) t.ok(used.has(code), `${code} is used in harness/`);
});

t.test('docs/error-codes.md is the generated catalogue (ntbh errors > docs/error-codes.md)', async (t) => {
  t.equal(readFileSync(join(root, 'docs', 'error-codes.md'), 'utf8'), errorCodesMarkdown());
});
