/**
 * The import rules of docs/ARCHITECTURE.md ("What each folder may import"), checked over every module
 * of src/: no import cycle anywhere, and each folder imports only what its row of the page's table
 * names — the table is read from the page, so the page and this test cannot disagree. Every import
 * counts: `import type`, `export … from` and dynamic `import()` included, since a cycle of types is
 * still two modules that cannot be read apart.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// dist/test/architecture/ -> the repository root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');
const PAGE = join(ROOT, 'docs', 'ARCHITECTURE.md');

/** Module paths relative to src/ ("client/index.ts"), and what each imports. */
type Graph = Map<string, { local: string[]; external: string[] }>;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every module specifier in a source text: static imports and re-exports, side-effect imports, import(). */
export function specifiers(text: string): string[] {
  const re =
    /(?:^|[\n;])\s*(?:import|export)\b[^'";]*?\bfrom\s*(['"])([^'"]+)\1|(?:^|[\n;])\s*import\s*(['"])([^'"]+)\3|\bimport\(\s*(['"])([^'"]+)\5\s*\)/g;
  return [...text.matchAll(re)].map((m) => (m[2] ?? m[4] ?? m[6])!);
}

function buildGraph(): Graph {
  const files = tsFiles(SRC);
  const known = new Set(files);
  const graph: Graph = new Map();
  for (const file of files) {
    const local: string[] = [];
    const external: string[] = [];
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) {
        external.push(spec);
        continue;
      }
      const base = resolve(dirname(file), spec).replace(/\.js$/, '');
      const hit = [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts')].find((c) => known.has(c));
      if (hit) local.push(relative(SRC, hit));
      // Anything else (the web app's CSS) is not a module of ours.
    }
    graph.set(relative(SRC, file), { local, external });
  }
  return graph;
}

/** Each cycle as the modules around it, first module repeated at the end (Tarjan, then one loop per component). */
export function cycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) components.push(component);
  };
  for (const v of edges.keys()) if (!index.has(v)) strong(v);
  // One concrete loop per component: walk inside it from its first module until a module repeats.
  return components.map((component) => {
    const inside = new Set(component);
    const path = [[...component].sort()[0]!];
    for (;;) {
      const next = (edges.get(path.at(-1)!) ?? []).find((w) => inside.has(w))!;
      const at = path.indexOf(next);
      if (at >= 0) return [...path.slice(at), next];
      path.push(next);
    }
  });
}

