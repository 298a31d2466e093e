// The README is the front door and docs/ holds the reference: these checks keep both honest
// without a database. The README stays small, every link lands on a file (and heading) in the
// repository, nothing points outside it, and every public export has an entry with an example.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** The text outside fenced code blocks (links and headings in examples are not links). */
const prose = (markdown: string) => markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
const codeBlocks = (markdown: string, lang: string) => [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].filter((m) => m[1] === lang).map((m) => m[2]!);
const links = (markdown: string) => [...prose(markdown).matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);

/** GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, title] of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = title!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\- _]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

test('the README is at most 15 KB', () => {
  const size = statSync(path.join(root, 'README.md')).size;
  assert.ok(size <= 15_360, `README.md is ${size} bytes; move reference text to docs/`);
});

test('every relative link in the README and docs/ lands on a file in the repository, and on a heading of it', () => {
  const broken: string[] = [];
  for (const page of pages) {
    for (const link of links(read(page))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // outside links: the next test refuses them
      const [target = '', anchor] = link.split('#') as [string, string | undefined];
      const file = target === '' ? path.join(root, page) : path.resolve(path.dirname(path.join(root, page)), decodeURIComponent(target));
      if (path.relative(root, file).startsWith('..') || path.isAbsolute(target)) {
        broken.push(`${page}: ${link} leaves the repository`);
      } else if (!existsSync(file)) {
        broken.push(`${page}: ${link} names no file`);
      } else if (anchor !== undefined && !(statSync(file).isFile() && anchors(readFileSync(file, 'utf8')).has(anchor))) {
        broken.push(`${page}: ${link} names no heading of ${path.relative(root, file)}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('nothing in the README or docs/ points outside the repository', () => {
  const outside: string[] = [];
  for (const page of pages) {
    const text = read(page);
    for (const link of links(text)) if (/^[a-z][a-z0-9+.-]*:/i.test(link) && !link.startsWith('mailto:')) outside.push(`${page}: link ${link}`);
    for (const match of text.matchAll(/\.\.\/shared|\.\.\/wt-|\/work\/|\/root\/|\/home\/[a-z]/g)) {
      const line = text.slice(0, match.index).split('\n').length;
      outside.push(`${page}:${line}: ${match[0]}`);
    }
  }
  assert.deepEqual(outside, []);
});

test('the README\'s quick start is examples/quickstart.ts, which the examples test runs', () => {
  const example = read('examples/quickstart.ts');
  const code = example.slice(example.indexOf('import '));
  assert.ok(codeBlocks(read('README.md'), 'ts').includes(code), 'the README\'s first ts block differs from examples/quickstart.ts (from its first import)');
});

test('every public export of src/index.ts has an entry in docs/api.md with a code example', () => {
  const index = read('src/index.ts').replace(/\/\/[^\n]*/g, '');
  const names = new Set<string>();
  for (const [, list] of index.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const item of list!.split(',')) {
      const name = item.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      if (name !== '') names.add(name);
    }
  }
  for (const [, name] of index.matchAll(/export\s+(?:const|function|class|type|interface)\s+(\w+)/g)) names.add(name!);
  assert.ok(names.size > 50, `found only ${names.size} exports in src/index.ts`);

  const api = read('docs/api.md');
  const examples = codeBlocks(api, 'ts').join('\n');
  const sections = prose(api);
  const missing = [...names].filter((name) => {
    const word = new RegExp(`\\b${name}\\b`);
    return !word.test(examples) || !word.test(sections);
  });
  assert.deepEqual(missing, [], 'each export must appear in a ts example and in the prose of docs/api.md');
});
