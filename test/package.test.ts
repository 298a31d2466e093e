// What an installed ledgerbox holds (issue 15): every file a source map of dist/ points at is in
// the package, so a stack trace (node --enable-source-maps) names a file the host has; and the
// operator's sql/ files and the migrations ship with it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';

const run = promisify(execFile);

function mapsUnder(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    return entry.isDirectory() ? mapsUnder(full) : entry.name.endsWith('.js.map') ? [full] : [];
  });
}

test('the package ships every source its maps name, the sql files and the migrations', { timeout: 120_000 }, async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { maxBuffer: 16 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  const shipped = new Set(packed.files.map((file) => file.path));
  const maps = mapsUnder('dist');
  assert.ok(maps.length > 50, `source maps in dist/ (npm run build first): ${maps.length}`);
  const missing: string[] = [];
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] };
    for (const source of sources) {
      const file = path.relative('.', path.resolve(path.dirname(map), source));
      if (!shipped.has(file)) missing.push(`${map} → ${file}`);
    }
  }
  assert.deepEqual(missing, []);
  for (const file of readdirSync('sql')) assert.ok(shipped.has(`sql/${file}`), `sql/${file}`);
  for (const file of readdirSync('migrations')) assert.ok(shipped.has(`migrations/${file}`), `migrations/${file}`);
  assert.ok(![...shipped].some((file) => file.startsWith('test/')), 'no tests in the package');
});