/** The rows of the page's table: a folder ("gui") or a root file ("index.ts"), and what it may import. */
export function readRules(page: string): Map<string, string[]> {
  const section = page.split(/^## What each folder may import\s*$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, `${PAGE} has no section "## What each folder may import"`);
  // The section's first table: its rows after the header and the |---| line.
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  assert.ok(start >= 0, 'the section has no table');
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  const rows = lines.slice(start + 2, end < 0 ? undefined : end);
  const rules = new Map<string, string[]>();
  for (const row of rows) {
    const [who, allowed] = row
      .split('|')
      .slice(1, 3)
      .map((c) => c.trim().replace(/`/g, ''));
    const name = /^src\/([a-z]+|[a-z-]+\.ts)$/.exec(who ?? '')?.[1];
    assert.ok(name, `unreadable row in the table: ${row}`);
    // Notes in parentheses and a dash for "nothing of ours" are for people.
    const items = (allowed ?? '')
      .replace(/\([^)]*\)/g, '')
      .replace(/—/g, '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const item of items) {
      assert.match(
        item,
        /^[a-z]+(\/[a-z0-9-]+\.ts)?$/,
        `unreadable entry "${item}" in the row of src/${name}`,
      );
    }
    rules.set(name, items);
  }
  return rules;
}

/** The row that governs a module: its top folder, or the root file itself. */
function ownerOf(module: string): string {
  return module.includes('/') ? module.split('/')[0]! : module;
}

/** The imports that break the table, as "from -> to" lines. */
export function violations(
  edges: ReadonlyMap<string, readonly string[]>,
  rules: ReadonlyMap<string, readonly string[]>,
): string[] {
  const out: string[] = [];
  for (const [from, tos] of edges) {
    const owner = ownerOf(from);
    const allowed = rules.get(owner);
    if (!allowed) {
      out.push(`${from}: src/${owner} has no row in the table`);
      continue;
    }
    for (const to of tos) {
      const target = ownerOf(to);
      if (target === owner) continue;
      if (allowed.includes(target) || allowed.includes(to)) continue;
      out.push(`${from} -> ${to}`);
    }
  }
  return out;
}

/** Every module `start` reaches through its imports, itself included. */
function closure(graph: Graph, start: string): string[] {
  const seen = new Set<string>();
  const visit = (m: string): void => {
    if (seen.has(m)) return;
    seen.add(m);
    for (const d of graph.get(m)?.local ?? []) visit(d);
  };
  visit(start);
  return [...seen];
}

describe('import rules (docs/ARCHITECTURE.md)', () => {
  const graph = buildGraph();
  const edges = new Map([...graph].map(([m, { local }]) => [m, local]));
  const rules = readRules(readFileSync(PAGE, 'utf8'));

  test('the scan reads all of src/', () => {
    assert.ok(graph.size > 100, `only ${graph.size} modules found under ${SRC}`);
    for (const m of ['protocol/messages.ts', 'server/channel-broker.ts', 'gui/index.ts', 'gui/web/app.tsx']) {
      assert.ok(graph.has(m), `${m} was not scanned`);
    }
  });

  test('no module of src/ imports one that imports it back', () => {
    assert.deepEqual(cycles(edges), []);
  });

  test('every folder of src/ has a row, and every row a folder', () => {
    const owners = new Set([...graph.keys()].map(ownerOf));
    assert.deepEqual([...rules.keys()].sort(), [...owners].sort());
  });

  test("each folder imports only what its row names (the GUI: the core's entry points only)", () => {
    assert.deepEqual(violations(edges, rules), []);
  });

  test('the table names only modules that exist', () => {
    for (const [owner, items] of rules) {
      for (const item of items) {
        if (item.includes('/'))
          assert.ok(graph.has(item), `src/${owner}'s row names ${item}, which does not exist`);
        else
          assert.ok(
            [...graph.keys()].some((m) => ownerOf(m) === item),
            `src/${owner}'s row names ${item}`,
          );
      }
    }
  });

  test("the GUI's entry and every core entry point it may use are exported by the package", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      name: string;
      exports: Record<string, { default: string }>;
    };
    const exported = new Set(
      Object.values(pkg.exports).map((e) => e.default?.replace(/^\.\/dist\/src\//, '')),
    );
    for (const entry of ['gui/index.ts', ...rules.get('gui')!.filter((i) => i.includes('/'))]) {
      const js = entry.replace(/\.ts$/, '.js');
      assert.ok(exported.has(js), `package.json "exports" has no entry for src/${entry}`);
    }
    // And they resolve by the package's name, as a program that installed it imports them.
    for (const [sub, e] of Object.entries(pkg.exports)) {
      if (!e.default?.endsWith('.js')) continue;
      const mod = (await import(`${pkg.name}${sub.slice(1)}`)) as Record<string, unknown>;
      assert.ok(Object.keys(mod).length > 0, `${pkg.name}${sub.slice(1)} exports nothing`);
    }
  });

  test('src/config/index.ts, which the web app bundles, reaches no Node module', () => {
    const reached = closure(graph, 'config/index.ts');
    const node = reached.flatMap((m) =>
      graph
        .get(m)!
        .external.filter((e) => e.startsWith('node:'))
        .map((e) => `${m}: ${e}`),
    );
    assert.deepEqual(node, []);
  });

  test('src/protocol opens no socket', () => {
    const sockets = /^node:(net|tls|dgram|http|https|http2)$/;
    const found = [...graph]
      .filter(([m]) => m.startsWith('protocol/'))
      .flatMap(([m, { external }]) => external.filter((e) => sockets.test(e)).map((e) => `${m}: ${e}`));
    assert.deepEqual(found, []);
  });
});

describe('the checks themselves', () => {
  test('specifiers finds every kind of import, on one line or several', () => {
    const text = [
      "import type { Tray } from './tray.js';",
      'import {',
      '  a,',
      '  b,',
      '} from "../b.js";',
      "export * from './c.js';",
      "import './styles.css';",
      "const m = await import('./d.js');",
      "type T = import('./e.js').T;",
      "import { readFile } from 'node:fs/promises';",
    ].join('\n');
    assert.deepEqual(specifiers(text), [
      './tray.js',
      '../b.js',
      './c.js',
      './styles.css',
      './d.js',
      './e.js',
      'node:fs/promises',
    ]);
  });

  test('cycles finds a loop of two and one of three, and nothing in a tree', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['a', 'c']],
      ['c', ['d']],
      ['d', ['e']],
      ['e', ['c']],
      ['f', ['a']],
    ]);
    assert.deepEqual(
      cycles(g)
        .map((c) => c.join(' -> '))
        .sort(),
      ['a -> b -> a', 'c -> d -> e -> c'],
    );
    assert.deepEqual(
      cycles(
        new Map([
          ['a', ['b', 'c']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
      [],
    );
  });

  test('violations names a forbidden folder and a file outside an entry point', () => {
    const rules = readRules(
      '## What each folder may import\n\n| folder | may import |\n|---|---|\n' +
        '| src/gui | client/index.ts, util (helpers) |\n| src/client | util |\n| src/util | — (Node only) |\n',
    );
    assert.deepEqual(rules.get('util'), []);
    const g = new Map([
      ['gui/a.ts', ['client/index.ts', 'client/api.ts', 'util/x.ts', 'gui/b.ts']],
      ['client/index.ts', ['server/s.ts']],
    ]);
    assert.deepEqual(violations(g, rules), ['gui/a.ts -> client/api.ts', 'client/index.ts -> server/s.ts']);
  });
});
