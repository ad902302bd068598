// Sum a V8 .cpuprofile's self time per function and print the top entries (a Markdown table).
//
//   node --import tsx scripts/cpuprofile-top.ts [--top N] [--per COUNT | --bench-json FILE] FILE.cpuprofile [FILE ...]
//
// Several files are summed (e.g. the three rounds of one workload); --per adds a column of
// microseconds per unit (e.g. the requests the profiled runs served). --bench-json takes the
// count from scripts/bench's --json output instead, by the profiles' names (SERVER-W<n>-r<round>):
// requests for W3 and W4, GiB sent for W1 and W2. Self time is attributed the
// way Chrome's DevTools does: each sample gets the time delta to the next sample. Percentages are
// of the busy time (total minus "(idle)"), so a mostly idle profile still reads as shares of work.
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}
/** What scripts/bench --json keeps that the count needs. */
interface BenchJson {
  options: { rangeSize: number };
  results: Record<string, Record<string, ({ requests?: number; bytes: number } | { error: string })[]>>;
}

/** The requests (W3, W4) or GiB (W1, W2) the profiled runs served, from bench's JSON; throws if a run is missing. */
export function unitsFromBench(bench: BenchJson, files: string[]): { count: number; unit: string } {
  let count = 0;
  let unit = '';
  for (const f of files) {
    const m = /^(.+)-W(\d)-r(\d+)\.cpuprofile$/.exec(basename(f));
    const run = m ? bench.results[m[2] ?? '']?.[m[1] ?? '']?.[Number(m[3]) - 1] : undefined;
    if (!m || run === undefined || 'error' in run) throw new Error(`no run in the bench JSON for ${basename(f)}`);
    const w = Number(m[2]);
    const u = w >= 3 ? 'request' : 'GiB';
    if (unit !== '' && unit !== u) throw new Error('profiles of workloads with different units');
    unit = u;
    count += w === 3 ? (run.requests ?? NaN) : w === 4 ? run.bytes / bench.options.rangeSize : run.bytes / 2 ** 30;
  }
  return { count, unit };
}

export interface Entry {
  name: string;
  where: string;
  selfUs: number;
}

/** Where a frame comes from, shortened: a path under the repo, node:internal, or a bare file name. */
function place(frame: CallFrame, repo: string): string {
  if (frame.url === '') return '';
  const line = frame.lineNumber >= 0 ? `:${frame.lineNumber + 1}` : '';
  if (frame.url.startsWith('node:')) return `${frame.url}${line}`;
  const path = frame.url.startsWith('file://') ? new URL(frame.url).pathname : frame.url;
  const rel = relative(repo, path);
  return `${rel.startsWith('..') ? basename(path) : rel}${line}`;
}

/** Self time per function (name + place), summed over the profiles given. */
export function selfTimes(profiles: Profile[], repo: string): { entries: Entry[]; totalUs: number; idleUs: number } {
  const byKey = new Map<string, Entry>();
  let totalUs = 0;
  for (const p of profiles) {
    const nodes = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i + 1] ?? 0;
      const node = nodes.get(p.samples[i] ?? -1);
      if (node === undefined) continue;
      const name = node.callFrame.functionName || '(anonymous)';
      const where = place(node.callFrame, repo);
      const key = `${name}\u0000${where}`;
      const e = byKey.get(key) ?? { name, where, selfUs: 0 };
      e.selfUs += dt;
      byKey.set(key, e);
      totalUs += dt;
    }
  }
  const entries = [...byKey.values()].sort((a, b) => b.selfUs - a.selfUs);
  const idleUs = entries.filter((e) => e.name === '(idle)').reduce((s, e) => s + e.selfUs, 0);
  return { entries, totalUs, idleUs };
}

function main(argv: string[]): void {
  let top = 10;
  let per: number | undefined;
  let unit = 'unit';
  let benchJson: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--top') top = Number(argv[++i]);
    else if (a === '--per') per = Number(argv[++i]);
    else if (a === '--bench-json') benchJson = argv[++i];
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: node --import tsx scripts/cpuprofile-top.ts [--top N] [--per COUNT | --bench-json FILE]'
        + ' FILE.cpuprofile [FILE ...]\n');
      return;
    } else files.push(a);
  }
  if (files.length === 0 || !Number.isInteger(top) || top < 1) throw new Error('give one or more .cpuprofile files (--help)');
  if (benchJson !== undefined) ({ count: per, unit } = unitsFromBench(JSON.parse(readFileSync(benchJson, 'utf8')) as BenchJson, files));
  if (per !== undefined && !(per > 0)) throw new Error('--per needs a positive count');
  const profiles = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Profile);
  const repo = new URL('..', import.meta.url).pathname;
  const { entries, totalUs, idleUs } = selfTimes(profiles, repo);
  const busyUs = totalUs - idleUs;
  const ms = (us: number): string => (us / 1000).toFixed(0);
  const share = (us: number): string => ((100 * us) / busyUs).toFixed(1);
  const each = (us: number): string => (per === undefined ? '' : ` ${(us / per).toFixed(2)} |`);
  const perHead = per === undefined ? '' : ` µs per ${unit} |`;
  const perRule = per === undefined ? '' : ' ---: |';
  const out = [
    `${files.map((f) => basename(f)).join(', ')}: ${ms(totalUs)} ms sampled, ${ms(busyUs)} ms busy (idle ${ms(idleUs)} ms)` +
      (per === undefined ? '' : `; ${+per.toFixed(2)} ${unit}s, ${(busyUs / per).toFixed(1)} µs busy per ${unit}`),
    '',
    `| # | self ms | % busy |${perHead} function | where |`,
    `| ---: | ---: | ---: |${perRule} --- | --- |`,
  ];
  entries
    .filter((e) => e.name !== '(idle)')
    .slice(0, top)
    .forEach((e, i) => out.push(`| ${i + 1} | ${ms(e.selfUs)} | ${share(e.selfUs)} |${each(e.selfUs)} ${e.name} | ${e.where} |`));
  // The same time by source file: how much lib/http/transfer.ts or lib/metrics.ts costs in all.
  const byFile = new Map<string, number>();
  for (const e of entries) {
    if (e.name === '(idle)') continue;
    const file = e.where === '' ? e.name : e.where.replace(/:\d+$/, '');
    byFile.set(file, (byFile.get(file) ?? 0) + e.selfUs);
  }
  out.push('', `| self ms | % busy |${perHead} file (or V8 bucket) |`, `| ---: | ---: |${perRule} --- |`);
  [...byFile.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([file, us]) => out.push(`| ${ms(us)} | ${share(us)} |${each(us)} ${file} |`));
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`cpuprofile-top: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
